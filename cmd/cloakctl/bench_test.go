package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/internal/testtool"
)

func TestBench_Count_runsExactlyThatManyOps(t *testing.T) {
	addr := startNode(t)
	r := cloakctl(t, nil, "", "--addr", addr, "bench", "--count", "3000", "--workers", "8",
		"--keys", "500", "--value-size", "64", "--json", "--progress", "0")
	if r.code != exitOK {
		t.Fatalf("bench = %+v; want exit 0", r)
	}
	var res benchResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("decode result %q: %v", r.stdout, err)
	}
	if res.Ops != 3000 || res.Errors != 0 {
		t.Fatalf("ops, errors = %d, %d; want 3000, 0", res.Ops, res.Errors)
	}
	if res.Misses != 0 {
		t.Fatalf("misses = %d; want 0 after preload", res.Misses)
	}
	if res.P50us <= 0 || res.P99us < res.P50us || res.P999us < res.P99us || res.MaxUs < res.P999us {
		t.Fatalf("latencies p50=%d p99=%d p999=%d max=%d; want positive and ordered", res.P50us, res.P99us, res.P999us, res.MaxUs)
	}
	if !strings.Contains(r.stderr, "loaded 500 keys") {
		t.Fatalf("stderr %q; want the preload line", r.stderr)
	}
}

func TestBench_Duration_printsProgressAndReport(t *testing.T) {
	addr := startNode(t)
	r := cloakctl(t, nil, "", "--addr", addr, "bench", "--duration", "1200ms", "--workers", "4",
		"--keys", "100", "--progress", "200ms", "--ratio", "90:10")
	if r.code != exitOK {
		t.Fatalf("bench = %+v; want exit 0", r)
	}
	if !strings.Contains(r.stderr, "ops/s") {
		t.Fatalf("stderr %q; want a progress line with ops/s", r.stderr)
	}
	for _, want := range []string{"ops/s", "p50", "p99", "p99.9", "get:set 90:10"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("report %q; want it to mention %q", r.stdout, want)
		}
	}
}

func TestBench_LoadOnly_writesEveryKeyOnce(t *testing.T) {
	addr := startNode(t)
	r := cloakctl(t, nil, "", "--addr", addr, "bench", "--load-only", "--keys", "1000", "--json", "--ttl", "1m")
	if r.code != exitOK {
		t.Fatalf("bench --load-only = %+v; want exit 0", r)
	}
	key := benchKeys("session:", 1000)[999]
	if g := cloakctl(t, nil, "", "--addr", addr, "get", key); g.code != exitOK || len(g.stdout) != 201 {
		t.Fatalf("get %s = %+v; want a 200-byte value", key, g)
	}
}

func TestBench_NodeDown_reportsErrors(t *testing.T) {
	r := cloakctl(t, nil, "", "--addr", "127.0.0.1:1", "bench", "--count", "10", "--workers", "2",
		"--keys", "10", "--preload=false", "--progress", "0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "errors") {
		t.Fatalf("bench against nothing = %+v; want exit %d and an error count", r, exitFailure)
	}
}

func TestBenchKeys_areDistinctSessionIDs(t *testing.T) {
	keys := benchKeys("session:", 10_000)
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if len(k) != 40 || !strings.HasPrefix(k, "session:") {
			t.Fatalf("key %q; want session: and 32 hex digits", k)
		}
		if seen[k] {
			t.Fatalf("key %q repeats", k)
		}
		seen[k] = true
	}
}

// TestBench_RedisTarget runs the same workload through go-redis against a
// real redis-server, when one is installed.
func TestBench_RedisTarget(t *testing.T) {
	bin := testtool.Look(t, "redis-server", "redis-server")
	port := freePort(t)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	waitListening(t, addr)
	r := cloakctl(t, nil, "", "bench", "--target", "redis", "--redis-addr", addr, "--count", "2000",
		"--workers", "4", "--keys", "200", "--json", "--progress", "0")
	var res benchResult
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Ops != 2000 || res.Misses != 0 {
		t.Fatalf("bench --target redis = %+v; want 2000 ops, no misses", r)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// waitListening polls addr until it accepts a connection.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func TestBench_Interrupted_reportsWhatRan(t *testing.T) {
	addr := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--addr", addr, "bench", "--duration", "1m", "--workers", "4", "--keys", "100", "--json", "--progress", "0"},
		func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	var res benchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q: %v", code, out.String(), errb.String(), err)
	}
	if code != exitOK || !res.Interrupted || res.Ops == 0 || res.Errors != 0 {
		t.Fatalf("interrupted bench: exit %d, %+v; want exit 0, interrupted, some ops, no errors", code, res)
	}
}
