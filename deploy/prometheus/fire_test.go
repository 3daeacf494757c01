package prometheus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
)

// Series of a healthy three-node cluster for 30 minutes, one sample a
// minute, in promqltest's notation ("1x30": 1 for 31 samples; "0+60x30":
// from 0, 60 more each minute). %s is the node: a, b or c.
var healthy = map[string]string{
	`up{job="cloakroom", instance="%s"}`:                                                  "1x30",
	`cloakroom_serving{job="cloakroom", instance="%s"}`:                                   "1x30",
	`cloakroom_ready{job="cloakroom", instance="%s"}`:                                     "1x30",
	`cloakroom_under_replicated_partitions{job="cloakroom", instance="%s"}`:               "0x30",
	`cloakroom_silent_members{job="cloakroom", instance="%s"}`:                            "0x30",
	`cloakroom_table_version{job="cloakroom", instance="%s"}`:                             "7x30",
	`cloakroom_evictions_total{job="cloakroom", instance="%s"}`:                           "0x30",
	`cloakroom_memory_used_bytes{job="cloakroom", instance="%s"}`:                         "500x30",
	`cloakroom_memory_max_bytes{job="cloakroom", instance="%s"}`:                          "1000x30",
	`cloakroom_writes_refused_total{job="cloakroom", instance="%s"}`:                      "0x30",
	`cloakroom_replication_failures_total{job="cloakroom", instance="%s"}`:                "0x30",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="get", code="ok"}`:       "0+6000x30",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="ping", code="ok"}`:      "0+120x30",
	`cloakroom_refused_connections_total{job="cloakroom", instance="%s"}`:                 "0x30",
	`cloakroom_resp_refused_connections_total{job="cloakroom", instance="%s"}`:            "0x30",
	`cloakroom_native_auth_failures_total{job="cloakroom", instance="%s"}`:                "0x30",
	`cloakroom_requests_total{job="cloakroom", instance="%s", op="replicate", code="ok"}`: "0+6000x30",
}

// faults are, for each alert, series that replace or join the healthy
// ones (on node b unless said otherwise) so that it, and only it, fires.
var faults = map[string]map[string]string{
	"CloakroomNodeDown": {`up{job="cloakroom", instance="b"}`: "1x10 0x20"},
	// A node that does not serve is not ready either (Ready includes
	// Serving's checks).
	"CloakroomNotServing": {
		`cloakroom_serving{job="cloakroom", instance="b"}`: "1x10 0x20",
		`cloakroom_ready{job="cloakroom", instance="b"}`:   "1x10 0x20",
	},
	"CloakroomNotReady":           {`cloakroom_ready{job="cloakroom", instance="b"}`: "0x30"},
	"CloakroomUnderReplicated":    {`cloakroom_under_replicated_partitions{job="cloakroom", instance="b"}`: "3x30"},
	"CloakroomSilentMembers":      {`cloakroom_silent_members{job="cloakroom", instance="b"}`: "0x20 1x10"},
	"CloakroomTablesDisagree":     {`cloakroom_table_version{job="cloakroom", instance="b"}`: "8x30"},
	"CloakroomEvicting":           {`cloakroom_evictions_total{job="cloakroom", instance="b"}`: "0+50x30"},
	"CloakroomMemoryNearLimit":    {`cloakroom_memory_used_bytes{job="cloakroom", instance="b"}`: "950x30"},
	"CloakroomWritesRefused":      {`cloakroom_writes_refused_total{job="cloakroom", instance="b"}`: "0x20 0+10x10"},
	"CloakroomReplicationFailing": {`cloakroom_replication_failures_total{job="cloakroom", instance="b"}`: "0+5x30"},
	// 5% of b's GETs fail; the replication and heartbeat traffic, which
	// users do not see, is not counted.
	"CloakroomRequestsUnavailable": {`cloakroom_requests_total{job="cloakroom", instance="b", op="get", code="unavailable"}`: "0+900x30"},
	// A node without --resp-addr exports no Redis counter: the native
	// refusals alone must fire.
	"CloakroomConnectionsRefused": {
		`cloakroom_refused_connections_total{job="cloakroom", instance="b"}`:      "0+3x30",
		`cloakroom_resp_refused_connections_total{job="cloakroom", instance="b"}`: "",
	},
	"CloakroomNativeAuthFailures": {`cloakroom_native_auth_failures_total{job="cloakroom", instance="b"}`: "0+2x30"},
}

// quiet are situations that must fire nothing: what a healthy cluster
// does besides serving.
var quiet = map[string]map[string]string{
	// Without a memory limit to read, the limit is 0: no division by zero
	// may fire CloakroomMemoryNearLimit.
	"no memory limit": {`cloakroom_memory_max_bytes{job="cloakroom", instance="b"}`: "0x30"},
	// A node restarted: every node moved to a new table, and its partitions
	// arrived over 20 minutes (within CloakroomNotReady's and
	// CloakroomUnderReplicated's 30), then it was in sync again.
	"after a restart": {
		`cloakroom_ready{job="cloakroom", instance="b"}`:                       "1x5 0x20 1x5",
		`cloakroom_under_replicated_partitions{job="cloakroom", instance="b"}`: "0x5 40x20 0x5",
		`cloakroom_table_version{job="cloakroom", instance="a"}`:               "7x5 8x25",
		`cloakroom_table_version{job="cloakroom", instance="b"}`:               "7x5 8x25",
		`cloakroom_table_version{job="cloakroom", instance="c"}`:               "7x5 8x25",
	},
	// A second cluster in another namespace, on its own table version.
	"two clusters": {
		`cloakroom_table_version{job="cloakroom", namespace="staging", instance="x"}`: "3x30",
		`cloakroom_table_version{job="cloakroom", namespace="staging", instance="y"}`: "3x30",
	},
	// Heavy replication and heartbeats, a few unavailable ones among them.
	"internal traffic unavailable": {`cloakroom_requests_total{job="cloakroom", instance="b", op="replicate", code="unavailable"}`: "0+900x30"},
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

// firing evaluates every rule's expression on series at their end, and
// returns the alerts whose expression has a result there. `for` is not
// simulated: each fault lasts longer than its rule's.
func firing(t *testing.T, rules map[string]string, series map[string]string) []string {
	t.Helper()
	st := promqltest.LoadedStorage(t, loadText(series))
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	at := time.Unix(0, 0).Add(30 * time.Minute)
	var out []string
	for name, expr := range rules {
		q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, at)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		res := q.Exec(context.Background())
		if res.Err != nil {
			t.Fatalf("%s: %v", name, res.Err)
		}
		if v, ok := res.Value.(promql.Vector); !ok {
			t.Fatalf("%s: a %s, not a vector", name, res.Value.Type())
		} else if len(v) > 0 {
			out = append(out, name)
		}
		q.Close()
	}
	slices.Sort(out)
	return out
}

func TestAlerts_fireOnTheirFaultAndOnlyThere(t *testing.T) {
	rules := map[string]string{}
	for _, r := range loadRules(t) {
		rules[r.Alert] = r.Expr
	}
	for name := range rules {
		if faults[name] == nil {
			t.Errorf("%s: no fault here makes it fire", name)
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
