package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Read failover: a read whose primary does not answer is answered by the
// partition's backup where that backup is sure to hold every write the
// primary acknowledged (failsOver), so that sessions stay readable through
// every node until failure detection moves the table on. See
// docs/architecture.md, "Routing and replication".

// forwardKeyed forwards a single-key request on partition p to its primary.
// A read its backup may answer (failsOver) gives the primary half the peer
// timeout and goes to the backup if the primary does not answer, or at
// once if the primary is unresponsive (it misses its heartbeats, or left
// a read unanswered lately). A primary that answers, even NotOwner (the
// tables differ for a moment after a change), is taken at its word: this
// node cannot tell whose table is the newer.
func (n *Node) forwardKeyed(ctx context.Context, v *view, p int, req *protocol.Request, resp *protocol.Response) {
	primary := v.primary(p)
	switch {
	case !failsOver(v, p, req):
		_ = n.forward(ctx, v, primary, req, resp, n.peers.timeout)
	case n.unresponsive(primary):
		silent, d := n.silent(primary), n.peers.timeout
		if !silent {
			d /= 2 // leave half for the primary, below
		}
		err := n.readBackup(ctx, v, p, req, resp, d)
		switch {
		case err == nil:
		case !silent && ctx.Err() == nil:
			// Only a read went unanswered: the primary may just have been
			// slow, and the backup may refuse what it would serve.
			_ = n.forward(ctx, v, primary, req, resp, n.peers.timeout/2)
		default:
			resp.SetErr(protocol.Wrapf(protocol.CodeUnavailable, err, "%s, the primary of partition %d, misses its heartbeats, and its backup did not serve the read", primary, p))
		}
	default:
		if err := n.forward(ctx, v, primary, req, resp, n.peers.timeout/2); err != nil {
			n.markQuiet(ctx, primary, err)
			_ = n.readBackup(ctx, v, p, req, resp, n.peers.timeout/2) // resp keeps the forward's error if this fails
		}
	}
}

// failsOver reports whether req may be answered by partition p's backup
// when the primary does not serve it: a read (GET, TTL), and p has a
// backup. The primary acknowledges a write only once a backup has applied
// it, so with one backup that backup holds every write and delete the
// primary acknowledged; with two or more, the first backup serves the read
// once it has fetched the keys from the others (readAsBackup). Writes
// never go to a backup: it would be a second primary.
func failsOver(v *view, p int, req *protocol.Request) bool {
	return (req.Op == protocol.OpGet || req.Op == protocol.OpTTL) && len(v.table.Owners[p]) >= 2
}

// readBackup answers a read that failsOver from partition p's backup,
// which is this node or another (asked with FlagReplicaRead, waiting at
// most d, unless it misses its heartbeats too). It leaves resp alone and returns why
// if the backup did not serve the read. Until failure detection drops a
// crashed primary from the table (seconds), its sessions stay readable
// this way.
func (n *Node) readBackup(ctx context.Context, v *view, p int, req *protocol.Request, resp *protocol.Response, d time.Duration) error {
	backup := v.table.Members[v.table.Owners[p][1]]
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case backup == v.self:
		if err := n.readAsBackup(ctx, v, p, req, resp); err != nil {
			return err
		}
		n.metrics.backupReads.Inc()
		return nil
	case n.silent(backup):
		return fmt.Errorf("backup %s misses its heartbeats too", backup)
	}
	rr := *req
	rr.Flags |= protocol.FlagForwarded | protocol.FlagReplicaRead
	r, err := n.callWithin(ctx, v, backup, &rr, d)
	switch {
	case err != nil:
		return err
	case r.Code != protocol.CodeOK && r.Code != protocol.CodeNotFound:
		return r.Err()
	}
	*resp = *r
	n.metrics.backupReads.Inc()
	return nil
}

// readAsBackup serves a read on partition p, which this node holds, for a
// primary that could not, once it has fetched the keys it may lack from
// every node that may hold them. With one backup (this node's own table
// gives p two holders, whatever table the asker is on) that is the nodes
// of a move still under way (ensureKeys). With two or more, a write was
// acknowledged once one of them had it, so this one may have missed it:
// it fetches the keys from every member but itself and the primary too,
// leaving ones included (a member that held p when the write was
// acknowledged still holds it until every member is ready, so the one
// that applied it is among them).
func (n *Node) readAsBackup(ctx context.Context, v *view, p int, req *protocol.Request, resp *protocol.Response) error {
	k := len(v.table.Owners[p])
	if k < 2 {
		return protocol.Errorf(protocol.CodeUnavailable, "partition %d has no backup on %s's table", p, n.cfg.Name)
	}
	if req.Op == protocol.OpScan && (k > 2 || n.unsure(p)) {
		// A scan names no keys to fetch: on a partition still arriving, or
		// with another backup that may hold writes this one missed, it
		// would skip sessions (execPrimary waits; the primary is away).
		return protocol.Errorf(protocol.CodeUnavailable, "partition %d is still arriving on %s, or has another backup; try again", p, n.cfg.Name)
	}
	srcs := n.keySources(v, p)
	if k > 2 {
		// Members leaving are out of the table but keep their partitions
		// until the others are ready: one may hold the write.
		primary := v.primary(p)
		for m := range v.members {
			inTable := slices.Contains(v.table.Members, m)
			if m != v.self && m != primary && !slices.Contains(srcs, m) && (inTable || n.members != nil && n.members.live(m)) {
				srcs = append(srcs, m)
			}
		}
	}
	if !n.fetchKeys(ctx, v, p, requestKeys(req), srcs) {
		return protocol.Errorf(protocol.CodeUnavailable, "partition %d: %s could not fetch the keys from every node that may hold them", p, n.cfg.Name)
	}
	n.store.ExecOn(p, req, resp)
	return nil
}

// quietPeers records the members a forwarded read got no answer from in
// its time, and until when reads skip them (unix nanoseconds): for a peer
// timeout after that, before the heartbeats can tell (Node.silent). The
// map is replaced, never changed, so a lookup takes no lock.
type quietPeers struct {
	mu sync.Mutex // serialises mark
	m  atomic.Pointer[map[string]int64]
}

func (q *quietPeers) mark(name string, until time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now().UnixNano()
	next := map[string]int64{name: until.UnixNano()}
	if old := q.m.Load(); old != nil {
		for k, t := range *old {
			if k != name && t > now {
				next[k] = t
			}
		}
	}
	q.m.Store(&next)
}

func (q *quietPeers) has(name string) bool {
	m := q.m.Load()
	if m == nil {
		return false
	}
	t, ok := (*m)[name]
	return ok && time.Now().UnixNano() < t
}

// markQuiet records that member name left a forwarded read unanswered in
// its time (err), unless the caller's own context ended first.
func (n *Node) markQuiet(ctx context.Context, name string, err error) {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		n.quiet.mark(name, time.Now().Add(n.peers.timeout))
	}
}

// unresponsive reports whether reads should not wait for member name: it
// misses its heartbeats (silent), or left a forwarded read unanswered
// within the last peer timeout.
func (n *Node) unresponsive(name string) bool { return n.silent(name) || n.quiet.has(name) }
