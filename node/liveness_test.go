package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// quorumNode is a node "a" of a three-member table {a, b, c}, with just
// enough state for the quorum decision and the resync it triggers.
func quorumNode(t *testing.T) (*Node, *membership) {
	t.Helper()
	n := &Node{cfg: Config{Name: "a", Partitions: 32, Replicas: 2}, log: slog.New(slog.DiscardHandler)}
	n.transfers = newTransfers(n)
	members := []string{"a", "b", "c"}
	tbl, err := ring.Compute(members, 32, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	infos := map[string]protocol.MemberInfo{}
	for _, m := range members {
		infos[m] = protocol.MemberInfo{Name: m, Addr: m + ":1"}
	}
	v, err := newView(tbl, "a", infos, 2)
	if err != nil {
		t.Fatal(err)
	}
	n.cview.Store(v)
	n.members = newMembership(n)
	n.members.updateQuorum(members, false)
	return n, n.members
}

func TestQuorumCountsOnlyMembersHeardFromRecently(t *testing.T) {
	n, m := quorumNode(t)
	t0 := time.Now()
	m.evalQuorum(t0)
	if why := m.noQuorum(); why != "" {
		t.Fatalf("members count for one window after entering the table; got %q", why)
	}
	// b answers, c does not: two of three is still a majority.
	later := t0.Add(quorumWindow + time.Second)
	m.heardFrom("b", later, true)
	m.evalQuorum(later)
	if why := m.noQuorum(); why != "" {
		t.Fatalf("a and b are a majority of three; got %q", why)
	}
	// Neither answers for a window: a alone is a minority, even though
	// both are still in its table.
	cut := later.Add(quorumWindow + time.Second)
	m.evalQuorum(cut)
	if why := m.noQuorum(); why == "" {
		t.Fatal("a node that heard from no one for a window kept quorum")
	}
	if n.transfers.syncCnt.Load() != 0 {
		t.Fatal("losing quorum queued transfers")
	}
	// c answers again: quorum is back, and every held partition is pulled
	// again from both others before anything is served.
	m.heardFrom("c", cut, true)
	m.evalQuorum(cut)
	if why := m.noQuorum(); why != "" {
		t.Fatalf("a and c are a majority; got %q", why)
	}
	v := n.view()
	for p := range n.cfg.Partitions {
		held, _ := v.holds(p)
		srcs := n.transfers.sources(p)
		slices.Sort(srcs)
		switch {
		case held && !slices.Equal(srcs, []string{"b", "c"}):
			t.Errorf("partition %d: resync pulls from %v, want [b c]", p, srcs)
		case !held && len(srcs) > 0:
			t.Errorf("partition %d is not held but is pulled from %v", p, srcs)
		}
	}
}

func TestQuorumIgnoresAnswersFromNonMembers(t *testing.T) {
	_, m := quorumNode(t)
	t0 := time.Now().Add(2 * quorumWindow)
	// An answer from a member no longer in the table is not recorded: it
	// counts again only from when it re-enters the table.
	m.updateQuorum([]string{"a", "c"}, false)
	m.heardFrom("b", t0, true)
	m.mu.Lock()
	_, recorded := m.q.heard["b"]
	m.mu.Unlock()
	if recorded {
		t.Fatal("heard from b while it was out of the table")
	}
}

// A node that never joins anyone (one node on a laptop) is its own
// majority for good, even though no table ever replaces its first one.
func TestQuorumOfALoneNodeNeverLapses(t *testing.T) {
	n := &Node{cfg: Config{Name: "solo", Partitions: 32, Replicas: 2}, log: slog.New(slog.DiscardHandler)}
	n.transfers = newTransfers(n)
	m := newMembership(n)
	m.evalQuorum(time.Now().Add(time.Hour))
	if why := m.noQuorum(); why != "" {
		t.Fatalf("a lone node lost quorum: %q", why)
	}
}

// Reads stop waiting for a member that has missed three heartbeats, long
// before failure detection (or quorum) gives up on it.
func TestSilentMembersAreThoseThatMissedHeartbeats(t *testing.T) {
	n, m := quorumNode(t)
	t0 := time.Now()
	m.evalQuorum(t0)
	if got := n.silentMembers(); got != 0 {
		t.Fatalf("%d members silent on entering the table; want 0", got)
	}
	// b answers, from a table of other members (it has not caught up with
	// a change yet): alive, so not silent. c does not answer.
	later := t0.Add(silentAfter + time.Millisecond)
	m.heardFrom("b", later, false)
	m.evalQuorum(later)
	if !n.silent("c") || n.silent("b") || n.silent("a") || n.silentMembers() != 1 {
		t.Fatalf("silent a/b/c = %v/%v/%v, %d in all; want only c", n.silent("a"), n.silent("b"), n.silent("c"), n.silentMembers())
	}
	if why := m.noQuorum(); why != "" {
		t.Fatalf("a silent member still counts for quorum for its window; got %q", why)
	}
	// c answers again.
	m.heardFrom("c", later, true)
	m.evalQuorum(later)
	if n.silent("c") || n.silentMembers() != 0 {
		t.Fatalf("c answered and is still silent")
	}
}

// A member that left a forwarded read unanswered is skipped by reads for a
// peer timeout, and only for that: not when the caller itself gave up, nor
// for other errors.
func TestQuietPeers(t *testing.T) {
	n, _ := quorumNode(t)
	n.peers = newPeers("test", "", protocol.Limits{}, time.Hour)
	ctx := context.Background()
	n.markQuiet(ctx, "b", errors.New("connection refused"))
	if n.unresponsive("b") {
		t.Fatal("a refused read made b quiet; only a timed-out one should")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	n.markQuiet(done, "b", context.DeadlineExceeded)
	if n.unresponsive("b") {
		t.Fatal("a read whose caller gave up made b quiet")
	}
	n.markQuiet(ctx, "b", fmt.Errorf("get b: %w", context.DeadlineExceeded))
	n.markQuiet(ctx, "c", context.DeadlineExceeded)
	if !n.unresponsive("b") || !n.unresponsive("c") || n.unresponsive("a") {
		t.Fatalf("quiet a/b/c = %v/%v/%v; want b and c", n.unresponsive("a"), n.unresponsive("b"), n.unresponsive("c"))
	}
	if n.silentMembers() != 0 {
		t.Fatal("quiet members counted as silent")
	}
	// It ends: marked until a moment ago, a member is not quiet.
	n.quiet.mark("b", time.Now().Add(-time.Millisecond))
	if n.unresponsive("b") || !n.unresponsive("c") {
		t.Fatalf("quiet b/c = %v/%v after b's time ran out; want c only", n.unresponsive("b"), n.unresponsive("c"))
	}
}

// /servingz (Serving) drops a node that serves nothing, the minority side
// of a split among them, and only such a node: a node of a cluster being
// resized is not ready until its partitions arrive, but serves meanwhile.
// /readyz (Ready) drops the minority side too.
func TestServing_refusedWithoutQuorum_notWhilePartitionsArrive(t *testing.T) {
	n, m := quorumNode(t)
	if ok, why := n.Serving(); ok || why != "joining its cluster" {
		t.Fatalf("before joining: Serving() = %v, %q; want false, joining", ok, why)
	}
	n.joined.Store(true)
	n.settled.Store(true)
	t0 := time.Now()
	m.evalQuorum(t0)
	if ok, why := n.Serving(); !ok {
		t.Fatalf("joined, with quorum: Serving() = false, %q", why)
	}
	if ok, why := n.Ready(); !ok {
		t.Fatalf("joined, with quorum, nothing arriving: Ready() = false, %q", why)
	}

	cut := t0.Add(quorumWindow + time.Second) // b and c silent for a window
	m.evalQuorum(cut)
	if ok, why := n.Serving(); ok || !strings.HasPrefix(why, "no quorum: ") {
		t.Fatalf("cut off from b and c: Serving() = %v, %q; want false, no quorum", ok, why)
	}
	if ok, why := n.Ready(); ok || !strings.HasPrefix(why, "no quorum: ") {
		t.Fatalf("cut off from b and c: Ready() = %v, %q; want false, no quorum", ok, why)
	}

	m.heardFrom("b", cut, true) // quorum back: every held partition is pulled again
	m.evalQuorum(cut)
	if ok, why := n.Serving(); !ok {
		t.Fatalf("quorum back, partitions arriving: Serving() = false, %q", why)
	}
	if ok, why := n.Ready(); ok || !strings.HasSuffix(why, "still arriving") {
		t.Fatalf("quorum back, partitions arriving: Ready() = %v, %q; want false, still arriving", ok, why)
	}

	n.draining.Store(true)
	if ok, why := n.Serving(); ok || why != "shutting down" {
		t.Fatalf("draining: Serving() = %v, %q; want false, shutting down", ok, why)
	}
}
