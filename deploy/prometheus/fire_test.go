package prometheus

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	prules "github.com/prometheus/prometheus/rules"
)

// Series of a healthy three-node cluster for 30 minutes, one sample a
// minute, in promqltest's notation ("1x60": 1 for 31 samples; "0+60x30":
// from 0, 60 more each minute). %s is the node: a, b or c.
var healthy = map[string]string{
	`up{job="cloakroom", instance="%s"}`:                                                  "1x60",
	`cloakroom_serving{job="cloakroom", instance="%s"}`:                                   "1x60",
	`cloakroom_ready{job="cloakroom", instance="%s"}`:                                     "1x60",
	`cloakroom_under_replicated_partitions{job="cloakroom", instance="%s"}`:               "0x60",
	`cloakroom_silent_members{job="cloakroom", instance="%s"}`:                            "0x60",
	`cloakroom_table_version{job="cloakroom", instance="%s"}`:                             "7x60",
	`cloakroom_evictions_total{job="cloakroom", instance="%s"}`:                           "0x60",
	`cloakroom_memory_used_bytes{job="cloakroom", instance="%s"}`:                         "500x60",
	`cloakroom_memory_max_bytes{job="cloakroom", instance="%s"}`:                          "1000x60",
	`cloakroom_writes_refused_total{job="cloakroom", instance="%s"}`:                      "0x60",
	`cloakroom_replication_failures_total{job="cloakroom", instance="%s"}`:                "0x60",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="get", code="ok"}`:       "0+6000x60",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="ping", code="ok"}`:      "0+120x60",
	`cloakroom_refused_connections_total{job="cloakroom", instance="%s"}`:                 "0x60",
	`cloakroom_resp_refused_connections_total{job="cloakroom", instance="%s"}`:            "0x60",
	`cloakroom_native_auth_failures_total{job="cloakroom", instance="%s"}`:                "0x60",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="replicate", code="ok"}`: "0+6000x60",
	// The Redis TLS certificate expires in about three years (the
	// evaluation's clock starts at 0).
	`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="%s"}`: "100000000x60",
}

// faults are, for each alert, series that replace or join the healthy
// ones (on node b unless said otherwise) so that it, and only it, fires.
var faults = map[string]map[string]string{
	"CloakroomNodeDown": {`up{job="cloakroom", instance="b"}`: "1x10 0x50"},
	// A node that does not serve is not ready either (Ready includes
	// Serving's checks).
	"CloakroomNotServing": {
		`cloakroom_serving{job="cloakroom", instance="b"}`: "1x10 0x50",
		`cloakroom_ready{job="cloakroom", instance="b"}`:   "1x10 0x50",
	},
	"CloakroomNotReady":           {`cloakroom_ready{job="cloakroom", instance="b"}`: "1x10 0x50"},
	"CloakroomUnderReplicated":    {`cloakroom_under_replicated_partitions{job="cloakroom", instance="b"}`: "3x60"},
	"CloakroomSilentMembers":      {`cloakroom_silent_members{job="cloakroom", instance="b"}`: "0x10 1x50"},
	"CloakroomTablesDisagree":     {`cloakroom_table_version{job="cloakroom", instance="b"}`: "7x10 8x50"},
	"CloakroomEvicting":           {`cloakroom_evictions_total{job="cloakroom", instance="b"}`: "0x10 0+50x50"},
	"CloakroomMemoryNearLimit":    {`cloakroom_memory_used_bytes{job="cloakroom", instance="b"}`: "500x10 950x50"},
	"CloakroomWritesRefused":      {`cloakroom_writes_refused_total{job="cloakroom", instance="b"}`: "0x10 0+10x50"},
	"CloakroomReplicationFailing": {`cloakroom_replication_failures_total{job="cloakroom", instance="b"}`: "0x10 0+5x50"},
	// 5% of b's GETs fail; the replication and heartbeat traffic, which
	// users do not see, is not counted.
	"CloakroomRequestsUnavailable": {`cloakroom_requests_total{job="cloakroom", instance="b", op="get", code="unavailable"}`: "0x10 0+900x50"},
	// A node without --resp-addr exports no Redis counter: the native
	// refusals alone must fire.
	"CloakroomConnectionsRefused": {
		`cloakroom_refused_connections_total{job="cloakroom", instance="b"}`:      "0x10 0+3x50",
		`cloakroom_resp_refused_connections_total{job="cloakroom", instance="b"}`: "",
	},
	"CloakroomNativeAuthFailures": {`cloakroom_native_auth_failures_total{job="cloakroom", instance="b"}`: "0x10 0+2x50"},
	// 11.5 days left from the start.
	"CloakroomTLSCertificateExpiring": {`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="b"}`: "1000000x60"},
}

// quiet are situations that must fire nothing: what a healthy cluster
// does besides serving.
var quiet = map[string]map[string]string{
	// Without a memory limit to read, the limit is 0: no division by zero
	// may fire CloakroomMemoryNearLimit.
	"no memory limit": {`cloakroom_memory_max_bytes{job="cloakroom", instance="b"}`: "0x60"},
	// A node restarted at minute 10: the others did not hear from it for
	// two evaluations (within CloakroomSilentMembers's 2 minutes), every
	// node moved to a new table, and its partitions arrived over 20 minutes
	// (within CloakroomNotReady's and CloakroomUnderReplicated's 30).
	"restart, partitions arriving for 20 minutes": {
		`cloakroom_ready{job="cloakroom", instance="b"}`:                       "1x10 0x20 1x30",
		`cloakroom_under_replicated_partitions{job="cloakroom", instance="b"}`: "0x10 40x20 0x30",
		`cloakroom_table_version{job="cloakroom", instance="a"}`:               "7x10 8x50",
		`cloakroom_table_version{job="cloakroom", instance="b"}`:               "7x10 8x50",
		`cloakroom_table_version{job="cloakroom", instance="c"}`:               "7x10 8x50",
		`cloakroom_silent_members{job="cloakroom", instance="a"}`:              "0x10 1 1 0x48",
		`cloakroom_silent_members{job="cloakroom", instance="c"}`:              "0x10 1 1 0x48",
	},
	// A second cluster in another namespace, on its own table version.
	"two clusters": {
		`cloakroom_table_version{job="cloakroom", namespace="staging", instance="x"}`: "3x60",
		`cloakroom_table_version{job="cloakroom", namespace="staging", instance="y"}`: "3x60",
	},
	// No TLS listener, so no certificate: nothing to expire.
	"no TLS": {
		`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="a"}`: "",
		`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="b"}`: "",
		`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="c"}`: "",
	},
	// A certificate renewed with 15 days left, before the alert's 14.
	"certificate renewed in time": {`cloakroom_resp_tls_cert_expiry_timestamp_seconds{job="cloakroom", instance="b"}`: "1300000x30 100000000x30"},
	// Heavy replication and heartbeats, a few unavailable ones among them.
	"internal traffic unavailable": {`cloakroom_requests_total{job="cloakroom", instance="b", op="replicate", code="unavailable"}`: "0x10 0+900x50"},
}

// loadText writes series as a promqltest load command.
func loadText(series map[string]string) string {
	var b strings.Builder
	b.WriteString("load 1m\n")
	for _, s := range slices.Sorted(maps.Keys(series)) {
		if series[s] != "" {
			fmt.Fprintf(&b, "  %s %s\n", s, series[s])
		}
	}
	return b.String()
}

// cluster returns the healthy series of nodes a, b and c with changes
// applied (an empty value removes a series).
func cluster(changes map[string]string) map[string]string {
	out := map[string]string{}
	for s, v := range healthy {
		for _, node := range []string{"a", "b", "c"} {
			out[fmt.Sprintf(s, node)] = v
		}
	}
	maps.Copy(out, changes)
	return out
}

// firing evaluates every rule on series as Prometheus would, once a minute
// for the hour, `for` included, and returns the alerts that fired at any
// point.
func firing(t *testing.T, rules []rulefmt.Rule, series map[string]string) []string {
	t.Helper()
	st := promqltest.LoadedStorage(t, loadText(series))
	query := prules.EngineQueryFunc(promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery), st)
	p := parser.NewParser(parser.Options{})
	var out []string
	for _, r := range rules {
		expr, err := p.ParseExpr(r.Expr)
		if err != nil {
			t.Fatalf("%s: %v", r.Alert, err)
		}
		rule := prules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
			labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", false, slog.New(slog.DiscardHandler))
		fired := false
		for m := 0; m <= 60 && !fired; m++ {
			if _, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(time.Duration(m)*time.Minute), query, nil, 0); err != nil {
				t.Fatalf("%s at minute %d: %v", r.Alert, m, err)
			}
			fired = slices.ContainsFunc(rule.ActiveAlerts(), func(a *prules.Alert) bool { return a.State == prules.StateFiring })
		}
		if fired {
			out = append(out, r.Alert)
		}
	}
	slices.Sort(out)
	return out
}

func TestAlerts_fireOnTheirFaultAndOnlyThere(t *testing.T) {
	rules := loadRules(t)
	for _, r := range rules {
		if faults[r.Alert] == nil {
			t.Errorf("%s: no fault here makes it fire", r.Alert)
		}
	}
	if got := firing(t, rules, cluster(nil)); len(got) > 0 {
		t.Errorf("a healthy cluster fires %v", got)
	}
	for situation, changes := range quiet {
		if got := firing(t, rules, cluster(changes)); len(got) > 0 {
			t.Errorf("%s fires %v", situation, got)
		}
	}
	for name, changes := range faults {
		if got := firing(t, rules, cluster(changes)); !slices.Equal(got, []string{name}) {
			t.Errorf("the fault for %s fires %v", name, got)
		}
	}
}
