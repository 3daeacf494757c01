package node

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Serving requests while partitions move: until a partition has arrived,
// and while the members' tables disagree, a request fetches its keys from
// the nodes that may hold them (ensureKeys); a request that covers the
// whole partition waits for it (waitArrived).

// keySources returns the nodes that may hold entries of partition p this
// node lacks: the members p is still to be pulled from, and, while the
// members' tables disagree, every other member (one of them may still act
// on an older table and have acknowledged a write here unseen).
func (n *Node) keySources(v *view, p int) []string {
	srcs := n.transfers.sources(p)
	if n.settled.Load() {
		return srcs
	}
	for _, m := range v.table.Members {
		if m != v.self && !slices.Contains(srcs, m) {
			srcs = append(srcs, m)
		}
	}
	return srcs
}

// unsure reports whether requests on partition p must first fetch missing
// keys from other nodes (ensureKeys).
func (n *Node) unsure(p int) bool { return !n.settled.Load() || n.transfers.syncing(p) }

// ensureKeys fetches keys of partition p that this node lacks from the
// nodes that may hold them (keySources), so that a request during a
// transfer or a table change sees what they hold. It reports whether every
// source answered for every key.
func (n *Node) ensureKeys(ctx context.Context, v *view, p int, keys []string) bool {
	return n.fetchKeys(ctx, v, p, keys, n.keySources(v, p))
}

// fetchKeys fetches keys of partition p from the members srcs and applies
// what they hold; it reports whether every one answered for every key.
func (n *Node) fetchKeys(ctx context.Context, v *view, p int, keys []string, srcs []string) bool {
	if len(srcs) == 0 {
		return true
	}
	// Every key is fetched, present or not: a copy here may be older than
	// one a node still on the previous table acknowledged. The sources are
	// asked at once, and each for all the keys together, so that one that
	// does not answer costs one peer timeout, not one per key; entries
	// apply by version, so arrival order is moot.
	reqs := make([]*protocol.Request, len(keys))
	for i, k := range keys {
		reqs[i] = &protocol.Request{Op: protocol.OpFetch, Partition: int32(p), Key: k}
	}
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resps, _ := n.callAll(ctx, v, src, reqs, n.peers.timeout)
			for _, r := range resps {
				if r == nil || r.Code != protocol.CodeOK { // nil: no answer (its error is in errs)
					failed.Store(true)
					continue
				}
				for i := range r.Entries {
					_, _ = n.store.Apply(&r.Entries[i])
				}
			}
		}()
	}
	wg.Wait()
	return !failed.Load()
}

// waitArrived waits at most d until partition p is no longer unsure: every
// member has this node's table and p has been pulled. It reports whether
// that happened.
func (n *Node) waitArrived(ctx context.Context, p int, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return pollUntil(ctx, 10*time.Millisecond, func() bool { return !n.unsure(p) })
}

// waitSettled waits until every member has the same table as this node, or
// ctx ends; it reports whether they do.
func (n *Node) waitSettled(ctx context.Context) bool {
	return pollUntil(ctx, 20*time.Millisecond, n.settled.Load)
}

// pollUntil checks cond every interval until it holds or ctx ends, and
// reports whether it holds.
func pollUntil(ctx context.Context, every time.Duration, cond func() bool) bool {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
