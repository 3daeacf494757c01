package node

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

// Members agree that every one has the new table only from the table
// versions they gossip, and memberlist sends each metadata update to a few
// members picked at random, a few times, then drops it: with the local
// preset and four nodes, to two of the three others. A member it missed
// used to wait for the next state exchange with a member picked at random
// (every 5 s, and not necessarily with the one it missed) before it pulled
// a thing: a node joining three others was ready in 0.5 s most times and
// in 5-8 s one time in ten. Here memberlist sends nothing on its own (no
// gossip, no probes, which carry updates too, no periodic state exchange):
// once the last node has joined, only what the nodes do themselves carries
// an update. They must still come to agree, by exchanging state with the
// members whose table they have not heard of.
func TestCluster_tableGossipLost_membersStillSettle(t *testing.T) {
	t.Cleanup(func() {
		goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
	}) // runs after every node's Close
	n1 := startGossiping(t, "n1", noGossip)
	n2 := startGossiping(t, "n2", noGossip, n1.members.addr)
	n3 := startGossiping(t, "n3", noGossip, n1.members.addr, n2.members.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []*Node{n1, n2, n3} {
		if !pollUntil(ctx, 10*time.Millisecond, func() bool {
			ok, _ := n.Ready()
			return ok && len(n.view().table.Members) == 3
		}) {
			_, why := n.Ready()
			t.Fatalf("%s is not ready on a table of 3 members: %d members, %s", n.cfg.Name, len(n.view().table.Members), why)
		}
	}
}

// noGossip stops memberlist sending anything on its own: no update is
// gossiped, nor piggybacked on a failure probe, and there is no periodic
// state exchange.
func noGossip(mc *memberlist.Config) {
	mc.GossipInterval = 0   // no update is gossiped,
	mc.ProbeInterval = 0    // nor piggybacked on a failure probe,
	mc.PushPullInterval = 0 // and there is no periodic state exchange
}

// startGossiping starts a node named name, native listener and gossip on
// loopback, that joins join, with tune (if not nil) applied to its
// memberlist configuration; it is closed when the test ends.
func startGossiping(t *testing.T, name string, tune func(*memberlist.Config), join ...string) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.Join, cfg.GossipPreset, cfg.tuneGossip = name, join, "local", tune
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", name, err)
		}
	})
	return n
}

// Publishing this node's metadata queues its broadcast and goes on: it
// used to wait up to a second for the broadcast to be sent, and as
// memberlist signals that without blocking, a broadcast sent (or replaced)
// before the wait began made it wait the whole second and fail, stalling
// the cluster loop on most membership changes. Here n1 never sends a
// broadcast (no gossip, no probes to carry one), so a publish that waited
// for it would fail every time.
func TestMembership_publish_doesNotWaitForTheBroadcast(t *testing.T) {
	n1 := startGossiping(t, "n1", noGossip)
	n2 := startGossiping(t, "n2", nil, n1.members.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !pollUntil(ctx, 10*time.Millisecond, func() bool { return n1.members.ml.NumMembers() == 2 }) {
		t.Fatal("n2 did not join n1")
	}
	v := n1.view()
	for i := range 20 {
		if err := n1.members.publish(n1.localMeta(v.table.Version, v.hash, false)); err != nil {
			t.Fatalf("publish %d with %s alive: %v", i, n2.cfg.Name, err)
		}
	}
}
