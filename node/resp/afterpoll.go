package resp

import (
	"context"
	"runtime"

	"github.com/panjf2000/gnet/v2"
)

// flushLater queues the connection's replies to be sent once its loop
// has read every connection that had input, as Redis sends its replies
// before it sleeps: a client whose replies come in one burst reads them in
// one wakeup and sends its next commands together, so both sides do less
// per request. Queueing costs the loop a wakeup (an eventfd write), so
// traffic queues only pipelines, and single commands when replies are
// already queued; a lone command is answered at once.
func (c *conn) flushLater() gnet.Action {
	if c.w.Buffered() == 0 || c.queued {
		return gnet.None
	}
	a := c.after
	if !a.arm(c.s.ctx) { // the loops are stopping
		return c.flush()
	}
	c.queued = true
	a.conns = append(a.conns, c)
	return gnet.None
}

// afterPoll is what one event loop does once it has served the events of
// a poll: send the replies queued by flushLater, then spin (see spinner).
// It runs as a task on the loop's queue, and the loop runs its tasks after
// the events of its next poll (the one that reports the task's wakeup), so
// every connection that was ready by then has been read. Only the loop
// touches it, but for the spinner's wakes and quit.
type afterPoll struct {
	loop     gnet.EventLoop
	conns    []*conn // whose replies wait
	armed    bool    // Run is queued on the loop
	spinNext bool    // Run is to spin
	// pipelined: a connection sent more than one command since Run last
	// ran. Then Run does not spin: a client that pipelines reads a burst
	// of replies before it sends again, and its batches already spread
	// the cost of the loop's sleep and wake-up over many commands, so a
	// spin would mostly take CPU from it (redis-benchmark -P 16: 1-3%
	// fewer GETs a second and a heavier p99 with it).
	pipelined bool

	// wakeDone is the callback of a worker's Wake: the wake-up has run.
	wakeDone gnet.AsyncCallback
	spin     spinner
}

// newAfterPoll makes a loop's afterPoll; the caller holds s.mu.
//
// A loop spins only if the process has a P to spare beyond its loops:
// a loop that spins keeps its P, and with none left the goroutine whose
// wake-up would end the spin (or any other) could not run until it ends.
func (s *Server) newAfterPoll(loop gnet.EventLoop) *afterPoll {
	a := &afterPoll{loop: loop}
	if s.cfg.IdleSpin > 0 && runtime.GOMAXPROCS(0) > s.cfg.EventLoops {
		set, err := newReadySet()
		if err == nil {
			a.spin = spinner{limit: s.cfg.IdleSpin, set: set}
		} else if runtime.GOOS == "linux" {
			s.log.Warn("resp: event loop will not spin", "err", err)
		}
	}
	a.spin.quit.Store(s.closed)
	a.wakeDone = func(gnet.Conn, error) error {
		a.spin.wakes.Add(-1)
		return nil
	}
	return a
}

// arm queues Run on the loop unless it is queued; it reports false if the
// loop is stopping.
func (a *afterPoll) arm(ctx context.Context) bool {
	if a.armed {
		return true
	}
	if a.loop.Execute(ctx, a) != nil {
		return false
	}
	a.armed = true
	return true
}

// Run sends the queued replies and spins, on the loop.
func (a *afterPoll) Run(context.Context) error {
	a.armed = false
	for i, c := range a.conns {
		a.conns[i] = nil
		c.queued = false
		if c.gone || c.busy || c.closing {
			continue // closed, or a goroutine owns its buffer and flushes it
		}
		c.flush() // a failed write has closed it
	}
	a.conns = a.conns[:0]
	if a.spinNext && !a.pipelined {
		a.spin.spin()
	}
	a.spinNext, a.pipelined = false, false
	return nil
}
