package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Routing: every request names a partition, through its key or directly.
// The partition's primary runs it on its store and replicates the result to
// the backups before it answers; any other node forwards it to the primary
// (one hop). A forwarded request that reaches a node that is not the
// primary either (tables briefly disagree) is answered CodeNotOwner, and
// the client retries with a fresh table.

// Do runs one request and fills resp. It is the single entry point behind
// every listener.
func (n *Node) Do(ctx context.Context, req *protocol.Request, resp *protocol.Response) {
	resetResponse(resp)
	v := n.view()
	part := -1 // the partition req ran on, if any: the metrics' shard
	switch {
	case req.Op == protocol.OpPing:
		resp.Version = v.hash // whose table this node is on; see runHeartbeats
	case !n.joined.Load() && !nodeToNode(req.Op):
		// Members that count this node in their tables forward to it, and
		// clients with their tables route to it, as soon as gossip tells
		// them of the join, before this node has a table of its own: its
		// provisional view holds every partition and none of their data,
		// so it must neither answer "not found" nor acknowledge a write.
		// Nothing ran: the client refreshes its table and retries, a
		// conditional write included.
		resp.SetErr(protocol.Errorf(protocol.CodeNotOwner, "node %s is %s: it owns no partition yet", n.cfg.Name, n.state()))
	case !n.serving() && req.Flags&protocol.FlagForwarded == 0 && !nodeToNode(req.Op):
		resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "node %s is %s", n.cfg.Name, n.state()))
	case req.Op == protocol.OpFlush && !n.cfg.AllowFlush:
		resp.SetErr(protocol.Errorf(protocol.CodeDisabled, "flush is disabled; start the node with --allow-flush"))
	default:
		if err := n.cfg.Limits.Check(req); err != nil {
			resp.SetErr(err)
			break
		}
		if why := n.noQuorum(); why != "" && keyed(req.Op) {
			resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "no quorum: %s", why))
			break
		}
		part = n.route(ctx, v, req, resp)
	}
	resp.Table = v.table.Version
	n.metrics.observe(part, req.Op, resp.Code)
}

// route runs req and returns the partition it named, or -1 if none.
func (n *Node) route(ctx context.Context, v *view, req *protocol.Request, resp *protocol.Response) int {
	switch req.Op {
	case protocol.OpTable:
		resp.Value = append(resp.Value[:0], v.info...)
	case protocol.OpReplicate:
		n.applyReplica(v, req, resp)
	case protocol.OpFetch:
		n.serveFetch(req, resp)
	case protocol.OpAtomic:
		n.serveAtomic(ctx, req, resp)
	case protocol.OpDigest:
		if req.Partition < 0 || int(req.Partition) >= n.cfg.Partitions {
			resp.SetErr(protocol.Errorf(protocol.CodeBadRequest, "partition %d out of range", req.Partition))
			return -1
		}
		sum, k := n.store.Digest(int(req.Partition))
		resp.Version, resp.N = sum, int64(k)
	case protocol.OpStatus:
		b, err := protocol.EncodeNodeStatus(n.Status())
		if err != nil {
			resp.SetErr(err)
		}
		resp.Value = b
	case protocol.OpDelete, protocol.OpExists:
		n.multiKey(ctx, v, req, resp)
	case protocol.OpCount:
		n.count(ctx, v, req, resp)
	case protocol.OpFlush:
		n.flush(ctx, v, req, resp)
	case protocol.OpScan, protocol.OpDeleteMatch:
		if req.Partition < 0 || int(req.Partition) >= n.cfg.Partitions {
			resp.SetErr(protocol.Errorf(protocol.CodeBadRequest, "partition %d out of range [0,%d)", req.Partition, n.cfg.Partitions))
			return -1
		}
		n.onPartition(ctx, v, int(req.Partition), req, resp)
		return int(req.Partition)
	default:
		if !singleKey(req.Op) {
			resp.SetErr(protocol.Errorf(protocol.CodeUnknownOp, "op %s", req.Op))
			return -1
		}
		p := ring.Partition(req.Key, n.cfg.Partitions)
		n.onPartition(ctx, v, p, req, resp)
		return p
	}
	return -1
}

// nodeToNode reports whether op is one nodes send each other (or tools
// ask of one node), served even while the node is joining or leaving.
func nodeToNode(op protocol.Op) bool {
	switch op {
	case protocol.OpTable, protocol.OpStatus, protocol.OpFetch, protocol.OpReplicate, protocol.OpDigest:
		return true
	}
	return false
}

// keyed reports whether op reads or writes sessions, which a node without
// quorum must refuse: a minority must neither diverge from the majority
// nor serve a session the majority has deleted.
func keyed(op protocol.Op) bool {
	switch op {
	case protocol.OpDelete, protocol.OpExists, protocol.OpScan, protocol.OpDeleteMatch, protocol.OpAtomic, protocol.OpCount, protocol.OpFlush:
		return true
	}
	return singleKey(op)
}

// noQuorum returns why this node may not serve sessions now, or "".
func (n *Node) noQuorum() string {
	if n.members == nil {
		return ""
	}
	return n.members.noQuorum()
}

func singleKey(op protocol.Op) bool {
	switch op {
	case protocol.OpGet, protocol.OpSet, protocol.OpTouch, protocol.OpGetAndTouch, protocol.OpGetAndDelete, protocol.OpTTL:
		return true
	}
	return false
}

// mutates reports whether op changes data, so its result must be replicated.
func mutates(op protocol.Op) bool {
	switch op {
	case protocol.OpSet, protocol.OpTouch, protocol.OpGetAndTouch, protocol.OpGetAndDelete, protocol.OpDelete, protocol.OpDeleteMatch:
		return true
	}
	return false
}

// onPartition runs req on partition p's primary.
func (n *Node) onPartition(ctx context.Context, v *view, p int, req *protocol.Request, resp *protocol.Response) {
	holds, primary := v.holds(p)
	switch {
	case primary:
		n.execPrimary(ctx, v, p, req, resp)
	case holds && req.Flags&protocol.FlagReplicaRead != 0 && !mutates(req.Op):
		if err := n.readAsBackup(ctx, v, p, req, resp); err != nil {
			resp.SetErr(err)
		}
	case req.Flags&protocol.FlagForwarded != 0:
		resp.SetErr(protocol.Errorf(protocol.CodeNotOwner, "node %s is not the primary of partition %d (table %d says %s)", n.cfg.Name, p, v.table.Version, v.primary(p)))
	default:
		n.forwardKeyed(ctx, v, p, req, resp)
	}
}

func requestKeys(req *protocol.Request) []string {
	if req.Key != "" {
		return []string{req.Key}
	}
	return req.Keys
}

// forwardErr words a forward that got no answer: Unavailable (the member
// may be gone, and the cluster changing), but TooLarge for a request or a
// reply too large for a frame, which sending again would not change.
func forwardErr(err error, format string, args ...any) *protocol.Error {
	code := protocol.CodeUnavailable
	if protocol.CodeOf(err) == protocol.CodeTooLarge {
		code = protocol.CodeTooLarge
	}
	return protocol.Wrapf(code, err, format, args...)
}

// forward relays req to member to, waiting for it at most d, and copies
// its answer into resp. If to did not answer, it returns why (resp then
// holds an Unavailable error).
func (n *Node) forward(ctx context.Context, v *view, to string, req *protocol.Request, resp *protocol.Response, d time.Duration) error {
	fr := *req
	fr.Flags |= protocol.FlagForwarded
	n.metrics.forwarded.Inc()
	r, err := n.callWithin(ctx, v, to, &fr, d)
	if err != nil {
		resp.SetErr(forwardErr(err, "forward"))
		return err
	}
	*resp = *r
	return nil
}

// DoAll runs independent requests, each as Do would, and fills resps.
// Those that Do would forward go to their primary together, one batch per
// node over one connection, where Do would take a goroutine, a write and
// a wakeup for each: a pipeline of commands on keys spread over the
// cluster. The others run here as Do runs them, at once, those that may
// wait (replicated writes) on the node's workers. The requests must be
// free to run in any order.
func (n *Node) DoAll(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) {
	v := n.view()
	var away map[string][]int // by primary, the requests forwarded to it
	var wg sync.WaitGroup
	for i, req := range reqs {
		if to := n.forwardsTo(v, req); to != "" {
			if away == nil {
				away = make(map[string][]int)
			}
			away[to] = append(away[to], i)
			continue
		}
		if n.Local(req) {
			n.Do(ctx, req, resps[i])
			continue
		}
		n.work.Spawn(&wg, func() { n.Do(ctx, req, resps[i]) })
	}
	last := len(away) // the last primary's requests are sent from here
	for to, idx := range away {
		if last--; last == 0 {
			n.forwardAll(ctx, v, to, reqs, resps, idx)
			break
		}
		n.work.Spawn(&wg, func() { n.forwardAll(ctx, v, to, reqs, resps, idx) })
	}
	wg.Wait()
}

// forwardsTo returns the member that Do would forward req to, or "" if Do
// would run it or refuse it here, or read it from a backup.
func (n *Node) forwardsTo(v *view, req *protocol.Request) string {
	if !singleKey(req.Op) || req.Flags&protocol.FlagForwarded != 0 || !n.serving() || n.noQuorum() != "" || n.cfg.Limits.Check(req) != nil {
		return ""
	}
	p := ring.Partition(req.Key, n.cfg.Partitions)
	holds, primary := v.holds(p)
	if primary || holds && req.Flags&protocol.FlagReplicaRead != 0 && !mutates(req.Op) {
		return ""
	}
	if to := v.primary(p); !failsOver(v, p, req) || !n.unresponsive(to) {
		return to
	}
	return "" // Do reads it from the backup
}

// forwardAll sends the requests idx of reqs to member to, which is their
// primary, together, and fills their responses as Do would. If all of them
// may fail over (failsOver) the primary gets half the peer timeout, and
// those it does not serve are read from their backups, within the other
// half.
func (n *Node) forwardAll(ctx context.Context, v *view, to string, reqs []*protocol.Request, resps []*protocol.Response, idx []int) {
	frs := make([]*protocol.Request, len(idx))
	parts := make([]int, len(idx))
	d := n.peers.timeout / 2
	for j, i := range idx {
		fr := *reqs[i]
		fr.Flags |= protocol.FlagForwarded
		frs[j] = &fr
		if parts[j] = ring.Partition(fr.Key, n.cfg.Partitions); !failsOver(v, parts[j], &fr) {
			d = n.peers.timeout
		}
	}
	n.metrics.forwarded.Add(float64(len(frs)))
	got, errs := n.callAll(ctx, v, to, frs, d)
	if d < n.peers.timeout {
		for _, err := range errs {
			if err != nil {
				n.markQuiet(ctx, to, err)
				break
			}
		}
	}
	var bctx context.Context // the backups' time, from the first one asked
	for j, i := range idx {
		resp, p, r := resps[i], parts[j], got[j]
		if r == nil && failsOver(v, p, reqs[i]) {
			if bctx == nil {
				var cancel context.CancelFunc
				bctx, cancel = context.WithTimeout(ctx, n.peers.timeout/2)
				defer cancel()
			}
			if n.readBackup(bctx, v, p, reqs[i], resp, n.peers.timeout/2) == nil {
				r = resp // filled by the backup
			}
		}
		switch {
		case r == resp:
		case r != nil:
			*resp = *r
		default: // as forward words it
			resetResponse(resp)
			resp.SetErr(forwardErr(errs[j], "forward: %s %s", reqs[i].Op, to))
		}
		resp.Table = v.table.Version
		n.metrics.observe(p, reqs[i].Op, resp.Code)
	}
}

// execPrimary runs req on this node's store as p's primary and replicates
// what it changed before answering.
func (n *Node) execPrimary(ctx context.Context, v *view, p int, req *protocol.Request, resp *protocol.Response) {
	switch {
	case !n.unsure(p):
	case req.Op == protocol.OpScan || req.Op == protocol.OpDeleteMatch:
		// These cover the whole partition, which cannot be fetched key by
		// key: run on what has arrived, a scan would skip live sessions
		// and a "log out everywhere" would leave some logged in.
		if !n.waitArrived(ctx, p, n.peers.timeout/2) {
			resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "partition %d is still arriving on %s; try again", p, n.cfg.Name))
			return
		}
		if n.view() != v { // the table moved on meanwhile: route again
			resp.SetErr(protocol.Errorf(protocol.CodeNotOwner, "the partition table of %s changed while partition %d arrived; try again", n.cfg.Name, p))
			return
		}
	default:
		// A source that does not answer is passed over: the primary serves
		// what it has, as a backup serving a read (readAsBackup) does not.
		_ = n.ensureKeys(ctx, v, p, requestKeys(req))
	}
	replicated := mutates(req.Op) && len(v.table.Owners[p]) > 1
	switch {
	case !replicated && singleKey(req.Op):
		n.store.ExecOn(p, req, resp)
	case !replicated || req.Op == protocol.OpDeleteMatch:
		n.store.Exec(req, resp)
	}
	if !replicated {
		return
	}
	var changes []store.Change
	var entries []protocol.Entry
	if req.Op == protocol.OpDeleteMatch {
		// Not undone if unacknowledged: deleting again is harmless.
		if resp.Code != protocol.CodeOK {
			return
		}
		entries = n.currentEntries(resp.Keys)
	} else {
		// Each key's entry before and after this write, read under the
		// lock the write held: undoing it must not undo another write
		// that ran just before or after it.
		if changes = n.store.ExecTracked(p, req, resp); resp.Code != protocol.CodeOK {
			return
		}
		entries = written(changes, nil)
	}
	if err := n.replicate(ctx, v, p, v.others(p), entries); err != nil {
		n.revert(changes)
		resp.SetErr(err)
		resp.N = 0 // undone: a delete counts nothing (multiKey adds up what took effect)
	}
}

func (n *Node) currentEntries(keys []string) []protocol.Entry {
	entries := make([]protocol.Entry, 0, len(keys))
	for _, k := range keys {
		if e, ok := n.store.Entry(k); ok {
			entries = append(entries, e)
		}
	}
	return entries
}

// written returns the entries changes left, to replicate: those of every
// key, or of the keys in only if it is not nil.
func written(changes []store.Change, only map[string]bool) []protocol.Entry {
	entries := make([]protocol.Entry, 0, len(changes))
	for i := range changes {
		if c := &changes[i]; c.Has && (only == nil || only[c.Key]) {
			entries = append(entries, c.After)
		}
	}
	return entries
}

// revert undoes writes whose replication failed, so that a primary that
// could not reach its backups (cut off, or on a stale table) keeps no copy
// that would later win over what the cluster did acknowledge. Each key
// goes back to its entry from just before the write, and only if nothing
// newer has been written since (Store.Revert).
func (n *Node) revert(changes []store.Change) {
	for i := range changes {
		if c := &changes[i]; c.Changed() {
			n.store.Revert(c.Key, c.After.Version, c.Before, c.Had)
		}
	}
}

// replicate sends entries of partition p to every backup at once. The
// write is acknowledged only if at least one backup applied it, so an
// acknowledged session is always on two nodes: a backup that cannot be
// reached is skipped (the partition is under-replicated until it is back or
// the table changes), but a primary that reaches none of its backups (it
// may be the one cut off) fails the write with ErrUnavailable. A backup
// whose table differs refuses with ErrNotOwner, which fails the write.
//
// With one backup, replicate waits for its answer. With more, it waits for
// them all, but a refusal fails the write at once, and once one backup has
// applied the entries the others get only a moment more (see
// replicaGraceDivisor), none if each of them misses its heartbeats: a
// backup that hangs (paused, or cut off by a firewall that drops packets)
// would otherwise hold every write of its partitions for the peer timeout
// until failure detection moves the table on, and a write forwarded from
// another node would time out there though it was applied. What such a
// backup answers later is not waited for, refusals included; it is as one
// not reached.
func (n *Node) replicate(ctx context.Context, v *view, p int, backups []string, entries []protocol.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	n.metrics.replicated.Add(float64(len(entries)))
	req := &protocol.Request{Op: protocol.OpReplicate, Key: n.cfg.Name, Partition: int32(p), Table: v.table.Version, TableHash: v.hash, Entries: entries}
	// one returns whether b applied the entries, and an error that must
	// fail the write whatever the other backups did.
	one := func(b string) (bool, error) {
		r, err := n.call(ctx, v, b, req)
		switch {
		case protocol.CodeOf(err) == protocol.CodeTooLarge:
			return false, protocol.Wrapf(protocol.CodeTooLarge, err, "replicate to %s", b) // no backup would take it
		case err != nil:
			n.metrics.replicaFailures.Inc()
			n.log.Debug("replicate: backup unreachable", "peer", b, "partition", p, "err", err)
			return false, nil
		case r.Code != protocol.CodeOK:
			return false, protocol.Wrapf(r.Code, r.Err(), "backup %s", b)
		}
		return true, nil
	}
	var applied int
	var failed error
	if len(backups) == 1 { // the common case needs no goroutine
		ok, err := one(backups[0])
		if ok {
			applied++
		}
		failed = err
	} else {
		applied, failed = n.replicateMany(backups, one)
	}
	if failed != nil {
		return failed
	}
	if applied == 0 {
		if ctx.Err() != nil {
			return protocol.Errorf(protocol.CodeUnavailable, "replicate partition %d: %v", p, ctx.Err())
		}
		return protocol.Errorf(protocol.CodeUnavailable, "no backup of partition %d could be reached (%v); the write is not acknowledged", p, backups)
	}
	return nil
}

// replicaGraceDivisor sets how long replicate, once one of two or more
// backups has applied a write, waits for the others: the peer timeout
// divided by this, 100 ms of the default 2 s. Healthy backups answer
// within a millisecond of each other.
const replicaGraceDivisor = 20

// replicateMany runs one for each of two or more backups at once and
// returns how many applied the entries, or the first error that fails the
// write, waiting as replicate says.
func (n *Node) replicateMany(backups []string, one func(string) (bool, error)) (int, error) {
	type answer struct {
		b   string
		ok  bool
		err error
	}
	answers := make(chan answer, len(backups)) // the unwaited-for answer later, unread
	for _, b := range backups {
		go func() {
			ok, err := one(b)
			answers <- answer{b, ok, err}
		}()
	}
	var (
		applied int
		grace   <-chan time.Time
		waiting = slices.Clone(backups)
	)
	for len(waiting) > 0 {
		select {
		case a := <-answers:
			if a.err != nil {
				return applied, a.err // the write fails whatever the others answer
			}
			waiting = slices.DeleteFunc(waiting, func(b string) bool { return b == a.b })
			if a.ok {
				applied++
			}
		case <-grace:
			n.log.Debug("replicate: not waiting for slow backups", "peers", waiting)
			return applied, nil
		}
		if applied > 0 && grace == nil && len(waiting) > 0 {
			if !slices.ContainsFunc(waiting, func(b string) bool { return !n.silent(b) }) {
				return applied, nil // every one left misses its heartbeats
			}
			t := time.NewTimer(n.peers.timeout / replicaGraceDivisor)
			defer t.Stop()
			grace = t.C
		}
	}
	return applied, nil
}

// applyReplica applies a primary's entries if both nodes computed their
// tables from the same members. Otherwise one of them has not seen the
// latest membership change: the sender may not be the primary any more, or
// may be writing to the wrong backups, so the write must not be
// acknowledged. The client retries once the tables agree (within a gossip
// round or two).
func (n *Node) applyReplica(v *view, req *protocol.Request, resp *protocol.Response) {
	p := int(req.Partition)
	if p < 0 || p >= n.cfg.Partitions {
		resp.SetErr(protocol.Errorf(protocol.CodeBadRequest, "partition %d out of range", p))
		return
	}
	if req.TableHash != v.hash {
		resp.SetErr(protocol.Errorf(protocol.CodeNotOwner, "table %d of %s differs from table %d here; retry when they agree", req.Table, req.Key, v.table.Version))
		return
	}
	// On one table, a primary replicates to the partition's backups, and a
	// former holder pushes it to its new holders (the primary among them):
	// only to a node that holds it, and only its keys. (Not checked against
	// this node's --max-key-size and --max-value-size: nodes may differ
	// while an operator changes them, and a push refused for it would be
	// retried for ever. The frame limit and the store bound them.)
	if holds, _ := v.holds(p); !holds {
		resp.SetErr(protocol.Errorf(protocol.CodeNotOwner, "node %s does not hold partition %d in table %d", n.cfg.Name, p, v.table.Version))
		return
	}
	for i := range req.Entries {
		if q := ring.Partition(req.Entries[i].Key, n.cfg.Partitions); q != p {
			resp.SetErr(protocol.Errorf(protocol.CodeBadRequest, "key %q is in partition %d, not %d", req.Entries[i].Key, q, p))
			return
		}
	}
	for i := range req.Entries {
		ok, err := n.store.Apply(&req.Entries[i])
		if err != nil {
			resp.SetErr(err)
			return
		}
		if ok {
			resp.N++
		}
	}
}

// fetchBatchBytes bounds one OpFetch reply or transfer batch: large, so a
// partition moves in few batches, and never more than fits in a frame.
const fetchBatchBytes = 768 << 10

// batchBytes is the transfer batch size under this node's limits: a batch
// of at most a value's size plus the frame's room for everything else
// always fits in a peer's frame.
func (n *Node) batchBytes() int { return min(fetchBatchBytes, n.cfg.Limits.MaxValue) }

func (n *Node) serveFetch(req *protocol.Request, resp *protocol.Response) {
	if req.Partition < 0 || int(req.Partition) >= n.cfg.Partitions {
		resp.SetErr(protocol.Errorf(protocol.CodeBadRequest, "partition %d out of range", req.Partition))
		return
	}
	if req.Key != "" {
		if e, ok := n.store.Entry(req.Key); ok {
			resp.Entries = []protocol.Entry{e}
		}
		return
	}
	limit := n.batchBytes()
	if req.Count > 0 {
		limit = min(int(req.Count), limit)
	}
	resp.Entries, resp.Cursor = n.store.Fetch(int(req.Partition), req.Cursor, limit)
}

func resetResponse(resp *protocol.Response) {
	*resp = protocol.Response{Value: resp.Value[:0]}
}
