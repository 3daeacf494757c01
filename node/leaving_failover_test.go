package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"go.uber.org/goleak"
)

// TestCluster_threeCopies_aFailoverReadAsksAMemberLeaving: with three
// copies a write is acknowledged once one backup has it, so the backup
// that serves a read whose primary is down fetches the key from the other
// holders first. A member leaving gracefully is out of the table but still
// holds its partitions until its hand-off is done, and may be the only
// holder but the primary with an acknowledged write: here a logout (DEL)
// that the first backup missed, while the partition's new holder, which
// took the leaver's place in the table, has not received it yet. When the
// primary then crashes (not yet noticed), the read must ask the leaver
// too: the logged-out session must read as not found, not come back; and
// so once the crash is noticed and the backup promoted.
func TestCluster_threeCopies_aFailoverReadAsksAMemberLeaving(t *testing.T) {
	// Runs after every node has closed, the leaver's Shutdown included.
	// Goroutines of earlier tests still winding down are not this test's.
	leaks := append(nodetest.LeakOptions(), goleak.IgnoreCurrent())
	t.Cleanup(func() { goleak.VerifyNone(t, leaks...) })
	// The LAN preset notices a crash in seconds: the reads run well inside
	// that window. Transfers crawl after their first batch, so neither the
	// leaver's hand-off nor the new holder's pulls carry the delete in the
	// length of the test.
	c := nodetest.Start(t, 4, func(i int, cfg *node.Config) {
		cfg.GossipPreset, cfg.Replicas = "lan", 3
		crawlingTransfers(i, cfg)
	})
	ctx := ctxFor(t)
	ci := c.Node(0).ClusterInfo()
	var names []string
	index, byName := map[string]int{}, map[string]*node.Node{}
	for i, nd := range c.Running() {
		names = append(names, nd.Name())
		index[nd.Name()], byName[nd.Name()] = i, nd
	}
	// The table after each member leaves.
	without := map[string]*ring.Table{}
	for _, m := range names {
		rest := slices.DeleteFunc(slices.Clone(names), func(x string) bool { return x == m })
		after, err := ring.Compute(rest, ci.Partitions, 3, ci.Version+1)
		if err != nil {
			t.Fatal(err)
		}
		without[m] = after
	}
	holders := func(p int) []string {
		var out []string
		for _, o := range ci.Owners[p] {
			out = append(out, ci.Members[o].Name)
		}
		return out
	}
	// A key whose partition is held by primary, backup and leaver (in that
	// order), and once leaver has left by primary, backup and newcomer,
	// which did not hold it before. Below it, two partitions new to the
	// newcomer too (on three members it holds every one): it pulls its
	// partitions in order with two workers, and both get stuck on those
	// (blockers) before they reach the key's.
	var key string
	var part int
	var primary, backup, leaver, newcomer string
	var blockers []int
	for i := 0; key == ""; i++ {
		k := fmt.Sprint("leaving:", i)
		p := ring.Partition(k, ci.Partitions)
		h := holders(p)
		other := slices.DeleteFunc(slices.Clone(names), func(m string) bool { return slices.Contains(h, m) })[0]
		after := without[h[2]]
		if after.Primary(p) != h[0] || after.Members[after.Owners[p][1]] != h[1] {
			continue
		}
		var below []int
		for x := 0; x < p && len(below) < 2; x++ {
			if !slices.Contains(holders(x), other) {
				below = append(below, x)
			}
		}
		if len(below) == 2 {
			key, part, blockers = k, p, below
			primary, backup, leaver, newcomer = h[0], h[1], h[2], other
		}
	}
	t.Logf("%s (partition %d): primary %s, backup %s, leaving %s, new holder %s (stuck on partitions %v)",
		key, part, primary, backup, leaver, newcomer, blockers)
	P, B, Q, R := byName[primary], byName[backup], byName[leaver], byName[newcomer]
	// Three 100-byte sessions in each of those partitions, one a batch: a
	// pull of one applies its first batch, then waits 100 s at 1 byte/s
	// for the next; a push (the leaver's hand-off, or a holder's to the
	// newcomer) waits as long before its first.
	fill := map[int]int{part: 3, blockers[0]: 3, blockers[1]: 3}
	value := []byte(fmt.Sprintf("%0100d", 0))
	for i := 0; len(fill) > 0; i++ {
		k := fmt.Sprint("fill:", i)
		p := ring.Partition(k, ci.Partitions)
		if fill[p] == 0 {
			continue
		}
		if r := doOn(ctx, P, &protocol.Request{Op: protocol.OpSet, Key: k, Value: value, TTL: 600_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET %s: %v", k, r.Err())
		}
		if fill[p]--; fill[p] == 0 {
			delete(fill, p)
		}
	}
	// The session, then its logout, acknowledged; then the backup loses
	// the logout, so only the primary and the leaver have it.
	if r := doOn(ctx, P, &protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte("v"), TTL: 600_000}); r.Code != protocol.CodeOK {
		t.Fatalf("SET %s: %v", key, r.Err())
	}
	var live protocol.Entry
	nodetest.WaitFor(t, 5*time.Second, func() error {
		var ok bool
		if live, ok = B.Store().Entry(key); !ok || live.Tombstone {
			return fmt.Errorf("%s has no live copy of %s yet", backup, key)
		}
		return nil
	})
	if r := doOn(ctx, P, &protocol.Request{Op: protocol.OpDelete, Keys: []string{key}}); r.Code != protocol.CodeOK || r.N != 1 {
		t.Fatalf("DEL %s: %d %v", key, r.N, r.Err())
	}
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, nd := range []*node.Node{B, Q} {
			if e, ok := nd.Store().Entry(key); !ok || !e.Tombstone {
				return fmt.Errorf("%s has not applied the delete of %s yet", nd.Name(), key)
			}
		}
		return nil
	})
	if e, _ := B.Store().Entry(key); !B.Store().Revert(key, e.Version, live, true) {
		t.Fatalf("could not take the delete of %s away from %s", key, backup)
	}

	// The leaver leaves gracefully. Its hand-off does not complete in the
	// length of the test, which then cuts the wait short (as
	// --drain-timeout would) and waits for the node to close.
	drain, stopDraining := context.WithTimeout(context.Background(), time.Minute)
	left := make(chan struct{})
	go func() {
		defer close(left)
		_ = Q.Shutdown(drain)
	}()
	t.Cleanup(func() { // before the cluster closes: cleanups run last in, first out
		stopDraining()
		<-left
	})
	// Wait until the others have the table without it, and know that each
	// other has it (until then a read fetches its key from every member,
	// the crashed primary included, and fails): they are not ready only
	// because partitions are still arriving.
	after := without[leaver]
	nodetest.WaitFor(t, 20*time.Second, func() error {
		for _, nd := range []*node.Node{P, B, R} {
			if !slices.Equal(nd.Members(), after.Members) || nd.TableVersion() != P.TableVersion() {
				return fmt.Errorf("%s has table %d of %v; want the table without %s on %s, %s and %s",
					nd.Name(), nd.TableVersion(), nd.Members(), leaver, primary, backup, newcomer)
			}
			if ok, why := nd.Ready(); !ok && !strings.HasSuffix(why, "still arriving") {
				return fmt.Errorf("%s not ready: %s", nd.Name(), why)
			}
		}
		return nil
	})
	if got := B.ClusterInfo(); got.Members[got.Owners[part][0]].Name != primary || got.Members[got.Owners[part][1]].Name != backup {
		t.Fatalf("partition %d is not %s's with %s as its first backup on %s's table", part, primary, backup, backup)
	}
	// The premise: the leaver still has the logout, and neither the backup
	// nor the new holder has it.
	if e, ok := Q.Store().Entry(key); !ok || !e.Tombstone {
		t.Fatalf("%s, leaving, no longer has the delete of %s: %+v %v", leaver, key, e, ok)
	}
	if e, ok := B.Store().Entry(key); !ok || e.Tombstone {
		t.Fatalf("%s got the delete of %s back before the read: the test needs it missed", backup, key)
	}
	if e, ok := R.Store().Entry(key); ok && e.Tombstone {
		t.Fatalf("%s received the delete of %s before the read: the test needs a new holder without it", newcomer, key)
	}

	table := B.TableVersion()
	c.Crash(index[primary])
	// Through the new holder, which asks the backup once the primary has
	// refused the connection, and through the backup itself: the backup
	// answers both.
	for _, nd := range []*node.Node{R, B} {
		if r := doOn(ctx, nd, &protocol.Request{Op: protocol.OpGet, Key: key}); r.Code != protocol.CodeNotFound {
			t.Errorf("GET of the logged-out %s through %s, its primary down, %s leaving with the delete and %s without it: %v %q; want not found",
				key, nd.Name(), leaver, newcomer, r.Code, r.Value)
		}
	}
	for _, nd := range []*node.Node{B, R} {
		if got := nd.TableVersion(); got != table {
			t.Fatalf("%s's table moved on (%d → %d) before the reads: they did not test the window", nd.Name(), table, got)
		}
	}

	// Once the crash is noticed the backup is the partition's primary. It
	// pulls the partition from the other old holders and from the member
	// leaving, and fetches a requested key from them until it has: the
	// logout stays final then too. The reads above brought the delete to
	// the backup, so it is taken away from it again first.
	if e, _ := B.Store().Entry(key); !B.Store().Revert(key, e.Version, live, true) {
		t.Fatalf("could not take the delete of %s away from %s again", key, backup)
	}
	nodetest.WaitFor(t, 30*time.Second, func() error {
		for _, nd := range []*node.Node{B, R} {
			if slices.Contains(nd.Members(), primary) {
				return fmt.Errorf("%s's table still has the crashed %s: %v", nd.Name(), primary, nd.Members())
			}
		}
		return nil
	})
	if got := B.ClusterInfo(); got.Members[got.Owners[part][0]].Name != backup {
		t.Fatalf("%s is not partition %d's primary once %s is dropped", backup, part, primary)
	}
	for _, nd := range []*node.Node{B, R} {
		if r := doOn(ctx, nd, &protocol.Request{Op: protocol.OpGet, Key: key}); r.Code != protocol.CodeNotFound {
			t.Errorf("GET of the logged-out %s through %s, %s promoted, %s leaving with the delete: %v %q; want not found",
				key, nd.Name(), backup, leaver, r.Code, r.Value)
		}
	}
}
