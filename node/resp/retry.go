package resp

import (
	"context"
	"slices"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// While a cluster notices that a node is gone (seconds), requests on the
// keys it served fail with CodeUnavailable (TRYAGAIN): a write whose
// primary or only backup was there cannot be applied, nor copied. Redis
// session stores pass such errors on (express-session answers 500), so a
// request that fails that way is sent again, off the event loop, until it
// succeeds, its client hangs up, or Config.RetryWindow has passed since
// the command's first attempt (a pipeline's commands share one window,
// from when the pipeline was read), as the Go client does its calls
// (client.Config.RetryTimeout).
// Only requests that may be sent twice are (repeatable): an attempt that
// failed may still have been applied. Requests that succeeded are not sent
// again: a write another client made since must not be undone.

// DefaultRetryWindow covers noticing a lost node (about 5 s with either
// gossip preset) and the tables changing after it.
const DefaultRetryWindow = 10 * time.Second

const (
	retryFirst = 20 * time.Millisecond  // the wait before the second attempt
	retryMost  = 320 * time.Millisecond // the longest wait between attempts
)

// retrier paces one command's attempts.
type retrier struct {
	since time.Time     // when its requests were built; zero: never tried again
	wait  time.Duration // before the next attempt
	aged  int64         // milliseconds taken off the requests' TTLs so far
}

// retrier returns the pacing of a command about to make its first
// attempt. On the event loop, or with no window, it is never tried again.
func (c *conn) retrier() retrier {
	switch {
	case c.onLoop || c.s.cfg.RetryWindow <= 0:
		return retrier{}
	case !c.batchAt.IsZero():
		return retrier{since: c.batchAt} // a pipeline's commands share one window
	}
	return retrier{since: time.Now()}
}

// pace waits before another attempt at rq and reports whether to make it;
// false means answer as it is: past the window, or for a client that has
// hung up (one whose read timeout ran out). Before the attempt it takes
// the time since the requests were built off their TTLs, so that a write
// sent again expires when its first attempt would have: an absolute
// expiry (EXPIREAT, SET ... PXAT, scs's PEXPIREAT) stays where it was.
func (c *conn) pace(ctx context.Context, rt *retrier, rq []*protocol.Request) bool {
	client := c
	if c.owner != nil {
		client = c.owner
	}
	if rt.since.IsZero() || client.hungUp.Load() {
		return false
	}
	rt.wait = max(rt.wait, retryFirst)
	if time.Since(rt.since)+rt.wait > c.s.cfg.RetryWindow {
		return false
	}
	t := time.NewTimer(rt.wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	rt.wait = min(2*rt.wait, retryMost)
	c.s.retries.Add(1)
	age := time.Since(rt.since).Milliseconds()
	for _, r := range rq {
		shorten(r, age-rt.aged)
	}
	rt.aged = age
	return true
}

// shorten takes ms off the TTL r sets. A TTL that may delete the key
// (FlagAllowPast, EXPIRE's) may pass zero, deleting it as its deadline has
// passed; a SET's is kept positive, expiring at once.
func shorten(r *protocol.Request, ms int64) {
	switch {
	case ms <= 0 || r.TTL <= 0 || r.Flags&(protocol.FlagNoTTL|protocol.FlagKeepTTL) != 0:
	case r.Op != protocol.OpSet && r.Op != protocol.OpTouch && r.Op != protocol.OpGetAndTouch:
	case r.Flags&protocol.FlagAllowPast != 0:
		r.TTL -= ms
	default:
		r.TTL = max(r.TTL-ms, 1)
	}
}

// again reports whether a failed step that applies all of its requests rq
// or none (a lone request, an atomic batch) should be made again, having
// waited before it: its failure (see failure) says the cluster is
// changing, and its requests are repeatable.
func (c *conn) again(ctx context.Context, rt *retrier, repeatable bool, rq []*protocol.Request, code protocol.Code) bool {
	return repeatable && changing(code) && c.pace(ctx, rt, rq)
}

// failure returns the code of a step's failure: err's, else that of the
// first error in resps, or CodeOK.
func failure(err error, resps []protocol.Response) protocol.Code {
	if err != nil {
		return protocol.CodeOf(err)
	}
	return firstError(resps)
}

// doAtomic runs reqs as one atomic step (DoAtomic), filling resps, and
// again while it fails because the cluster is changing, if repeatable.
func (c *conn) doAtomic(ctx context.Context, repeatable bool, reqs []protocol.Request, resps []protocol.Response) error {
	rq, rs := pointers(reqs, resps)
	rt := c.retrier()
	err := c.s.b.DoAtomic(ctx, rq, rs)
	for c.again(ctx, &rt, repeatable, rq, failure(err, resps)) {
		err = c.s.b.DoAtomic(ctx, rq, rs)
	}
	return err
}

// doAgain sends req again while it fails because the cluster is changing
// (again). A DEL of keys on several nodes deletes what it can at each
// attempt; the keys an attempt deleted keep the DEL's token (multiKey), so
// the next attempt counts them again and its count is the DEL's.
func (c *conn) doAgain(ctx context.Context, rt *retrier, cmd *command, req *protocol.Request, resp *protocol.Response) {
	rq := []*protocol.Request{req}
	for c.again(ctx, rt, repeatable(cmd, req), rq, resp.Code) {
		c.s.b.Do(ctx, req, resp)
	}
}

// redo sends again, together through DoAll, the requests of rq that may
// be (can) and whose responses in rs say the cluster is changing, until
// none does or pace says stop. Those that succeeded are not sent again. A
// failed SET of a key that a later SET of rq sets, or is sending again,
// is not sent again either, so the later value stays; it is answered as
// done.
func (c *conn) redo(ctx context.Context, rt *retrier, rq []*protocol.Request, rs []*protocol.Response, can func(i int) bool) {
	var sets map[string]bool // keys later requests set
	var q []*protocol.Request
	var s []*protocol.Response
	for {
		if !slices.ContainsFunc(rs, func(r *protocol.Response) bool { return changing(r.Code) }) {
			return // the common case: nothing failed so
		}
		q, s = q[:0], s[:0]
		for i := len(rq) - 1; i >= 0; i-- {
			r, code := rq[i], rs[i].Code
			again := changing(code) && can(i)
			if again && r.Op == protocol.OpSet && sets[r.Key] {
				rs[i].Code, rs[i].Msg = protocol.CodeOK, ""
				continue
			}
			if again {
				q, s = append(q, r), append(s, rs[i])
			}
			if r.Op == protocol.OpSet && (again || code == protocol.CodeOK) {
				if sets == nil {
					sets = map[string]bool{}
				}
				sets[r.Key] = true
			}
		}
		clear(sets)
		if len(q) == 0 || !c.pace(ctx, rt, rq) {
			return
		}
		c.s.b.DoAll(ctx, q, s)
	}
}

// redoFailed sends again those of c.reqs, built by cmd and run
// independently, that failed because the cluster is changing (redo).
func (c *conn) redoFailed(ctx context.Context, rt *retrier, cmd *command, resps []protocol.Response) {
	if !changing(firstError(resps)) {
		return
	}
	rq, rs := pointers(c.reqs, resps)
	c.redo(ctx, rt, rq, rs, func(i int) bool { return repeatable(cmd, rq[i]) })
}

// repeatable reports whether req, built by cmd, may be sent again after an
// attempt that may have been applied: protocol.Request.Repeatable, or a
// key DEL deletes in a pipeline or a transaction (OpGetAndDelete, of which
// DEL answers only whether the key was there, as a delete does).
func repeatable(cmd *command, req *protocol.Request) bool {
	return req.Repeatable() || req.Op == protocol.OpGetAndDelete && cmd.flags&flagCounts != 0
}

// allRepeatable reports whether every request of reqs, built by cmd, is
// repeatable.
func allRepeatable(cmd *command, reqs []protocol.Request) bool {
	for i := range reqs {
		if !repeatable(cmd, &reqs[i]) {
			return false
		}
	}
	return true
}

// firstError returns the code of the first response of resps that is an
// error (not found is not), or CodeOK.
func firstError(resps []protocol.Response) protocol.Code {
	for i := range resps {
		if c := resps[i].Code; c != protocol.CodeOK && c != protocol.CodeNotFound {
			return c
		}
	}
	return protocol.CodeOK
}

// changing reports whether code says the cluster is changing: a node
// unreachable or not yet dropped, or tables that differ (what Redis
// clients see as TRYAGAIN).
func changing(code protocol.Code) bool {
	return code == protocol.CodeUnavailable || code == protocol.CodeNotOwner
}

// Retries returns how many times requests were sent again because the
// cluster was changing (a command's, or a pipeline's, each round once).
func (s *Server) Retries() int64 { return s.retries.Load() }
