package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// TLS. Serve takes a listener whose connections are *tls.Conn
// (tls.NewListener) as it takes a plain one. The event loops read and
// write sockets themselves and know nothing of TLS, so each TLS connection
// is served through a socket pair: the loop owns one end as it owns a
// plain client's socket, and two goroutines copy between the other end
// and the TLS connection, one each way. Every limit, timeout and check the
// loop applies to a plain client applies unchanged; CLIENT LIST shows the
// TLS client's own address.
//
// The cost is three descriptors a connection instead of one (the TLS
// socket and both ends of the pair), two goroutines with a 16 KiB buffer
// each, and a copy each way on top of TLS's own work.

// TLSHandshakeTimeout is how long a TLS client has, from its accept, to
// complete its handshake before it is closed.
const TLSHandshakeTimeout = 10 * time.Second

// tlsDrain is how long a TLS client has to read the replies the node sent
// before it closed the connection (QUIT's OK, a protocol error), once the
// loop has closed its end.
const tlsDrain = 2 * time.Second

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
		c.tls = tc
		s.tlsCopies.Add(2)
		go s.copyIn(copyEnd, tc)
		go s.copyOut(tc, copyEnd)
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
	if errors.Is(err, io.EOF) {
		return false
	}
	n := s.tlsFailed.Add(1)
	if s.ctx.Err() == nil && s.tlsLog.Allow(time.Now()) {
		s.log.Warn("resp: tls handshake failed (logged once every 10s)",
			"peer", tc.RemoteAddr().String(), "err", err, "failed_total", n)
	}
	return false
}

// copyIn copies what the TLS client sends to the loop's end of its pair.
// When the client closes (or its connection fails) the loop reads the end
// of input, as from a plain client that closed.
func (s *Server) copyIn(loopSide *net.UnixConn, tc *tls.Conn) {
	defer s.tlsCopies.Done()
	buf := make([]byte, tlsInBuffer)
	_, _ = io.CopyBuffer(onlyWriter{loopSide}, onlyReader{tc}, buf)
	_ = loopSide.CloseWrite()
}

// copyOut copies the loop's replies to the TLS client. Once the loop has
// closed its end, and every reply before that is sent, it closes the TLS
// connection, which also ends copyIn. A client that stops reading blocks
// it; the loop then stops sending to it as it stops for a plain client
// (its unread-replies limit), and closing its end gives the client
// tlsDrain to read what is under way (conn.closeTLS).
func (s *Server) copyOut(tc *tls.Conn, loopSide *net.UnixConn) {
	defer s.tlsCopies.Done()
	defer tc.Close()
	defer loopSide.Close()
	rc, err := loopSide.SyscallConn()
	if err != nil {
		return
	}
	for {
		bp, n, err := readPooled(rc)
		if n > 0 {
			_, werr := tc.Write((*bp)[:n])
			outBuffers.Put(bp)
			if werr != nil {
				return
			}
		}
		if err != nil || n == 0 { // n == 0: the loop closed its end
			return
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

// closeTLS bounds the time left to send a TLS connection's replies once
// its loop has closed it (OnClose).
func (c *conn) closeTLS() {
	if c.tls != nil {
		_ = c.tls.SetWriteDeadline(time.Now().Add(tlsDrain))
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
