package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/ring"
	goredis "github.com/redis/go-redis/v9"
)

// respClusterMode gives every node a Redis listener in cluster mode.
func respClusterMode(_ int, cfg *node.Config) {
	cfg.RESPAddr = "127.0.0.1:0"
	cfg.RESPClusterMode = true
}

// slotOwners reads CLUSTER SLOTS from addr: the primary's address of every
// slot, or an error if a slot is missing or listed twice.
func slotOwners(ctx context.Context, addr string) ([]string, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	ranges, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	owners := make([]string, 16384)
	for _, r := range ranges {
		for s := r.Start; s <= r.End; s++ {
			if owners[s] != "" {
				return nil, fmt.Errorf("%s: slot %d listed twice", addr, s)
			}
			owners[s] = r.Nodes[0].Addr
		}
	}
	if i := slices.Index(owners, ""); i >= 0 {
		return nil, fmt.Errorf("%s: slot %d is missing", addr, i)
	}
	return owners, nil
}

// waitLayout waits until every node of nodes describes the same slot layout
// in which exactly those nodes are primaries, and returns it.
func waitLayout(t *testing.T, ctx context.Context, nodes []*node.Node) []string {
	t.Helper()
	var layout []string
	nodetest.WaitFor(t, 20*time.Second, func() error {
		var want []string
		for _, nd := range nodes {
			want = append(want, nd.RESPAddr())
		}
		slices.Sort(want)
		for i, nd := range nodes {
			owners, err := slotOwners(ctx, nd.RESPAddr())
			if err != nil {
				return err
			}
			primaries := slices.Compact(slices.Sorted(slices.Values(owners)))
			if !slices.Equal(primaries, want) {
				return fmt.Errorf("%s lists primaries %v; want %v", nd.Name(), primaries, want)
			}
			if i > 0 && !slices.Equal(owners, layout) {
				return fmt.Errorf("%s and %s describe different layouts", nodes[0].Name(), nd.Name())
			}
			layout = owners
		}
		return nil
	})
	return layout
}

// checkAscending fails unless addr lists slot ranges as Redis does:
// CLUSTER SLOTS by slot, and each CLUSTER NODES line's ranges ascending
// with adjacent ones joined.
func checkAscending(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	ranges, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	for i := 1; i < len(ranges); i++ {
		if ranges[i].Start <= ranges[i-1].End {
			t.Errorf("CLUSTER SLOTS on %s: range %d-%d after %d-%d; want ascending", addr, ranges[i].Start, ranges[i].End, ranges[i-1].Start, ranges[i-1].End)
		}
	}
	nodes, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		prev := -2
		for _, r := range f[min(8, len(f)):] {
			first, last, _ := strings.Cut(r, "-")
			if last == "" {
				last = first
			}
			var a, b int
			fmt.Sscan(first, &a)
			fmt.Sscan(last, &b)
			if a <= prev+1 {
				t.Errorf("CLUSTER NODES on %s: %s follows slot %d; want ascending, adjacent ranges joined: %q", addr, r, prev, line)
			}
			prev = b
		}
	}
}

// redirects is a go-redis hook that counts the replies of one node's
// client that send the command elsewhere (MOVED or ASK).
type redirects struct{ n atomic.Int64 }

func (r *redirects) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *redirects) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && (strings.HasPrefix(err.Error(), "MOVED ") || strings.HasPrefix(err.Error(), "ASK ")) {
			r.n.Add(1)
		}
		return err
	}
}

func (r *redirects) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// oneHopSessions is how many sessions checkOneHop sets, keys sess:0 on.
const oneHopSessions = 300

// checkOneHop has a go-redis ClusterClient made with opts set and read
// oneHopSessions sessions, and fails the test unless it reached every
// primary directly: no node forwarded its commands and none redirected
// them (in cluster mode a node redirects rather than forwards, so
// "nothing forwarded" alone would pass a client that ignored the layout).
// It returns the client, closed when the test ends.
func checkOneHop(t *testing.T, ctx context.Context, nodes []*node.Node, opts *goredis.ClusterOptions) *goredis.ClusterClient {
	t.Helper()
	var moved redirects
	opts.NewClient = func(o *goredis.Options) *goredis.Client {
		rdb := goredis.NewClient(o)
		rdb.AddHook(&moved)
		return rdb
	}
	cc := goredis.NewClusterClient(opts)
	t.Cleanup(func() { cc.Close() })
	before := forwarded(t, nodes)
	for i := range oneHopSessions {
		key := fmt.Sprint("sess:", i)
		if err := cc.Set(ctx, key, key, time.Hour).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if v, err := cc.Get(ctx, key).Result(); err != nil || v != key {
			t.Fatalf("GET %s: %q, %v", key, v, err)
		}
	}
	if n := forwarded(t, nodes) - before; n != 0 {
		t.Errorf("%d of %d requests were forwarded between nodes; want none", int(n), 2*oneHopSessions)
	}
	if n := moved.n.Load(); n != 0 {
		t.Errorf("%d of %d requests were answered MOVED or ASK; want none", n, 2*oneHopSessions)
	}
	return cc
}

// forwarded sums cloakroom_forwarded_requests_total over nodes.
func forwarded(t *testing.T, nodes []*node.Node) float64 {
	t.Helper()
	var sum float64
	for _, nd := range nodes {
		sum += counter(t, nd, "cloakroom_forwarded_requests_total")
	}
	return sum
}

// In --resp-cluster-mode every node describes the cluster's partition
// table as Redis Cluster slots, and redirects keys it is not primary for,
// so that cluster clients send each command to its primary in one hop;
// the layout follows membership changes.
func TestRESPClusterMode_layoutAndRedirects(t *testing.T) {
	c := nodetest.Start(t, 3, respClusterMode)
	ctx := ctxFor(t)
	nodes := c.Running()
	layout := waitLayout(t, ctx, nodes)
	checkAscending(t, ctx, nodes[0].RESPAddr())

	// A plain client on the first node is sent to each key's primary.
	plain := goredis.NewClient(&goredis.Options{Addr: nodes[0].RESPAddr(), MaxRetries: -1})
	t.Cleanup(func() { plain.Close() })
	redirected := 0
	for i := range 50 {
		key := fmt.Sprint("sess:", i)
		owner := layout[ring.Slot(key)]
		err := plain.Set(ctx, key, "v", time.Minute).Err()
		if owner == nodes[0].RESPAddr() {
			if err != nil {
				t.Errorf("SET %s on its primary: %v", key, err)
			}
			continue
		}
		redirected++
		if err == nil || !strings.HasPrefix(err.Error(), "MOVED ") || !strings.HasSuffix(err.Error(), " "+owner) {
			t.Errorf("SET %s on a node that is not its primary: got %v; want MOVED to %s", key, err, owner)
		}
	}
	if redirected == 0 {
		t.Fatal("no key of 50 belongs to another node: the test proves nothing")
	}

	// A cluster client seeded with one node reaches every primary directly.
	cc := checkOneHop(t, ctx, nodes, &goredis.ClusterOptions{Addrs: []string{nodes[1].RESPAddr()}})

	// A node that leaves is no longer described, and the sessions stay
	// reachable through the cluster client.
	c.Stop(2)
	c.WaitAgreed(t, 2)
	c.WaitReady(t)
	nodes = c.Running()
	waitLayout(t, ctx, nodes)
	cc.ReloadState(ctx)
	for i := range oneHopSessions {
		key := fmt.Sprint("sess:", i)
		if v, err := cc.Get(ctx, key).Result(); err != nil || v != key {
			t.Errorf("GET %s after a node left: %q, %v", key, v, err)
		}
	}
}

// A node joining a cluster describes no slots until it has the cluster's
// table: one restarting into its cluster must not claim every slot to a
// client that reloads its layout from it.
func TestRESPClusterMode_joiningNodeClaimsNoSlots(t *testing.T) {
	nd := nodetest.StartNode(t, func(c *node.Config) {
		respClusterMode(0, c)
		c.Join = []string{node.FreeAddr(t)} // no one there: it keeps trying
	})
	ctx := ctxFor(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: nd.RESPAddr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	if slots, err := rdb.ClusterSlots(ctx).Result(); err != nil || len(slots) != 0 {
		t.Errorf("CLUSTER SLOTS while joining: got %v, %v; want no slots", slots, err)
	}
	if info, err := rdb.ClusterInfo(ctx).Result(); err != nil || !strings.Contains(info, "cluster_state:fail") {
		t.Errorf("CLUSTER INFO while joining: got %q, %v; want cluster_state:fail", info, err)
	}
}
