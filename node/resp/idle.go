package resp

import (
	"time"
)

// Idle connections (Config.IdleTimeout, Redis's timeout): a connection
// that has sent nothing for the timeout, and has no command running, is
// closed. The loops stamp each connection with a coarse clock, kept by the
// sweeper, when it sends input, so that input costs no clock read; the
// sweeper, a goroutine that runs only when a timeout is set, closes the
// connections whose stamp is too old.

// idleTick is how often the sweeper looks for idle connections. A stamp
// is up to one tick old when it is taken, so a connection is closed once
// its stamp is older than the timeout plus a tick: never before the
// timeout, and at most two ticks after it.
func idleTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Second)
}

// stampInput records that c sent input now; it is a no-op without a
// timeout.
func (c *conn) stampInput() {
	if c.s.cfg.IdleTimeout > 0 {
		c.active.Store(c.s.idleClock.Load())
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
		start := time.Now()
		t := time.NewTicker(idleTick(s.cfg.IdleTimeout))
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			now := time.Since(start).Milliseconds()
			s.idleClock.Store(now)
			s.closeIdle(now)
		}
	}()
}

// closeIdle closes every connection idle for longer than the timeout at
// now, on the sweeper's clock.
func (s *Server) closeIdle(now int64) {
	limit := (s.cfg.IdleTimeout + idleTick(s.cfg.IdleTimeout)).Milliseconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.running.Load() || now-c.active.Load() <= limit || c.idleClosed.Swap(true) {
			continue
		}
		s.log.Debug("resp: closing an idle client", "peer", c.addr, "timeout", s.cfg.IdleTimeout)
		s.idleClosed.Add(1)
		c.gc.Close() // safe from any goroutine: the loop closes it
	}
}

// IdleClosed returns how many connections were closed for the idle
// timeout.
func (s *Server) IdleClosed() int64 { return s.idleClosed.Load() }
