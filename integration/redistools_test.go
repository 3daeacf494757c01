package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/internal/testtool"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Issue 5's "redis-cli (interactive start and one-shot commands) and
// redis-benchmark -t ping,set,get", against a 3-node cluster of cloakroomd
// processes, through its second node: each key's primary is some node,
// often another, so requests are forwarded, or in --resp-cluster-mode
// redirected. (node/resp/tools_test.go runs the same tools against a
// server alone; TestRESP_Node_RedisCLI against one node.)

// redisTool runs a Redis command-line tool against the node whose RESP
// address is addr, with stdin, and returns its output; a tool that fails
// or runs for more than 30 s fails the test.
func redisTool(t *testing.T, bin, addr, stdin string, args ...string) string {
	t.Helper()
	out, err := runToolInput(bin, addr, stdin, args...)
	if err != nil {
		t.Fatalf("%s %s %q: %v\n%s", bin, addr, args, err, out)
	}
	return out
}

// runTool runs a Redis command-line tool against addr for at most 30 s and
// returns its output and how it ended.
func runTool(bin, addr string, args ...string) (string, error) {
	return runToolInput(bin, addr, "", args...)
}

func runToolInput(bin, addr, stdin string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// keyPerPrimary returns, for each node of c, a key prefix+"N" whose
// partition that node is primary of, as the first node's table says.
func keyPerPrimary(ctx context.Context, t *testing.T, c *procCluster, prefix string) map[string]string {
	t.Helper()
	table := tables(ctx, t, c)[c.procs[0].name]
	if table == nil {
		t.Fatalf("%s answered no table", c.procs[0].name)
	}
	out := map[string]string{}
	for i := 0; len(out) < len(table.Members) && i < 10_000; i++ {
		key := prefix + strconv.Itoa(i)
		if owner := primaryIn(table, key); out[owner] == "" {
			out[owner] = key
		}
	}
	if len(out) != len(c.procs) {
		t.Fatalf("keys found for primaries %v; want one for each of %d nodes", out, len(c.procs))
	}
	return out
}

// primaryIn returns the name of the member table has as primary of key's
// partition.
func primaryIn(table *protocol.ClusterInfo, key string) string {
	return table.Members[table.Owners[ring.Partition(key, table.Partitions)][0]].Name
}

// benchRate matches a line of redis-benchmark -q's summary.
var benchRate = regexp.MustCompile(`(?m)^([A-Z_]+): ([0-9.]+) requests per second`)

// checkBenchmark checks that redis-benchmark -t ping,set,get -q reported a
// rate above zero for each test and no error.
func checkBenchmark(t *testing.T, out string) {
	t.Helper()
	out = strings.ReplaceAll(out, "\r", "\n") // progress lines end in \r
	rates := map[string]float64{}
	for _, m := range benchRate.FindAllStringSubmatch(out, -1) {
		rates[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET"} {
		if rates[test] <= 0 {
			t.Errorf("redis-benchmark reported %s at %v requests per second; want more than 0:\n%s", test, rates[test], out)
		}
	}
	if strings.Contains(strings.ToLower(out), "error") {
		t.Errorf("redis-benchmark reported errors:\n%s", out)
	}
}

// checkBenchmarkKeys checks that the keys redis-benchmark -r 100 wrote are
// listed by KEYS through one node, that each reads back through another
// with the one value redis-benchmark writes, and that their primaries are
// every node (so the SETs were forwarded or redirected).
func checkBenchmarkKeys(ctx context.Context, t *testing.T, c *procCluster, cli, listVia, readVia string, cliArgs ...string) {
	t.Helper()
	keys := strings.Fields(redisTool(t, cli, listVia, "", append(cliArgs, "keys", "key:*")...))
	if len(keys) < 2 || len(keys) > 300 {
		t.Fatalf("KEYS key:* after redis-benchmark -r 100: %d keys %v; want 2 to 100 (300 with --cluster's tags)", len(keys), keys)
	}
	var gets strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&gets, "get %s\n", k)
	}
	var values []string // redis-cli -c tells of each redirect it follows
	for _, l := range strings.Split(redisTool(t, cli, readVia, gets.String(), cliArgs...), "\n") {
		if l != "" && !strings.HasPrefix(l, "-> Redirected") {
			values = append(values, l)
		}
	}
	if len(values) != len(keys) {
		t.Fatalf("GET of %d keys after redis-benchmark: %d values %q; want one each", len(keys), len(values), values)
	}
	table := tables(ctx, t, c)[c.procs[0].name]
	if table == nil {
		t.Fatalf("%s answered no table", c.procs[0].name)
	}
	primaries := map[string]bool{}
	for i, k := range keys {
		primaries[primaryIn(table, k)] = true
		if v := values[i]; len(v) != 3 || v != values[0] {
			t.Errorf("GET %s after redis-benchmark: %q; want the 3 bytes every key got (%q)", k, v, values[0])
		}
	}
	if len(primaries) != len(c.procs) {
		t.Errorf("redis-benchmark's %d keys have primaries %v; want all %d nodes", len(keys), primaries, len(c.procs))
	}
}

// toolsCluster finds redis-cli and redis-benchmark and starts three
// cloakroomd processes (with extra flags) whose tables agree, for a test
// that may take up to two minutes.
func toolsCluster(t *testing.T, extra ...string) (cli, bench string, ctx context.Context, c *procCluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts cloakroomd processes")
	}
	cli, bench = testtool.Look(t, "redis-cli", "redis-tools"), testtool.Look(t, "redis-benchmark", "redis-tools")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c = startProcCluster(t, 3, append([]string{"--gossip-preset", "local"}, extra...)...)
	waitTablesAgree(ctx, t, c, 3)
	return cli, bench, ctx, c
}

// TestRESP_Cluster_RedisTools: redis-cli one-shot commands on keys whose
// primaries are each of three nodes, a redis-cli session reading commands
// from stdin, and redis-benchmark -t ping,set,get, all through the second
// node; what they wrote reads back through the others.
func TestRESP_Cluster_RedisTools(t *testing.T) {
	cli, bench, ctx, c := toolsCluster(t)
	via, other := c.procs[1].resp, c.procs[2].resp
	one := func(addr string, args ...string) string {
		return strings.TrimSuffix(redisTool(t, cli, addr, "", args...), "\n")
	}

	keys := keyPerPrimary(ctx, t, c, "cli:")
	for owner, k := range keys {
		steps := []struct {
			addr string
			args []string
			want []string // any of
		}{
			{via, []string{"set", k, "v-" + owner, "ex", "60"}, []string{"OK"}},
			{via, []string{"get", k}, []string{"v-" + owner}},
			{other, []string{"get", k}, []string{"v-" + owner}},
			{via, []string{"ttl", k}, []string{"60", "59"}},
			{via, []string{"del", k}, []string{"1"}},
			{via, []string{"--no-raw", "get", k}, []string{"(nil)"}},
			{other, []string{"ttl", k}, []string{"-2"}},
		}
		for _, s := range steps {
			if got := one(s.addr, s.args...); !slices.Contains(s.want, got) {
				t.Errorf("redis-cli %q (primary %s): got %q; want %q", s.args, owner, got, s.want)
			}
		}
	}

	// With stdin not a terminal redis-cli reads commands line by line, after
	// the same start-up (COMMAND DOCS and friends) as an interactive session.
	var script, want strings.Builder
	for owner, k := range keys {
		fmt.Fprintf(&script, "set %s %q px 60000\n", k, "in "+owner)
		fmt.Fprintf(&want, "OK\nin %s\n", owner)
		fmt.Fprintf(&script, "get %s\n", k)
	}
	script.WriteString("dbsize\ninfo keyspace\nquit\n")
	out := redisTool(t, cli, via, script.String())
	for _, w := range []string{want.String(), "\n3\n", "db0:keys=3,expires=3,"} {
		if !strings.Contains(out, w) {
			t.Errorf("redis-cli session through %s lacks %q:\n%s", c.procs[1].name, w, out)
		}
	}

	checkBenchmark(t, redisTool(t, bench, via, "", "-t", "ping,set,get", "-n", "2000", "-c", "10", "-r", "100", "-q"))
	checkBenchmarkKeys(ctx, t, c, cli, other, c.procs[0].resp)
}

// TestRESP_ClusterMode_RedisTools: with --resp-cluster-mode, redis-cli
// without -c is answered MOVED for a key another node is primary of, and
// with -c follows the redirect (one-shot and reading stdin);
// redis-benchmark --cluster spreads its keys over every primary.
func TestRESP_ClusterMode_RedisTools(t *testing.T) {
	cli, bench, ctx, c := toolsCluster(t, "--resp-cluster-mode")
	via := c.procs[1].resp
	keys := keyPerPrimary(ctx, t, c, "cli:")
	away := keys[c.procs[2].name] // a key the second node must redirect

	// Until every node gossips the same members a node forwards instead.
	var moved string
	eventuallyWithin(t, 15*time.Second, func() error {
		moved = strings.TrimSpace(redisTool(t, cli, via, "", "set", away, "v"))
		if !strings.HasPrefix(moved, "MOVED ") {
			return fmt.Errorf("redis-cli set %s through %s (not its primary): %q; want MOVED", away, c.procs[1].name, moved)
		}
		return nil
	})
	if !strings.HasSuffix(moved, " "+c.procs[2].resp) {
		t.Errorf("redis-cli set %s: %q; want MOVED to %s, its primary", away, moved, c.procs[2].resp)
	}

	for owner, k := range keys {
		for _, s := range []struct{ args, want string }{
			{"set " + k + " v-" + owner + " ex 60", "OK"},
			{"get " + k, "v-" + owner},
			{"del " + k, "1"},
			{"exists " + k, "0"},
		} {
			if got := strings.TrimSpace(redisTool(t, cli, via, "", append([]string{"-c"}, strings.Fields(s.args)...)...)); got != s.want {
				t.Errorf("redis-cli -c %s (primary %s): got %q; want %q", s.args, owner, got, s.want)
			}
		}
	}

	out := redisTool(t, cli, via, "set "+away+" session\nget "+away+"\nquit\n", "-c")
	for _, w := range []string{"-> Redirected to slot [", "] located at " + c.procs[2].resp + "\nOK\nsession\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("redis-cli -c session through %s lacks %q:\n%s", c.procs[1].name, w, out)
		}
	}

	checkBenchmark(t, redisTool(t, bench, via, "", "--cluster", "-t", "ping,set,get", "-n", "2000", "-c", "10", "-r", "100", "-q"))
	checkBenchmarkKeys(ctx, t, c, cli, c.procs[2].resp, c.procs[0].resp, "-c")
}
