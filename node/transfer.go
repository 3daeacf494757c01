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
// it now holds from the members that might have data it lacks (every other
// member, for a partition new to it; see pullSources), once every member
// has the new table, so that no holder on an older one can still
// acknowledge a write the pull would miss. Entries apply by version, so
// nothing the node already has newer is overwritten, and tombstones travel
// with the data. A node that held a partition before and still does also
// pushes it to holders that are new, and one that no longer holds it hands
// it to the new holders. Until a partition has arrived, a request on one of
// its keys first fetches that key from the members still to be pulled from
// (ensureKeys), so the move never causes a false "not found". A partition
// the node no longer holds is dropped after dropDelay, once the cluster has
// it elsewhere (dropExpired).

// dropDelay is how long a node keeps a partition it no longer holds, at
// least, so that its new holders can still pull it (see dropExpired). A
// variable for tests only.
var dropDelay = time.Minute

// transferWorkers is how many partitions are pulled at once.
const transferWorkers = 2

type transfers struct {
	n *Node

	mu      sync.Mutex       // guards below
	pending map[int][]string // partition → holders still to pull from
	queued  []int            // partitions waiting for a worker, in order
	pushes  []pushJob        // partitions to push to new holders, in order
	pushing map[int]int      // partition → its pushes queued or under way
	dropAt  map[int]time.Time

	// Progress since transfers last started from idle, for status.
	started     time.Time
	total, done int
	movedAt     int64 // moved when transfers last started

	paceMu   sync.Mutex // guards paceNext
	paceNext time.Time  // when the transfer budget is next free

	kick    chan struct{} // capacity 1: work was queued
	moved   atomic.Int64  // entries applied by transfers
	pulled  atomic.Int64  // partitions completed
	syncCnt atomic.Int32  // len(pending), readable without the lock
	pushCnt atomic.Int32  // len(pushes) plus pushes in progress
}

// pushJob sends partition p to a holder that did not hold it before.
type pushJob struct {
	p  int
	to string
}

func newTransfers(n *Node) *transfers {
	return &transfers{n: n, pending: map[int][]string{}, pushing: map[int]int{}, dropAt: map[int]time.Time{}, kick: make(chan struct{}, 1)}
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
// Sources still pending from an earlier change are kept: a later change
// does not make them redundant.
func (t *transfers) onViewChange(old, cur *view) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.n.cfg.Partitions {
		holds, _ := cur.holds(p)
		if !holds {
			if held, _ := old.holds(p); held && !old.provisional {
				t.dropAt[p] = time.Now().Add(dropDelay)
				// Hand the partition over: what this node acknowledged as
				// a holder reaches the new holders even if their pulls
				// passed it by, or they never knew to pull from here.
				for _, m := range cur.table.Holders(p) {
					t.queuePushLocked(p, m)
				}
			}
			delete(t.pending, p)
			continue
		}
		delete(t.dropAt, p)
		oldHolders := old.table.Holders(p)
		heldBefore := slices.Contains(oldHolders, cur.self) && !old.provisional
		srcs := pullSources(old, cur, p, oldHolders, heldBefore)
		if heldBefore {
			for _, m := range cur.others(p) {
				if !slices.Contains(oldHolders, m) {
					t.queuePushLocked(p, m)
				}
			}
		}
		if len(srcs) == 0 {
			continue
		}
		prev, queued := t.pending[p]
		if !queued {
			t.queued = append(t.queued, p)
			t.startLocked()
			t.total++
		}
		for _, m := range prev {
			if !slices.Contains(srcs, m) {
				srcs = append(srcs, m)
			}
		}
		t.pending[p] = srcs
	}
	t.syncCnt.Store(int32(len(t.pending)))
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// queuePushLocked queues a push of partition p to member m. t.mu must be
// held.
func (t *transfers) queuePushLocked(p int, m string) {
	t.pushes = append(t.pushes, pushJob{p, m})
	t.pushing[p]++
	t.pushCnt.Add(1)
	t.startLocked()
	t.total++
}

// pullSources returns the members partition p is pulled from after the
// change from old to cur, this node holding p in cur. A partition new to
// this node is pulled from every other live member, leaving ones included:
// its current holders may themselves still be filling it (moves chain when
// members join or leave in quick succession), and any former holder may
// have acknowledged writes they lack. One it held before is pulled only from
// holders new to it and from members that entered the table (a node back
// from a network partition, say): the holders it shared p with, and members
// that held none of it, have nothing it lacks. Except for a backup of a
// partition that had two backups or more, when it is to serve it (as its
// primary, or as the one backup, which answers reads the primary cannot):
// the old primary acknowledged a write once one backup applied it, so this
// one may have missed writes, deletes among them, the others have: the
// other old holders, and members leaving (out of the table, a former
// holder of an earlier one may still be handing p over).
func pullSources(old, cur *view, p int, oldHolders []string, heldBefore bool) []string {
	holders := cur.table.Holders(p)
	promoted := heldBefore && len(oldHolders) > 2 && old.primary(p) != cur.self &&
		(cur.primary(p) == cur.self || len(holders) == 2)
	var srcs []string
	for m := range cur.members {
		if m == cur.self {
			continue
		}
		if heldBefore {
			_, wasMember := old.members[m]
			newHolder := slices.Contains(holders, m) && !slices.Contains(oldHolders, m)
			leaving := !slices.Contains(cur.table.Members, m)
			if wasMember && !newHolder && !(promoted && (slices.Contains(oldHolders, m) || leaving)) {
				continue
			}
		}
		srcs = append(srcs, m)
	}
	slices.Sort(srcs)
	return srcs
}

// run pulls queued partitions with a few workers and drops stale ones,
// until ctx is done.
func (t *transfers) run(ctx context.Context) {
	jobs := make(chan func())
	var wg sync.WaitGroup
	for range transferWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				job()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.runDrops(ctx)
	}()
	defer wg.Wait()
	defer close(jobs)
	for {
		if job, ok := t.next(ctx); ok {
			select {
			case jobs <- job:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
	}
}

// runDrops drops partitions this node no longer holds, once their time has
// come (dropExpired), every second until ctx is done.
func (t *transfers) runDrops(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.dropExpired(ctx)
		}
	}
}

// next returns the next transfer to run: pulls first, since this node
// serves from what it pulls, then pushes.
func (t *transfers) next(ctx context.Context) (func(), bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.queued) > 0 {
		p := t.queued[0]
		t.queued = t.queued[1:]
		if _, ok := t.pending[p]; ok {
			return func() { t.pull(ctx, p) }, true
		}
	}
	if len(t.pushes) > 0 {
		j := t.pushes[0]
		t.pushes = t.pushes[1:]
		return func() {
			t.push(ctx, j)
			t.pushCnt.Add(-1)
			t.mu.Lock()
			t.done++
			if t.pushing[j.p]--; t.pushing[j.p] == 0 {
				delete(t.pushing, j.p)
			}
			t.mu.Unlock()
		}, true
	}
	return nil, false
}

// push sends partition j.p to j.to in batches, retrying while j.to still
// holds it (the receiver refuses until its table agrees with this node's).
// The sender may be a holder, or a former holder handing the partition over.
func (t *transfers) push(ctx context.Context, j pushJob) {
	if !t.n.waitSettled(ctx) {
		return
	}
	backoff := 50 * time.Millisecond
	for {
		v := t.n.view()
		if !slices.Contains(v.table.Holders(j.p), j.to) || j.to == v.self {
			return
		}
		if t.inStep(ctx, v, j.p, j.to) {
			return
		}
		err := t.pushTo(ctx, v, j)
		if err == nil || ctx.Err() != nil {
			return
		}
		t.n.log.Debug("push partition failed; retrying", "partition", j.p, "peer", j.to, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// inStep reports whether peer holds exactly what this node holds of
// partition p (equal digests), so that a push to it or a pull from it would
// carry nothing, as when one of them has just pulled p from the other.
// Equal digests are as good as a transfer that took no time.
func (t *transfers) inStep(ctx context.Context, v *view, p int, peer string) bool {
	r, err := t.n.call(ctx, v, peer, &protocol.Request{Op: protocol.OpDigest, Partition: int32(p)})
	if err != nil || r.Code != protocol.CodeOK {
		return false
	}
	sum, n := t.n.store.Digest(p)
	return r.Version == sum && r.N == int64(n)
}

func (t *transfers) pushTo(ctx context.Context, v *view, j pushJob) error {
	cursor := uint64(0)
	for {
		fetched := time.Now()
		entries, next := t.n.store.Fetch(j.p, cursor, t.n.batchBytes())
		size := 0
		for i := range entries {
			size += len(entries[i].Key) + len(entries[i].Value)
		}
		if err := t.throttle(ctx, size); err != nil {
			return err
		}
		// The TTLs were read at fetched: take off the time spent waiting
		// for the throttle, so that a pushed copy expires with the original.
		ageTTLs(entries, time.Since(fetched))
		if len(entries) > 0 {
			req := &protocol.Request{Op: protocol.OpReplicate, Key: t.n.cfg.Name, Partition: int32(j.p),
				Table: v.table.Version, TableHash: v.hash, Entries: entries}
			r, err := t.n.call(ctx, v, j.to, req)
			if err != nil {
				return err
			}
			if err := r.Err(); err != nil {
				return err
			}
			t.moved.Add(r.N)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// ageTTLs shortens the remaining TTLs of entries read d ago. An entry that
// ran out meanwhile keeps 1 ms: it expires on arrival, as it should.
func ageTTLs(entries []protocol.Entry, d time.Duration) {
	ms := d.Milliseconds()
	if ms <= 0 {
		return
	}
	for i := range entries {
		if entries[i].TTL > 0 {
			entries[i].TTL = max(entries[i].TTL-ms, 1)
		}
	}
}

// pull fetches partition p from each of its sources in turn. A source that
// fails is retried while it stays a member; p is complete once every source
// was read to the end or left the cluster.
func (t *transfers) pull(ctx context.Context, p int) {
	// Pull only once every member has the new table: until then a holder
	// on the old one may still acknowledge writes that a pull started
	// earlier would miss. Requests meanwhile fetch their keys (ensureKeys).
	backoff := 50 * time.Millisecond
	for {
		if !t.n.waitSettled(ctx) {
			return
		}
		srcs := t.sources(p)
		if len(srcs) == 0 {
			return
		}
		src := srcs[0]
		v := t.n.view()
		var err error
		if !t.inStep(ctx, v, p, src) {
			err = t.pullFrom(ctx, v, p, src)
		}
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		cur, ok := t.pending[p]
		if !ok {
			t.mu.Unlock()
			return // no longer held
		}
		// A source that left the gossip is done with: a leaving node's
		// view entry outlives it while the member set stays the same.
		if err == nil || !t.n.members.live(src) {
			cur = slices.DeleteFunc(cur, func(m string) bool { return m == src })
			if len(cur) == 0 {
				delete(t.pending, p)
				t.syncCnt.Store(int32(len(t.pending)))
				t.pulled.Add(1)
				t.done++
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
		size := 0
		for i := range r.Entries {
			size += len(r.Entries[i].Key) + len(r.Entries[i].Value)
		}
		applied, err := t.n.store.ApplyBatch(r.Entries)
		t.moved.Add(int64(applied))
		if err != nil {
			return err
		}
		if r.Cursor == 0 {
			return nil
		}
		cursor = r.Cursor
		if err := t.throttle(ctx, size); err != nil {
			return err
		}
	}
}

// paceBurst is how far behind its pace the transfer throttle lets
// transfers catch up at full speed.
const paceBurst = 50 * time.Millisecond

// throttle paces transfers to Config.TransferRate bytes per second, shared
// by every transfer of the node, so that moving partitions leaves room for
// foreground requests.
func (t *transfers) throttle(ctx context.Context, bytes int) error {
	rate := t.n.cfg.TransferRate
	if rate <= 0 || bytes == 0 {
		return nil
	}
	t.paceMu.Lock()
	now := time.Now()
	// Time left unused (a worker busy applying, a slow peer) may be made
	// up, but no more than paceBurst of it.
	if floor := now.Add(-paceBurst); t.paceNext.Before(floor) {
		t.paceNext = floor
	}
	t.paceNext = t.paceNext.Add(time.Duration(float64(bytes) / float64(rate) * float64(time.Second)))
	wait := t.paceNext.Sub(now)
	t.paceMu.Unlock()
	if wait <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// dropExpired drops the partitions this node stopped holding dropDelay ago
// or more, but only once their new holders have them: its own hand-offs
// of them are done, and every member reports this node's table and is
// ready (nothing arriving anywhere; a member that does not answer counts
// as not ready). Until then this node may hold the only copy of sessions a
// new holder has not pulled yet (a large partition at --transfer-rate, a
// table that changed again meanwhile), and one crash would lose them.
func (t *transfers) dropExpired(ctx context.Context) {
	now := time.Now()
	t.mu.Lock()
	due := map[int]time.Time{}
	for p, at := range t.dropAt {
		if now.After(at) && t.pushing[p] == 0 {
			due[p] = at
		}
	}
	t.mu.Unlock()
	if len(due) == 0 {
		return
	}
	v := t.n.view()
	ctx, cancel := context.WithTimeout(ctx, t.n.peers.timeout)
	defer cancel()
	why := t.n.peersSettled(ctx, v)
	switch {
	case why != "":
	case t.n.view() != v || !t.n.settled.Load():
		why = "the partition table changed"
	}
	if why != "" {
		t.n.log.Debug("keeping partitions no longer held until the cluster is ready", "partitions", len(due), "why", why)
		return
	}
	// Under t.mu no view change can come between the checks and the drop:
	// one that made this node hold p again, or queued new hand-offs of it,
	// changed dropAt[p] first.
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := t.n.view()
	for p, at := range due {
		held, _ := cur.holds(p)
		if again, ok := t.dropAt[p]; ok && again.Equal(at) && t.pushing[p] == 0 && !held {
			delete(t.dropAt, p)
			t.n.store.DropPartition(p)
		}
	}
}

// startLocked resets the progress counters if no transfer is under way.
// t.mu must be held.
func (t *transfers) startLocked() {
	if len(t.pending) == 0 && t.pushCnt.Load() == 0 || t.done >= t.total {
		t.started, t.total, t.done, t.movedAt = time.Now(), 0, 0, t.moved.Load()
	}
}

// progress reports transfers since they last started from idle.
func (t *transfers) progress() (done, total int, entries int64, elapsed time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total == 0 {
		return 0, 0, 0, 0
	}
	return t.done, t.total, t.moved.Load() - t.movedAt, time.Since(t.started)
}
