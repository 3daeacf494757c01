package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestMetrics_requestsTotal_sumsShards(t *testing.T) {
	n := startTestNode(t)
	ctx := context.Background()
	var resp protocol.Response
	for i := range 20 { // keys in several partitions, so several shards
		n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v"), Flags: protocol.FlagNoTTL}, &resp)
		n.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: fmt.Sprintf("k%d", i)}, &resp)
		n.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: fmt.Sprintf("missing%d", i)}, &resp)
	}
	n.metrics.observe(0, protocol.Op(200), protocol.CodeOK) // beyond the shards' table
	families, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "cloakroom_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["op"]+" "+labels["code"]] += m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		protocol.OpSet.String() + " " + protocol.CodeOK.String():       20,
		protocol.OpGet.String() + " " + protocol.CodeOK.String():       20,
		protocol.OpGet.String() + " " + protocol.CodeNotFound.String(): 20,
		protocol.Op(200).String() + " " + protocol.CodeOK.String():     1,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("cloakroom_requests_total{%s} = %v; want %v (all: %v)", k, got[k], w, got)
		}
	}
}

// Go's profiler is served only when asked for (--http-pprof): whoever
// reaches the metrics port could otherwise keep the node profiling.
func TestHTTP_profilerOnlyWhenAskedFor(t *testing.T) {
	get := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no idle connection outlives the test
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("profiling ", on), func(t *testing.T) {
			n := startTestNode(t, func(cfg *Config) { cfg.HTTPProfiling = on })
			for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": http.StatusNotFound, "/debug/pprof/heap": http.StatusNotFound} {
				if on && path != "/metrics" {
					want = http.StatusOK
				}
				resp, err := get.Get("http://" + n.HTTPAddr() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d; want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}

// A load balancer's check (/servingz) and a rollout's (/readyz) both pass
// on a node that serves with its partitions here, and say why when not.
func TestHTTP_servingzAndReadyz(t *testing.T) {
	get := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	n := startTestNode(t)
	check := func(path string, want int, body string) {
		t.Helper()
		resp, err := get.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || strings.TrimSpace(string(b)) != body {
			t.Errorf("GET %s = %d %q; want %d %q", path, resp.StatusCode, b, want, body)
		}
	}
	check("/servingz", http.StatusOK, "serving")
	check("/readyz", http.StatusOK, "ready")
	n.transfers.syncCnt.Store(1) // as while a partition arrives: serving, not in sync
	check("/servingz", http.StatusOK, "serving")
	check("/readyz", http.StatusServiceUnavailable, "1 partitions still arriving")
	n.transfers.syncCnt.Store(0)
	n.draining.Store(true) // as on SIGTERM, once the partitions are handed over
	check("/servingz", http.StatusServiceUnavailable, "shutting down")
	check("/readyz", http.StatusServiceUnavailable, "shutting down")
	n.draining.Store(false)
}

// gauge returns the value of the unlabelled metric name on node n, failing
// the test if n does not export it.
func gauge(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	families, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// cloakroom_serving and cloakroom_ready are /servingz and /readyz as
// gauges, for alerts; cloakroom_memory_max_bytes is the store's limit in
// effect, configured or chosen by the node.
func TestMetrics_servingReadyAndMemoryLimit(t *testing.T) {
	n := startTestNode(t, func(cfg *Config) { cfg.MaxMemory = 64 << 20 })
	want := func(serving, ready float64) {
		t.Helper()
		if s, r := gauge(t, n, "cloakroom_serving"), gauge(t, n, "cloakroom_ready"); s != serving || r != ready {
			t.Errorf("cloakroom_serving %v, cloakroom_ready %v; want %v, %v", s, r, serving, ready)
		}
	}
	want(1, 1)
	n.transfers.syncCnt.Store(1) // a partition arriving
	want(1, 0)
	n.transfers.syncCnt.Store(0)
	n.draining.Store(true)
	want(0, 0)
	n.draining.Store(false)
	if got := gauge(t, n, "cloakroom_memory_max_bytes"); got != 64<<20 {
		t.Errorf("cloakroom_memory_max_bytes %v with --max-memory 64MiB", got)
	}
}

func TestMetrics_memoryLimitChosenWithoutMaxMemory(t *testing.T) {
	limit, _ := safetyLimit()
	if limit == 0 {
		t.Skip("no memory limit to read here (cgroup v2 or /proc/meminfo)")
	}
	n := startTestNode(t)
	if got := gauge(t, n, "cloakroom_memory_max_bytes"); got != float64(limit) {
		t.Errorf("cloakroom_memory_max_bytes %v; want the limit the node chose, %d", got, limit)
	}
}

// cloakroom_writes_refused_total counts the writes the store refused for
// memory, from 0 at start: an alert's rate sees the first refusal too.
func TestMetrics_writesRefusedForMemory(t *testing.T) {
	n := startTestNode(t, func(cfg *Config) { cfg.MaxMemory = 1 })
	if got := gauge(t, n, "cloakroom_writes_refused_total"); got != 0 {
		t.Fatalf("cloakroom_writes_refused_total %v at start; want 0", got)
	}
	var resp protocol.Response
	n.Do(context.Background(), &protocol.Request{Op: protocol.OpSet, Key: "k", Value: []byte("v"), Flags: protocol.FlagNoTTL}, &resp)
	if resp.Code != protocol.CodeOutOfMemory {
		t.Fatalf("a set over a 1-byte limit: %v; want out of memory", resp.Err())
	}
	if got := gauge(t, n, "cloakroom_writes_refused_total"); got != 1 {
		t.Fatalf("cloakroom_writes_refused_total %v after one refused set; want 1", got)
	}
}
