package resp

// A large command arriving in pieces.
//
// gnet keeps a connection's unread input in a ring buffer that grows by
// doubling (copying what it holds each time), and Peek copies the input
// out whole when the ring wraps; and while a command of many values
// arrives, the reader's need is only the end of the value arriving, so
// each value cost a parse and a copy of everything before it. Twenty
// connections each partway through a 30 MiB MSET took a node to 1.1 GB,
// with the input waiting bounded at 128 MiB (Config.MaxWaitingInput).
//
// So once a connection's unfinished command reaches bigPending bytes, its
// input moves, as it arrives, into pend, a buffer of the connection's
// own (appendPending), and pend is dropped once the command has run; gnet's
// ring then holds no more than one read. The same attack now peaks at
// about 0.5 GB (docs/benchmarks.md, "A large command arriving slowly").

// buffered returns how many bytes of input wait to be parsed. If pend is
// in use, or gnet holds bigPending bytes of an unfinished command, it
// first moves gnet's input to the end of pend.
func (c *conn) buffered() int {
	gc := c.gc
	n := gc.InboundBuffered()
	if c.pend == nil && (n < bigPending || n >= c.rd.Need()) {
		return n
	}
	if n > 0 {
		in, _ := gc.Peek(n)
		c.appendPending(in)
		gc.Discard(n)
	}
	return len(c.pend)
}

// unrun returns how many bytes of input the connection holds: in pend and
// in gnet's buffer.
func (c *conn) unrun() int { return c.gc.InboundBuffered() + len(c.pend) }

// inputBytes returns the first n bytes of the input buffered counted.
func (c *conn) inputBytes(n int) []byte {
	if c.pend != nil {
		return c.pend[:n]
	}
	in, _ := c.gc.Peek(n)
	return in
}

// consume drops the first n bytes of input: their commands have run.
func (c *conn) consume(n int) {
	switch {
	case n <= 0: // gnet's Discard(0) would drop everything
	case c.pend == nil:
		c.gc.Discard(n)
	case n == len(c.pend):
		c.pend, c.pendDead = nil, 0
		c.letGo()
	default:
		// Drop the bytes that ran; copy the rest to a buffer of its own
		// (letting go of the array) only once what ran in this array is
		// at least what is left, so each byte is copied O(1) times.
		rest := c.pend[n:]
		c.pend = rest
		if c.pendDead += n; c.pendDead >= len(rest) {
			c.pend = nil
			c.appendPending(rest)
		}
		c.letGo()
	}
}

// letGo drops the references the last commands left to their input (the
// reader's argument slots, the requests built from them), so that an
// array of pend goes once its commands have run.
func (c *conn) letGo() {
	c.rd.forget()
	clear(c.reqs[:cap(c.reqs)])
}

// dropInput discards all input, for a connection that is closing.
func (c *conn) dropInput() {
	c.gc.Discard(-1)
	c.pend, c.pendDead = nil, 0
}

// appendPending appends in to pend. When pend's array is full, the new
// one (with nothing dead in it) holds what pend then holds, n bytes, and
// room up to need (the bytes the command needs, counted from pend's start)
// if that is at most 2n, so that a large value's buffer ends at its size;
// else up to 2n. It grows by a quarter at least: need is often only the
// end of the argument arriving (an MSET of many values), and growing to
// each in turn would copy the command over and over.
func (c *conn) appendPending(in []byte) {
	n := len(c.pend) + len(in)
	if n > cap(c.pend) {
		grown := make([]byte, len(c.pend), max(n, min(2*n, max(c.rd.Need(), n+n/4))))
		copy(grown, c.pend)
		c.pend, c.pendDead = grown, 0
	}
	c.pend = append(c.pend, in...)
}
