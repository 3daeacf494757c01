package node

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// DoAtomic runs single-key requests whose keys share one partition as one
// atomic step (MULTI/EXEC). A failed guard (OpGet with FlagIfVersion) aborts
// it with ErrConflict before anything runs; keys in different partitions
// are refused with ErrBadRequest.
func (n *Node) DoAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) error {
	return n.doAtomic(ctx, reqs, resps, false)
}

// doAtomic runs an atomic batch here if this node is the primary of its
// partition, else forwards it there, unless it was forwarded already.
func (n *Node) doAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response, fwd bool) error {
	switch {
	case !n.joined.Load():
		return protocol.Errorf(protocol.CodeNotOwner, "node %s is %s: it owns no partition yet", n.cfg.Name, n.state()) // see Do
	case !n.serving() && !fwd:
		return protocol.Errorf(protocol.CodeUnavailable, "node %s is %s", n.cfg.Name, n.state())
	}
	if why := n.noQuorum(); why != "" {
		return protocol.Errorf(protocol.CodeUnavailable, "no quorum: %s", why)
	}
	for _, r := range reqs {
		if err := n.cfg.Limits.Check(r); err != nil {
			return err
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	v := n.view()
	p := ring.Partition(reqs[0].Key, n.cfg.Partitions)
	if _, primary := v.holds(p); !primary {
		if fwd {
			return protocol.Errorf(protocol.CodeNotOwner, "node %s is not the primary of partition %d", n.cfg.Name, p)
		}
		return n.forwardAtomic(ctx, v, p, reqs, resps)
	}
	// A batch often writes one key more than once (scs queues SET and
	// PEXPIREAT on its session; a pipeline may SET one key many times):
	// the rollback needs each key's entry from before the batch once, and
	// the backups need each changed key's final entry once.
	keys := make([]string, 0, len(reqs))
	for _, r := range reqs {
		keys = append(keys, r.Key)
	}
	keys = distinct(keys)
	if n.unsure(p) {
		_ = n.ensureKeys(ctx, v, p, keys) // as execPrimary
	}
	backups := v.others(p)
	maxRead := n.cfg.Limits.MaxAtomicReads(len(reqs))
	if len(backups) == 0 {
		_, err := n.store.ExecAtomicTracked(reqs, resps, nil, maxRead)
		return err
	}
	changes, err := n.store.ExecAtomicTracked(reqs, resps, keys, maxRead)
	if err != nil {
		return err
	}
	changed := make(map[string]bool, len(keys))
	for i, r := range reqs {
		if mutates(r.Op) && resps[i].Code == protocol.CodeOK {
			changed[r.Key] = true
		}
	}
	if err := n.replicate(ctx, v, p, backups, written(changes, changed)); err != nil {
		n.revert(changes)
		return err
	}
	return nil
}

// distinct returns keys without repeats, in no particular order. It
// reorders keys in place.
func distinct(keys []string) []string {
	if len(keys) < 2 {
		return keys
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// batchBufs holds buffers for forwardAtomic's encoded batches, which a
// pipeline in a cluster sends by the thousand a second; one grown past
// maxKeptBatch is left to the collector.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxKeptBatch = 64 << 10

// forwardAtomic sends an atomic batch to partition p's primary as one
// OpAtomic request.
func (n *Node) forwardAtomic(ctx context.Context, v *view, p int, reqs []*protocol.Request, resps []*protocol.Response) error {
	bp := batchBufs.Get().(*[]byte)
	batch, err := protocol.AppendBatch((*bp)[:0], reqs)
	if err != nil {
		batchBufs.Put(bp)
		return err
	}
	defer func() { // the request was encoded for the peer before the call returned
		if cap(batch) <= maxKeptBatch {
			*bp = batch
		}
		batchBufs.Put(bp)
	}()
	to := v.primary(p)
	d := n.peers.timeout
	if !slices.ContainsFunc(reqs, func(r *protocol.Request) bool { return !failsOver(v, p, r) }) {
		// Reads only, each of which its backup may answer: the primary gets
		// half the time, and if it is unresponsive none. Run alone (as a
		// pipeline runs a group that failed), each falls over to the backup.
		if n.unresponsive(to) {
			return protocol.Errorf(protocol.CodeUnavailable, "forward: %s, the primary of partition %d, does not answer", to, p)
		}
		d /= 2
	}
	n.metrics.forwarded.Inc()
	r, err := n.callWithin(ctx, v, to, &protocol.Request{Op: protocol.OpAtomic, Value: batch, Flags: protocol.FlagForwarded}, d)
	if err != nil {
		if d < n.peers.timeout {
			n.markQuiet(ctx, to, err)
		}
		return forwardErr(err, "forward")
	}
	if err := r.Err(); err != nil {
		return err
	}
	got, err := protocol.DecodeResponseBatch(r.Value)
	if err != nil {
		return err
	}
	if len(got) != len(resps) {
		return protocol.Errorf(protocol.CodeInternal, "atomic batch: %d replies for %d requests", len(got), len(resps))
	}
	for i := range resps {
		*resps[i] = *got[i]
	}
	return nil
}

// serveAtomic runs an OpAtomic request.
func (n *Node) serveAtomic(ctx context.Context, req *protocol.Request, resp *protocol.Response) {
	reqs, err := protocol.DecodeRequestBatch(req.Value)
	if err != nil {
		resp.SetErr(err)
		return
	}
	resps := make([]*protocol.Response, len(reqs))
	rs := make([]protocol.Response, len(reqs)) // one allocation, not one a request
	for i := range resps {
		resps[i] = &rs[i]
	}
	if err := n.doAtomic(ctx, reqs, resps, req.Flags&protocol.FlagForwarded != 0); err != nil {
		resp.SetErr(err)
		return
	}
	if resp.Value, err = fitReplies(resps, n.cfg.Limits.MaxAtomicBatch()); err != nil {
		resp.SetErr(err)
	}
}

// fitReplies encodes an atomic batch's responses in at most limit bytes.
// The batch ran, so its answer must come back: a failure would have the
// caller run it again. The store refuses a batch whose reads would not fit
// (Store.ExecAtomicTracked), so this is a last resort: values read go,
// largest first, until the reply fits, and their requests answer
// TooLarge.
func fitReplies(resps []*protocol.Response, limit int) ([]byte, error) {
	b, err := protocol.EncodeBatch(resps)
	if err != nil || len(b) <= limit {
		return b, err
	}
	order := make([]int, len(resps))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return len(resps[b].Value) - len(resps[a].Value) })
	size := len(b)
	for _, i := range order {
		if size <= limit || len(resps[i].Value) == 0 {
			break
		}
		r := protocol.Response{Code: protocol.CodeTooLarge,
			Msg: fmt.Sprintf("its value (%d bytes) and the others read in the same atomic step would not fit in one reply of %d bytes", len(resps[i].Value), limit)}
		// The message takes the value's place, with a few bytes of framing.
		size += len(r.Msg) + 8 - len(resps[i].Value)
		*resps[i] = r
	}
	return protocol.EncodeBatch(resps)
}
