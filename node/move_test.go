package node_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// crawlingTransfers makes every partition transfer crawl after its first
// batch (one 100-byte entry: batches of at most MaxValue = 256 bytes, at 1
// byte/s), so that a partition stays arriving for the length of a test.
func crawlingTransfers(_ int, cfg *node.Config) {
	cfg.TransferRate = 1
	cfg.Limits.MaxValue = 256
}

// TestCluster_scanAndLogoutEverywhere_waitForThePartitionToArrive: a scan
// or a pattern delete ("log out everywhere") covers a whole partition,
// which a new primary cannot fetch key by key as it does for other
// requests while the partition arrives. It ran on what had arrived: the
// logout was acknowledged, counting 1 of 10 sessions, and the other 9
// stayed live. Until the partition has arrived it must be refused (a
// client retries), not half done.
func TestCluster_scanAndLogoutEverywhere_waitForThePartitionToArrive(t *testing.T) {
	c := nodetest.Start(t, 3, crawlingTransfers)
	ctx := ctxFor(t)
	ci := c.Node(0).ClusterInfo()
	after, err := ring.Compute([]string{"node-1", "node-2", "node-3", "node-4"}, ci.Partitions, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A user whose partition moves to the joining node-4 as its primary.
	var tag string
	var part int
	for i := 0; tag == ""; i++ {
		tg := fmt.Sprint("{u:", i, "}")
		if p := ring.Partition(tg, ci.Partitions); after.Primary(p) == "node-4" {
			tag, part = tg, p
		}
	}
	value := []byte(fmt.Sprintf("%0100d", 0))
	const sessions = 10
	var r protocol.Response
	for i := range sessions {
		if c.Node(0).Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: fmt.Sprint(tag, ":", i), Value: value, TTL: 600_000}, &r); r.Code != protocol.CodeOK {
			t.Fatalf("SET: %v", r.Err())
		}
	}
	n4 := nodetest.StartNode(t, func(cfg *node.Config) {
		cfg.Name, cfg.GossipPreset, cfg.Join = "node-4", "local", []string{c.Node(0).GossipAddr()}
		crawlingTransfers(0, cfg)
	})
	nodetest.WaitFor(t, 20*time.Second, func() error {
		if k, _ := n4.Store().PartitionKeys(part); k == 0 {
			return errors.New("node-4 has pulled nothing yet")
		}
		if ok, why := n4.Ready(); ok {
			return errors.New("node-4 has the whole partition: the test needs one still arriving")
		} else if why == "" {
			return errors.New("node-4 is not ready, for no reason given")
		}
		return nil
	})
	n4.Do(ctx, &protocol.Request{Op: protocol.OpScan, Partition: int32(part), Pattern: tag + ":*"}, &r)
	if r.Code != protocol.CodeUnavailable {
		t.Errorf("scan of a partition still arriving: %v, %d keys; want unavailable", r.Code, len(r.Keys))
	}
	n4.Do(ctx, &protocol.Request{Op: protocol.OpDeleteMatch, Partition: int32(part), Pattern: tag + ":*"}, &r)
	if r.Code != protocol.CodeUnavailable {
		t.Fatalf("log out everywhere on a partition still arriving: %v, %d deleted; want unavailable", r.Code, r.N)
	}
	for i := range sessions { // refused, it deleted nothing
		k := fmt.Sprint(tag, ":", i)
		if n4.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: k}, &r); r.Code != protocol.CodeOK {
			t.Errorf("GET %s after a refused log out everywhere: %v; want the session", k, r.Code)
		}
	}
}

// TestCluster_aFormerHolderKeepsAPartitionUntilItHasArrived: a node that
// stops holding a partition dropped its copy dropDelay after the change,
// whether or not the new holders had it yet. With a pull slower than
// that (a large partition, a low --transfer-rate), one crash of the
// remaining old holder then lost every session not yet pulled, though each
// was acknowledged on two nodes. The former holder must keep the partition
// until the new holders have it.
func TestCluster_aFormerHolderKeepsAPartitionUntilItHasArrived(t *testing.T) {
	restore := node.SetDropDelay(100 * time.Millisecond)
	t.Cleanup(restore) // after the nodes close: cleanups run last in, first out
	c, n3, tag, part := moveFromNode2(t, crawlingTransfers)
	ctx := ctxFor(t)
	n2 := c.Node(1)
	var r protocol.Response
	// Several drop delays and drop ticks (1 s) later, node-3 is still
	// pulling at 1 byte/s: node-2 must still have every session.
	time.Sleep(2500 * time.Millisecond)
	if ok, _ := n3.Ready(); ok {
		t.Fatal("node-3 is ready: the test needs a partition still arriving")
	}
	// Nor does node-3, as backup, list what it has so far.
	n3.Do(ctx, &protocol.Request{Op: protocol.OpScan, Partition: int32(part), Pattern: tag + ":*", Flags: protocol.FlagReplicaRead | protocol.FlagForwarded}, &r)
	if r.Code != protocol.CodeUnavailable {
		t.Errorf("backup scan of a partition still arriving: %v, %d keys; want unavailable", r.Code, len(r.Keys))
	}
	if k, _ := n2.Store().PartitionKeys(part); k != moveSessions {
		t.Fatalf("node-2 keeps %d of the %d sessions of partition %d that node-3 is still pulling", k, moveSessions, part)
	}
	// So one crash loses nothing.
	c.Crash(0)
	nodetest.WaitFor(t, 20*time.Second, func() error {
		if got := len(n3.Members()); got != 2 {
			return fmt.Errorf("node-3 has %d members", got)
		}
		return nil
	})
	for i := range moveSessions {
		k := fmt.Sprint(tag, ":", i)
		if n3.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: k}, &r); r.Code != protocol.CodeOK {
			t.Errorf("GET %s after a join and one crash: %v %s; want the session", k, r.Code, r.Msg)
		}
	}
}

// moveSessions is how many sessions moveFromNode2 writes.
const moveSessions = 10

// moveFromNode2 starts node-1 and node-2, writes moveSessions sessions of a
// partition that moves to node-1 (primary) and node-3 (backup) when node-3
// joins, starts node-3, and waits until node-2 has the table in which it
// no longer holds the partition. opts apply to every node.
func moveFromNode2(t *testing.T, opts ...nodetest.Option) (c *nodetest.Cluster, n3 *node.Node, tag string, part int) {
	t.Helper()
	c = nodetest.Start(t, 2, opts...)
	ctx := ctxFor(t)
	ci := c.Node(0).ClusterInfo()
	after, err := ring.Compute([]string{"node-1", "node-2", "node-3"}, ci.Partitions, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; tag == ""; i++ {
		tg := fmt.Sprint("{m:", i, "}")
		p := ring.Partition(tg, ci.Partitions)
		if h := after.Holders(p); slices.Equal(h, []string{"node-1", "node-3"}) {
			tag, part = tg, p
		}
	}
	value := []byte(fmt.Sprintf("%0100d", 0))
	for i := range moveSessions {
		var r protocol.Response
		if c.Node(0).Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: fmt.Sprint(tag, ":", i), Value: value, TTL: 600_000}, &r); r.Code != protocol.CodeOK {
			t.Fatalf("SET: %v", r.Err())
		}
	}
	n3 = nodetest.StartNode(t, func(cfg *node.Config) {
		cfg.Name, cfg.GossipPreset, cfg.Join = "node-3", "local", []string{c.Node(0).GossipAddr()}
		for _, o := range opts {
			o(2, cfg)
		}
	})
	n2 := c.Node(1)
	nodetest.WaitFor(t, 20*time.Second, func() error {
		if got := len(n2.Members()); got != 3 {
			return fmt.Errorf("node-2 has %d members", got)
		}
		ci := n2.ClusterInfo()
		for _, m := range ci.Owners[part] {
			if ci.Members[m].Name == "node-2" {
				return errors.New("node-2 still holds the partition")
			}
		}
		return nil
	})
	return c, n3, tag, part
}

// TestCluster_aFormerHolderDropsAPartitionOnceItHasArrived: the other
// side of the test above: once the new holders have the partition, the
// former holder frees it.
func TestCluster_aFormerHolderDropsAPartitionOnceItHasArrived(t *testing.T) {
	restore := node.SetDropDelay(100 * time.Millisecond)
	t.Cleanup(restore)
	c, n3, _, part := moveFromNode2(t)
	n2 := c.Node(1)
	nodetest.WaitFor(t, 20*time.Second, func() error {
		if ok, why := n3.Ready(); !ok {
			return fmt.Errorf("node-3: %s", why)
		}
		if k, _ := n2.Store().PartitionKeys(part); k != 0 {
			return fmt.Errorf("node-2 still keeps %d keys of partition %d", k, part)
		}
		return nil
	})
}
