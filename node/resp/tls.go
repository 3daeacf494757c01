package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TLS. Serve takes a listener whose connections are *tls.Conn
// (tls.NewListener) as it takes a plain one. The event loops read and
// write sockets themselves and know nothing of TLS, so each TLS connection
// is served through a socket pair: the loop owns one end as it owns a
// plain client's socket, and two goroutines copy between the other end
// and the TLS connection, one each way (copyIn, copyOut). Every limit,
// timeout and check the loop applies to a plain client applies unchanged;
// CLIENT LIST shows the TLS client's own address.
//
// The cost is three descriptors a connection instead of one (the TLS
// socket and both ends of the pair; Config.TLS lowers the automatic client
// limit for it), two goroutines, copyIn's 4 KiB buffer and a pooled 16 KiB
// one while replies are copied, and a copy each way on top of TLS's own
// work.

// TLSHandshakeTimeout is how long a TLS client has, from its accept, to
// complete its handshake before it is closed.
const TLSHandshakeTimeout = 10 * time.Second

// tlsDrain bounds, once the loop has closed its end of a TLS connection's
// pair (after QUIT, a protocol error, or for replies left unread), each of
// copyOut's writes of the replies still under way, and how long copyIn
// then reads and drops what the client still sends. As lingerTime for a
// plain connection, a client that keeps reading gets every reply.
const tlsDrain = lingerTime

// tlsInBuffer is copyIn's buffer. Small, since a connection holds it for
// its life: a session store's commands are mostly far smaller, and a larger
// one is copied in pieces.
const tlsInBuffer = 4 << 10

// tlsOutBuffer is copyOut's buffer, a TLS record's most plaintext, so that
// a pipeline's replies go out in few records. A connection holds one only
// while it has replies to copy (outBuffers).
const tlsOutBuffer = 16 << 10

// outBuffers are copyOut's buffers, shared: an idle TLS connection holds
// none.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, tlsOutBuffer); return &b }}

// serveTLS completes tc's handshake on a goroutine, off the accept loop,
// and then hands the connection to an event loop through a socket pair.
// The accept loop has counted tc (admit) and given back its enrolling
// token: a slow handshake holds neither the accept loop nor a token.
func (s *Server) serveTLS(tc *tls.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tc.Close()
		s.admitted.Add(-1)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if !s.handshake(tc) {
			tc.Close()
			s.admitted.Add(-1)
			return
		}
		loopEnd, copyEnd, err := unixPair()
		if err != nil {
			s.log.Warn("resp: tls: socket pair", "peer", tc.RemoteAddr().String(), "err", err)
			tc.Close()
			s.admitted.Add(-1)
			return
		}
		select {
		case s.enrolling <- struct{}{}:
		case <-s.ctx.Done():
			loopEnd.Close()
			copyEnd.Close()
			tc.Close()
			s.admitted.Add(-1)
			return
		}
		c := s.newConn(loopEnd)
		c.addr, c.laddr = tc.RemoteAddr().String(), tc.LocalAddr().String()
		p := &tlsPipe{Conn: tc, inDone: make(chan struct{})}
		p.copying.Store(2)
		c.tls = p
		s.tlsClients.Add(1)
		s.tlsCopies.Add(2)
		go s.copyIn(copyEnd, p)
		go s.copyOut(p, copyEnd)
		s.enrollConn(c, loopEnd)
	}()
}

// handshake runs tc's TLS handshake within TLSHandshakeTimeout, or until
// the server closes. A failure (a plain-text client, a bad certificate, a
// client that stalls) is counted, and logged once every ten seconds; a
// client that closes before it sends anything (a TCP health check, a port
// scan) is not.
func (s *Server) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.handshakeTimeout)
	defer cancel()
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return true
	}
	if errors.Is(err, io.EOF) || s.ctx.Err() != nil {
		return false // closed between records without a word, or by Close
	}
	n := s.tlsFailed.Add(1)
	if s.ctx.Err() == nil && s.tlsLog.Allow(time.Now()) {
		s.log.Warn("resp: tls handshake failed (logged once every 10s)",
			"peer", tc.RemoteAddr().String(), "err", err, "failed_total", n)
	}
	return false
}

// tlsPipe is a TLS client's connection with what its copying goroutines
// and its loop share.
type tlsPipe struct {
	*tls.Conn
	closing atomic.Bool   // the loop closed its end (conn.closeTLS)
	copying atomic.Int32  // copying goroutines not yet done (copyDone)
	inDone  chan struct{} // closed when copyIn returns
}

// copyDone counts one of p's copying goroutines out.
func (s *Server) copyDone(p *tlsPipe) {
	if p.copying.Add(-1) == 0 {
		s.tlsClients.Add(-1)
	}
	s.tlsCopies.Done()
}

// copyIn copies what the TLS client sends to the loop's end of its pair.
// When the client closes the loop reads the end of input, as from a plain
// client that closed. Once the loop has closed its end, what the client
// still sends is read and dropped for up to tlsDrain, as a plain
// connection lingers after a protocol error (lingerClose): closing a
// socket with input unread resets it, and the reset can overtake the
// replies still on their way, the error among them.
func (s *Server) copyIn(loopSide *net.UnixConn, p *tlsPipe) {
	defer s.copyDone(p)
	defer close(p.inDone)
	buf := make([]byte, tlsInBuffer)
	_, err := io.CopyBuffer(onlyWriter{loopSide}, onlyReader{p.Conn}, buf)
	_ = loopSide.CloseWrite()
	if err == nil {
		return // the client closed
	}
	_ = p.SetReadDeadline(time.Now().Add(s.cfg.tlsDrain))
	_, _ = io.CopyBuffer(io.Discard, onlyReader{p.Conn}, buf)
}

// copyOut copies the loop's replies to the TLS client. Once the loop has
// closed its end, and every reply before that is sent, it ends the TLS
// stream (close_notify) and closes the connection once copyIn is done. A
// client that stops reading blocks it; the loop then gives up on the
// client as on a plain one (its unread-replies limit), and from the
// loop's close each write must finish within tlsDrain
// (conn.closeTLS).
func (s *Server) copyOut(p *tlsPipe, loopSide *net.UnixConn) {
	defer s.copyDone(p)
	defer loopSide.Close()
	clean := s.copyReplies(p, loopSide)
	if clean && s.ctx.Err() == nil {
		_ = p.SetReadDeadline(time.Now().Add(s.cfg.tlsDrain))
		_ = p.CloseWrite() // close_notify
		<-p.inDone
	}
	// Not tls.Conn.Close: after a failed write the stream may end
	// mid-record, and its close_notify would wait up to 5 s more.
	_ = p.NetConn().Close()
	<-p.inDone
}

// copyReplies copies until the loop closes its end (true) or a write or
// read fails (false).
func (s *Server) copyReplies(p *tlsPipe, loopSide *net.UnixConn) bool {
	rc, err := loopSide.SyscallConn()
	if err != nil {
		return false
	}
	for {
		bp, n, err := readPooled(rc)
		if n > 0 {
			_, werr := p.Write((*bp)[:n])
			outBuffers.Put(bp)
			if werr != nil {
				return false
			}
			if p.closing.Load() { // the client is reading: the next write gets tlsDrain too
				_ = p.SetWriteDeadline(time.Now().Add(s.cfg.tlsDrain))
			}
		}
		if err != nil {
			return false
		}
		if n == 0 {
			return true // the loop closed its end
		}
	}
}

// readPooled waits until the loop's end of a pair has input, or is closed,
// and only then takes a buffer from outBuffers and reads into it. With
// n > 0 the caller puts the buffer back.
func readPooled(rc syscall.RawConn) (bp *[]byte, n int, err error) {
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		bp = outBuffers.Get().(*[]byte)
		n, rerr = readFD(fd, *bp)
		if errors.Is(rerr, syscall.EAGAIN) {
			outBuffers.Put(bp)
			return false // wait for input
		}
		if n <= 0 {
			outBuffers.Put(bp)
			n = 0
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return bp, n, err
}

// closeTLS bounds each write left of a TLS connection's replies once its
// loop has closed it (OnClose): a client that reads nothing cannot hold
// copyOut.
func (c *conn) closeTLS() {
	if p := c.tls; p != nil {
		p.closing.Store(true)
		_ = p.SetWriteDeadline(time.Now().Add(c.s.cfg.tlsDrain))
	}
}

// onlyReader and onlyWriter hide any ReadFrom and WriteTo, so that
// io.CopyBuffer uses the buffer it is given rather than one of its own.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// unixPair returns the two ends of a connected Unix stream socket pair.
func unixPair() (*net.UnixConn, *net.UnixConn, error) {
	fds, err := socketpair()
	if err != nil {
		return nil, nil, err
	}
	var ends [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "resp-tls-pair")
		nc, err := net.FileConn(f) // a duplicate of fd
		f.Close()
		if err == nil {
			uc, ok := nc.(*net.UnixConn)
			if !ok {
				nc.Close()
				err = errors.New("socket pair: not a Unix connection")
			}
			ends[i] = uc
		}
		if err != nil {
			for _, e := range ends[:i] {
				e.Close()
			}
			if i == 0 {
				closeFD(fds[1])
			}
			return nil, nil, err
		}
	}
	return ends[0], ends[1], nil
}

// TLSHandshakeFailures returns how many TLS clients were closed because
// their handshake failed or did not finish in time.
func (s *Server) TLSHandshakeFailures() int64 { return s.tlsFailed.Load() }

// TLSClients returns how many TLS connections are open: handshaken, and
// with a copying goroutine still running.
func (s *Server) TLSClients() int64 { return s.tlsClients.Load() }
