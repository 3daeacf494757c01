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
// command that fails that way is tried again, off the event loop, until it
// succeeds or Config.RetryWindow has passed since its first attempt, as
// the Go client does its calls (client.Config.RetryTimeout). Only commands
// whose every request is protocol.Request.Repeatable are: an attempt that
// failed may still have been applied.

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

// again reports whether the failed attempt at reqs (err, or the errors in
// resps) should be made again, having waited before it; false means
// answer as it is. Only a failure of the cluster changing is tried again,
// never on the event loop, never past the window, and never for a client
// that has hung up (one whose read timeout ran out).
func (c *conn) again(ctx context.Context, rt *retrier, reqs []protocol.Request, resps []protocol.Response, err error) bool {
	if c.onLoop || c.s.cfg.RetryWindow <= 0 || c.hungUp.Load() || !changing(err, resps) {
		return false
	}
	for i := range reqs {
		if !reqs[i].Repeatable() {
			return false
		}
	}
	now := time.Now()
	if rt.deadline.IsZero() {
		rt.deadline, rt.wait = now.Add(c.s.cfg.RetryWindow), retryFirst
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

// changing reports whether err, or else the first error in resps, says
// the cluster is changing: a node unreachable or not yet dropped, or
// tables that differ (what Redis clients see as TRYAGAIN).
func changing(err error, resps []protocol.Response) bool {
	code := protocol.CodeOf(err)
	if err == nil {
		for i := range resps {
			if resps[i].Code != protocol.CodeOK && resps[i].Code != protocol.CodeNotFound {
				code = resps[i].Code
				break
			}
		}
	}
	return code == protocol.CodeUnavailable || code == protocol.CodeNotOwner
}

// Retries returns how many attempts were made again because the cluster
// was changing.
func (s *Server) Retries() int64 { return s.retries.Load() }
