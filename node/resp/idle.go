package resp

import (
	"time"
)

// Idle connections (Config.IdleTimeout, Redis's timeout): a connection
// that has sent nothing for the timeout, and has no command running, is
// closed. The loops only flag a connection's input (an atomic store, no
// clock read); the sweeper, a goroutine that runs only when a timeout is
// set, notes the time on its own clock when it finds the flag set, and
// closes the connections it has not found flagged for longer than the
// timeout. Since the time it notes is never earlier than the input, no
// connection is closed before the timeout, however late the sweeper runs.

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
		if now.Sub(c.lastInput) <= s.cfg.IdleTimeout || c.idleClosed {
			continue
		}
		c.idleClosed = true
		s.log.Debug("resp: closing an idle client", "peer", c.addr, "timeout", s.cfg.IdleTimeout)
		s.idleClosed.Add(1)
		c.gc.Close() // safe from any goroutine: the loop closes it
	}
}

// IdleClosed returns how many connections were closed for the idle
// timeout.
func (s *Server) IdleClosed() int64 { return s.idleClosed.Load() }
