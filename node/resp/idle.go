package resp

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Idle connections (Config.IdleTimeout, Redis's timeout): a connection
// that has sent nothing for the timeout, has no command running and is not
// reading a reply, is closed. The loops only flag a connection's input (an
// atomic store, no clock read); the sweeper, a goroutine that runs only
// when a timeout is set, notes the time on its own clock when it finds the
// flag set, and asks the loop of each connection it has not found flagged
// for longer than the timeout to close it (checkIdle). Since the time it
// notes is never earlier than the input, no connection is closed before
// the timeout, however late the sweeper runs. The loop first looks at the
// connection's unsent replies: a client still reading a long reply (fewer
// bytes left than at the last look) counts as active, as Redis counts
// every write to a client as its activity.

// idleTick is how often the sweeper looks: a connection is closed at most
// two ticks after the timeout (it notes input up to a tick late).
func idleTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

// stampInput flags that c sent input (or finished a command); it is a
// no-op without a timeout.
func (c *conn) stampInput() {
	if c.s.cfg.IdleTimeout > 0 {
		c.input.Store(true)
	}
}

// startSweeper starts the idle sweeper if a timeout is set; the caller
// holds s.mu, with the server open.
func (s *Server) startSweeper() {
	if s.cfg.IdleTimeout <= 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(idleTick(s.cfg.IdleTimeout))
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			s.closeIdle(time.Now())
		}
	}()
}

// closeIdle notes the input the connections flagged since the last sweep
// and closes those idle for longer than the timeout at now.
func (s *Server) closeIdle(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.input.Swap(false) || c.lastInput.IsZero() || c.running.Load() {
			c.lastInput = now
			continue
		}
		if now.Sub(c.lastInput) <= s.cfg.IdleTimeout || c.idleCheck.Load() {
			continue
		}
		c.idleCheck.Store(true)
		c.checkIdle()
	}
}

// checkIdle has c's loop close it for the idle timeout unless it sent a
// command since the sweep, or the size of its unsent replies changed since
// the loop last looked (the first look with replies unsent counts as a
// change): then its client is still reading, and that counts as input.
// The caller holds s.mu.
func (c *conn) checkIdle() {
	s, gc := c.s, c.gc
	err := c.after.loop.Execute(s.ctx, gnet.RunnableFunc(func(context.Context) error {
		if c.gone {
			return nil
		}
		if c.busy || c.input.Load() { // a command came since the sweep: not idle
			c.idleCheck.Store(false)
			return nil
		}
		// Replies the loop no longer holds may still wait in the socket:
		// reaching none counts as a change too, once.
		if out := gc.OutboundBuffered(); out != c.unsent {
			c.unsent = out
			c.input.Store(true)
			c.idleCheck.Store(false)
			return nil
		}
		s.log.Debug("resp: closing an idle client", "peer", c.addr, "timeout", s.cfg.IdleTimeout)
		s.idleClosed.Add(1)
		_ = gc.Close()
		return nil
	}))
	if err != nil { // the loops are stopping, and close it anyway
		s.idleClosed.Add(1)
		gc.Close()
	}
}

// IdleClosed returns how many connections were closed for the idle
// timeout.
func (s *Server) IdleClosed() int64 { return s.idleClosed.Load() }
