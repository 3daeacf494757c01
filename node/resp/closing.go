package resp

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// How a connection ends: a client that does not read its replies, QUIT,
// and protocol errors.

// maxUnread bounds the replies one connection may leave unread. A client
// that goes on sending commands without reading their replies would have
// the node hold them all; past this it is disconnected instead, as Redis
// does with its client output buffer limit.
const maxUnread = 64 << 20

// maxReply bounds one MGET's reply: 1,000 keys of a 1 MiB session in one
// 9 KB command would otherwise take 1 GB to answer (5 GB of the node's
// memory while it is built, and every other client waits). Such an MGET is
// answered with an error instead. Other replies (KEYS of a large
// keyspace) are still sent whole.
const maxReply = maxUnread

// errReplyTooLarge answers an MGET whose reply would pass maxReply.
var errReplyTooLarge = errReply(fmt.Sprintf("ERR the reply would be over %d bytes, the most one reply may take; ask for fewer keys at a time", maxReply))

// maxUnreadUnauth is maxUnread for a client that has not authenticated
// (with --requirepass): it can only be told NOAUTH, and 20 such clients
// pipelining HELLO and reading nothing used to hold 2.2 GB of those
// replies (redis-server closes them at about 20 KB).
const maxUnreadUnauth = 256 << 10

// unreadLimit is maxUnread, or maxUnreadUnauth before AUTH.
func (c *conn) unreadLimit() int {
	if !c.authed {
		return maxUnreadUnauth
	}
	return maxUnread
}

// tooMuchUnread closes a connection whose client does not read its replies.
func (c *conn) tooMuchUnread() gnet.Action {
	if c.s.unreadLog.Allow(time.Now()) {
		c.s.log.Warn("resp: closing a client that does not read its replies (logged once every 10s)",
			"peer", c.addr, "unread_bytes", c.gc.OutboundBuffered(), "limit", c.unreadLimit())
	}
	return gnet.Close
}

// holdInput notes how much input the connection leaves buffered unrun
// once the loop has served it (conn.held, Server.waiting). If that input
// grew and all connections' together are past MaxWaitingInput, the
// connection holding the most is closed, as Redis's maxmemory-clients
// closes the largest client: closing whichever grew last would close a
// client whose command merely arrived in two pieces, while one that
// parked unfinished commands kept them.
func (c *conn) holdInput() gnet.Action {
	if c.evicted.Load() {
		return gnet.Close
	}
	n := int64(c.unrun())
	old := c.held.Load() // only this loop writes it
	if n == old {
		return gnet.None
	}
	c.held.Store(n)
	total := c.s.waiting.Add(n - old)
	if n < old || c.s.cfg.MaxWaitingInput <= 0 || total <= c.s.cfg.MaxWaitingInput {
		return gnet.None
	}
	if c.s.evictLargest(c, total) == c {
		return gnet.Close
	}
	return gnet.None
}

// evictLargest chooses the connection holding the most input to be closed,
// unless those already chosen bring total under MaxWaitingInput; self, the
// connection asking, is closed by its caller, any other on its loop. It
// returns the one chosen, or nil.
func (s *Server) evictLargest(self *conn, total int64) *conn {
	s.mu.Lock()
	var largest *conn
	var most, leaving int64
	for c := range s.conns {
		h := c.held.Load()
		switch {
		case c.evicted.Load():
			leaving += h
		case h > most:
			largest, most = c, h
		}
	}
	if largest == nil || total-leaving <= s.cfg.MaxWaitingInput {
		s.mu.Unlock()
		return nil
	}
	largest.evicted.Store(true)
	s.mu.Unlock()
	if s.waitLog.Allow(time.Now()) {
		s.log.Warn("resp: closing the client holding the most input: the connections' input waiting to be run is over its bound (logged once every 10s)",
			"peer", largest.addr, "its_bytes", most, "all_bytes", total, "limit", s.cfg.MaxWaitingInput)
	}
	if largest != self {
		_ = largest.gc.Close() // on its loop
	}
	return largest
}

// httpCommand reports whether name, a command Redis does not know, is the
// start of an HTTP request ("POST / HTTP/1.1") or one of its headers
// ("Host: ..."), which Redis clients never send. A web page can make a
// browser send an HTTP request to any address and port, the node's Redis
// port included, and the request's body would run as commands: a page
// could forge or delete sessions. The connection is closed instead, as
// redis-server does.
func httpCommand(name []byte) bool {
	return strings.EqualFold(string(name), "post") || strings.EqualFold(string(name), "host:")
}

// refuseHTTP closes a connection that sent an HTTP request (httpCommand),
// with no reply to it.
func (c *conn) refuseHTTP() gnet.Action {
	c.w.Reset()
	if c.s.httpLog.Allow(time.Now()) {
		c.s.log.Warn("resp: closing a connection that sent an HTTP request (POST or Host:), possibly a cross-protocol attack from a web page (logged once every 10s)",
			"peer", c.addr)
	}
	return gnet.Close
}

// quitNow sends the replies so far, QUIT's last, and closes the
// connection once they are sent.
func (c *conn) quitNow() gnet.Action {
	if act := c.flush(); act != gnet.None {
		return act
	}
	return c.closeAfterSend(func() gnet.Action { return gnet.Close })
}

// closeAfterSend ends the connection with finish once the loop has sent
// its replies (after QUIT, or a protocol error): gnet's close drops what
// the socket has not taken, and a reply larger than the socket's buffers
// goes out only as the client reads. Input is discarded meanwhile; a
// client that reads nothing for lingerTime is closed anyway.
func (c *conn) closeAfterSend(finish func() gnet.Action) gnet.Action {
	left := c.gc.OutboundBuffered()
	if left == 0 {
		return finish()
	}
	c.closing = true
	c.dropInput()
	c.awaitSent(finish, left, time.Now(), time.Millisecond)
	return gnet.None
}

// awaitSent has the loop look at the unsent replies again after wait
// (doubling up to 32 ms while the client reads nothing): gnet tells a
// handler nothing when it has written them.
func (c *conn) awaitSent(finish func() gnet.Action, left int, since time.Time, wait time.Duration) {
	s := c.s
	time.AfterFunc(wait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed { // the loops close it
			return
		}
		_ = c.after.loop.Execute(s.ctx, gnet.RunnableFunc(func(context.Context) error {
			if c.gone {
				return nil
			}
			switch out := c.gc.OutboundBuffered(); {
			case out == 0:
				if finish() == gnet.Close {
					_ = c.gc.Close()
				}
			case out < left: // the client reads
				c.awaitSent(finish, out, time.Now(), time.Millisecond)
			case time.Since(since) > lingerTime:
				_ = c.gc.Close()
			default:
				c.awaitSent(finish, out, since, min(2*wait, 32*time.Millisecond))
			}
			return nil
		}))
	})
}

// lingerTime is how long a connection refused for a protocol error keeps
// reading (and discarding) what its client still sends.
const lingerTime = 2 * time.Second

// lingerClose closes the connection after a protocol error as HTTP servers
// do: it ends the output, so the client reads the error and then EOF, and
// discards input until the client closes too or lingerTime passes. Closing
// at once with unread input would reset the connection, and a client still
// sending (a value over the limit) would see only the reset.
func (c *conn) lingerClose() gnet.Action {
	if c.gc.OutboundBuffered() > 0 {
		return gnet.Close
	}
	if err := syscall.Shutdown(c.gc.Fd(), syscall.SHUT_WR); err != nil {
		return gnet.Close
	}
	c.closing = true
	c.dropInput()
	gc, s := c.gc, c.s
	time.AfterFunc(lingerTime, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed { // else the loops close it
			gc.Close()
		}
	})
	return gnet.None
}
