package node_test

import (
	"errors"
	"fmt"
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
		if k := n4.Store().PartitionKeys(part); k == 0 {
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
