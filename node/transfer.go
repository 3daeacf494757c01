package node

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Partition transfer: when the table changes, a node pulls each partition
// it now holds from the other holders (old and new) that might have data it
// lacks, applying entries by version so that nothing it already has newer
// is overwritten and tombstones travel with the data. Until a partition has
// arrived, a request on one of its keys first fetches that key from those
// holders (ensureKeys), so the move never causes a false "not found". A
// partition the node no longer holds is dropped after dropDelay.

// dropDelay is how long a node keeps a partition it no longer holds, so
// that its new holders can still pull it.
const dropDelay = time.Minute

// transferWorkers is how many partitions are pulled at once.
const transferWorkers = 2

type pullJob struct {
	p       int
	sources []string
}

type transfers struct {
	n *Node

	mu      sync.Mutex       // guards below
	pending map[int][]string // partition → holders still to pull from
	queued  []int            // partitions waiting for a worker, in order
	dropAt  map[int]time.Time

	kick    chan struct{} // capacity 1: work was queued
	moved   atomic.Int64  // entries applied by transfers
	pulled  atomic.Int64  // partitions completed
	syncCnt atomic.Int32  // len(pending), readable without the lock
}

func newTransfers(n *Node) *transfers {
	return &transfers{n: n, pending: map[int][]string{}, dropAt: map[int]time.Time{}, kick: make(chan struct{}, 1)}
}

// syncing reports whether partition p is still being pulled.
func (t *transfers) syncing(p int) bool {
	if t.syncCnt.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.pending[p]
	return ok
}

// sources returns the holders p is being pulled from, nil if none.
func (t *transfers) sources(p int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.pending[p])
}

// onViewChange queues pulls and drops for the change from old to cur.
func (t *transfers) onViewChange(old, cur *view) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.n.cfg.Partitions {
		holds, _ := cur.holds(p)
		if !holds {
			if held, _ := old.holds(p); held {
				t.dropAt[p] = time.Now().Add(dropDelay)
			}
			delete(t.pending, p)
			continue
		}
		delete(t.dropAt, p)
		oldHolders := old.table.Holders(p)
		heldBefore := slices.Contains(oldHolders, cur.self) && !old.provisional
		var srcs []string
		for _, m := range append(cur.others(p), oldHolders...) {
			if m == cur.self || slices.Contains(srcs, m) {
				continue
			}
			if _, alive := cur.members[m]; !alive {
				continue
			}
			// Pull from a holder unless it held p alongside this node
			// before: then it has nothing this node lacks.
			if heldBefore && slices.Contains(oldHolders, m) {
				continue
			}
			srcs = append(srcs, m)
		}
		if len(srcs) == 0 {
			continue
		}
		if _, queued := t.pending[p]; !queued {
			t.queued = append(t.queued, p)
		}
		t.pending[p] = srcs
	}
	t.syncCnt.Store(int32(len(t.pending)))
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// run pulls queued partitions with a few workers and drops stale ones,
// until ctx is done.
func (t *transfers) run(ctx context.Context) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range transferWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				t.pull(ctx, p)
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if p, ok := t.next(); ok {
			select {
			case jobs <- p:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-tick.C:
			t.dropExpired()
		}
	}
}

func (t *transfers) next() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.queued) > 0 {
		p := t.queued[0]
		t.queued = t.queued[1:]
		if _, ok := t.pending[p]; ok {
			return p, true
		}
	}
	return 0, false
}

// pull fetches partition p from each of its sources in turn. A source that
// fails is retried while it stays a member; p is complete once every source
// was read to the end or left the cluster.
func (t *transfers) pull(ctx context.Context, p int) {
	backoff := 50 * time.Millisecond
	for {
		srcs := t.sources(p)
		if len(srcs) == 0 {
			return
		}
		src := srcs[0]
		v := t.n.view()
		err := t.pullFrom(ctx, v, p, src)
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		cur, ok := t.pending[p]
		if !ok {
			t.mu.Unlock()
			return // no longer held
		}
		if _, member := t.n.view().members[src]; err == nil || !member {
			cur = slices.DeleteFunc(cur, func(m string) bool { return m == src })
			if len(cur) == 0 {
				delete(t.pending, p)
				t.syncCnt.Store(int32(len(t.pending)))
				t.pulled.Add(1)
			} else {
				t.pending[p] = cur
			}
			t.mu.Unlock()
			continue
		}
		t.mu.Unlock()
		t.n.log.Warn("pull partition failed; retrying", "partition", p, "peer", src, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (t *transfers) pullFrom(ctx context.Context, v *view, p int, src string) error {
	cursor := uint64(0)
	for {
		r, err := t.n.call(ctx, v, src, &protocol.Request{Op: protocol.OpFetch, Partition: int32(p), Cursor: cursor})
		if err != nil {
			return err
		}
		if err := r.Err(); err != nil {
			return err
		}
		for i := range r.Entries {
			ok, err := t.n.store.Apply(&r.Entries[i])
			if err != nil {
				return err
			}
			if ok {
				t.moved.Add(1)
			}
		}
		if r.Cursor == 0 {
			return nil
		}
		cursor = r.Cursor
	}
}

func (t *transfers) dropExpired() {
	now := time.Now()
	t.mu.Lock()
	var drop []int
	for p, at := range t.dropAt {
		if now.After(at) {
			drop = append(drop, p)
			delete(t.dropAt, p)
		}
	}
	t.mu.Unlock()
	for _, p := range drop {
		if holds, _ := t.n.view().holds(p); !holds {
			t.n.store.DropPartition(p)
		}
	}
}

// ensureKeys fetches keys of partition p that this node lacks from the
// holders p is being pulled from, so that a request during a transfer sees
// what they hold.
func (n *Node) ensureKeys(ctx context.Context, v *view, p int, keys []string) {
	srcs := n.transfers.sources(p)
	if len(srcs) == 0 {
		return
	}
	for _, k := range keys {
		if _, ok := n.store.Entry(k); ok {
			continue
		}
		for _, src := range srcs {
			r, err := n.call(ctx, v, src, &protocol.Request{Op: protocol.OpFetch, Partition: int32(p), Key: k})
			if err != nil || r.Code != protocol.CodeOK {
				continue
			}
			for i := range r.Entries {
				_, _ = n.store.Apply(&r.Entries[i])
			}
		}
	}
}
