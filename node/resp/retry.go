package resp

import (
	"context"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// While a cluster notices that a node is gone (seconds), requests on the
// keys it served fail with CodeUnavailable (TRYAGAIN): a write whose
// primary or only backup was there cannot be applied, nor copied. Redis
// session stores pass such errors on (express-session answers 500), so a
// request that fails that way is sent again, off the event loop, until it
// succeeds, its client hangs up, or Config.RetryWindow has passed since
// the command's first failure (a pipeline's: its commands share one
// window), as the Go client does its calls (client.Config.RetryTimeout).
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
	deadline time.Time // zero until the first failure
	wait     time.Duration
}

// pace waits before another attempt and reports whether to make it; false
// means answer as it is: on the event loop (which must not wait), past
// the window, or for a client that has hung up (one whose read timeout
// ran out).
func (c *conn) pace(ctx context.Context, rt *retrier) bool {
	client := c
	if c.owner != nil {
		client = c.owner
	}
	if c.onLoop || c.s.cfg.RetryWindow <= 0 || client.hungUp.Load() {
		return false
	}
	now := time.Now()
	if rt.deadline.IsZero() {
		rt.deadline, rt.wait = c.retryBy, retryFirst
		if rt.deadline.IsZero() {
			rt.deadline = now.Add(c.s.cfg.RetryWindow)
		}
	}
	if now.Add(rt.wait).After(rt.deadline) {
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
	return true
}

// again reports whether a failed step that applies all of its requests or
// none (a lone request, an atomic batch) should be made again, having
// waited before it: its failure (err, else the first error in resps) says
// the cluster is changing, and its requests are repeatable.
func (c *conn) again(ctx context.Context, rt *retrier, repeatable bool, resps []protocol.Response, err error) bool {
	code := protocol.CodeOf(err)
	if err == nil {
		code = firstError(resps)
	}
	return repeatable && changing(code) && c.pace(ctx, rt)
}

// redo sends again, together through DoAll, the requests of rq that may
// be (can) and whose responses in rs say the cluster is changing, until
// none does or pace says stop. Those that succeeded are not sent again. A
// failed SET of a key that a later SET of rq sets too is not sent again
// either, so the later value stays; it is answered as done.
func (c *conn) redo(ctx context.Context, rt *retrier, rq []*protocol.Request, rs []*protocol.Response, can func(i int) bool) {
	var sets map[string]bool // keys later requests set
	var q []*protocol.Request
	var s []*protocol.Response
	for {
		q, s = q[:0], s[:0]
		for i := len(rq) - 1; i >= 0; i-- {
			r := rq[i]
			if changing(rs[i].Code) && can(i) {
				if r.Op == protocol.OpSet && sets[r.Key] {
					rs[i].Code, rs[i].Msg = protocol.CodeOK, ""
				} else {
					q, s = append(q, r), append(s, rs[i])
				}
			}
			if r.Op == protocol.OpSet {
				if sets == nil {
					sets = map[string]bool{}
				}
				sets[r.Key] = true
			}
		}
		clear(sets)
		if len(q) == 0 || !c.pace(ctx, rt) {
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
