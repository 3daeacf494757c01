package resp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The event loops' side of a connection: gnet's callbacks, and running a
// connection's input and sending its replies (traffic). Accepting and
// handing connections over is serve.go's.

// handler receives the event loops' events.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

// OnOpen tracks and counts the connection on its loop, before the loop
// serves any of its commands, so that Clients, CLIENT LIST and INFO never
// lag a connection that was answered; OnClose untracks it.
func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*conn)
	h.s.mu.Lock()
	c.gc = gc
	h.s.conns[c] = struct{}{}
	loop := gc.EventLoop()
	a := h.s.afters[loop]
	if a == nil {
		a = h.s.newAfterPoll(loop)
		h.s.afters[loop] = a
	}
	c.after = a
	h.s.mu.Unlock()
	if err := a.spin.watch(gc.Fd()); err != nil {
		h.s.log.Warn("resp: event loop stops spinning", "err", err)
	}
	h.s.totalConn.Add(1)
	return nil, gnet.None
}

func (h *handler) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c := gc.Context().(*conn)
	c.gone = true
	c.hungUp.Store(true)
	c.closeTLS()
	h.s.admitted.Add(-1)
	h.s.waiting.Add(-c.held.Swap(0))
	c.after.spin.unwatch(gc.Fd())
	h.s.untrack(c)
	return gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	act := c.traffic()
	if act == gnet.None {
		act = c.holdInput()
	}
	if a := c.after; !a.spinNext && a.spin.want() {
		a.spinNext = a.arm(c.s.ctx)
	}
	return act
}

// gnetLogger sends the event loops' logs to the server's logger.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) {
	g.l.Debug("resp: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Infof(format string, args ...any) {
	g.l.Debug("resp: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Warnf(format string, args ...any) {
	g.l.Warn("resp: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Errorf(format string, args ...any) {
	g.l.Error("resp: " + fmt.Sprintf(format, args...))
}
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Error("resp: " + fmt.Sprintf(format, args...))
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, id: s.nextID.Add(1), addr: nc.RemoteAddr().String(), laddr: nc.LocalAddr().String()}
	c.stampInput()
	lim := s.cfg.Limits
	if s.cfg.Password == "" {
		c.authed = true
	} else {
		lim = unauthLimits
	}
	c.rd = NewReader(lim)
	c.w = NewWriter()
	c.created = s.cfg.Now()
	c.onLoop = true
	return c
}

// traffic runs, on the connection's event loop, every complete command
// its input holds, and sends their replies in one write. It stops at a
// command that may wait and runs that one on a goroutine, which wakes the
// loop to go on when it is done.
func (c *conn) traffic() gnet.Action {
	gc := c.gc
	c.stampInput()
	if c.closing {
		c.dropInput()
		return gnet.None
	}
	if c.busy {
		if !c.done.Load() {
			// Input waits for the running command, within bounds: a
			// client may pipeline, not flood.
			if n := c.unrun(); n > c.rd.lim.MaxCommand+maxUnread {
				if c.s.floodLog.Allow(time.Now()) {
					c.s.log.Warn("resp: closing a client that sent too much while a command ran (logged once every 10s)",
						"peer", c.addr, "buffered_bytes", n)
				}
				return gnet.Close
			}
			return gnet.None
		}
		c.busy = false
		c.done.Store(false)
		if c.quit {
			return c.quitNow()
		}
	}
	if gc.OutboundBuffered() > c.unreadLimit() {
		return c.tooMuchUnread()
	}
	ran := 0  // commands run in this pass
	sent := 0 // input whose replies were sent in this pass (flushEvery)
	if n := c.buffered(); n > 0 && n >= c.rd.Need() {
		in := c.inputBytes(n)
		off := 0
		for off < len(in) {
			args, m, err := c.rd.Parse(in[off:])
			if err != nil {
				var pe *ProtocolError
				if errors.As(err, &pe) {
					c.w.Error("ERR " + pe.Error())
				}
				if act := c.flush(); act != gnet.None {
					return act // closed: its descriptor may be another's now
				}
				return c.closeAfterSend(c.lingerClose)
			}
			if m == 0 {
				break
			}
			off += m
			if len(args) == 0 {
				continue
			}
			c.cmds.Add(1)
			ran++
			c.dispatch(c.s.ctx, args)
			if c.deferred {
				c.deferred = false
				batch, more := c.batch(args, in[off:])
				c.consume(off + more)
				if act := c.flush(); act != gnet.None {
					return act
				}
				return c.offload(batch)
			}
			if c.quit {
				return c.quitNow()
			}
			if c.http {
				return c.refuseHTTP()
			}
			if limit := c.unreadLimit(); c.w.Buffered() > limit/4 { // a long pipeline of large replies
				if act := c.flush(); act != gnet.None {
					return act
				}
				if gc.OutboundBuffered() > limit {
					return c.tooMuchUnread()
				}
			}
			if off-sent >= flushEvery && off < len(in) {
				if act := c.flush(); act != gnet.None {
					return act // the client has gone: the rest of its input never runs
				}
				sent = off
			}
		}
		c.consume(off)
	}
	if (ran > 1 || len(c.after.conns) > 0) && sent == 0 {
		act := c.flushLater()
		if ran > 1 && c.after.armed { // Run clears it
			c.after.pipelined = true
		}
		return act
	}
	return c.flush()
}

// wake has the connection's loop serve it again after the events of its
// next poll; the loop's spin ends for the wake-up waiting behind it. Any
// goroutine may call it. It fails once the loop's poller is gone.
func (c *conn) wake() error {
	a := c.after
	a.spin.wakes.Add(1)
	if err := c.gc.Wake(a.wakeDone); err != nil {
		a.spin.wakes.Add(-1)
		return err
	}
	return nil
}

// flushEvery is how much of a long pipeline the loop runs before it sends
// the replies so far, as redis-server reads 16 KiB of a client's input at
// a time: the replies to a client that closed without reading make its
// socket fail, and the rest of its input, up to a whole read (64 KiB),
// then never runs. A client that opened connections in a loop, each
// writing a long pipeline and closing, had every command of each run.
const flushEvery = 16 << 10

// flush sends the buffered replies; the loop keeps what the socket does
// not take at once and sends it as the client reads.
func (c *conn) flush() gnet.Action {
	if c.w.Buffered() == 0 {
		return gnet.None
	}
	_, err := c.gc.Write(c.w.Bytes())
	c.w.Reset()
	if err != nil {
		return gnet.Close
	}
	return gnet.None
}

// offload runs a batch of commands on a goroutine (see batch); the
// connection reads no further command until it is done.
func (c *conn) offload(batch *batchArgs) gnet.Action {
	s := c.s
	c.busy = true
	c.running.Store(true)
	if !s.work.Go(func() {
		c.runBatch(s.ctx, batch.cmds)
		batch.release()
		c.stampInput() // idle from its reply, not from its command
		c.running.Store(false)
		c.done.Store(true)
		_ = c.wake() // an error: the loop's poller is gone, and the connection with it
	}) {
		return gnet.Close
	}
	return gnet.None
}
