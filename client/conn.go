package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// call is one request in flight on a conn.
type call struct {
	resp protocol.Response
	err  error // set instead of resp when the connection broke
	done chan struct{}
}

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// conn is one multiplexed connection to a node. Many goroutines send on it
// at once: each request is encoded into a shared buffer that a flusher
// goroutine writes out in one syscall, and a reader goroutine hands each
// response to the call waiting for its ID.
type conn struct {
	nc   net.Conn
	addr string

	wmu  sync.Mutex // guards out and fw
	out  *bytes.Buffer
	fw   *protocol.FrameWriter
	kick chan struct{} // wakes the flusher; capacity 1

	mu      sync.Mutex // guards pending and err
	pending map[uint64]*call
	nextID  uint64
	err     error // set once the conn is broken

	dead  atomic.Bool   // mirrors err != nil, read without the lock
	reads atomic.Uint64 // responses read so far

	closed chan struct{} // closed when the reader exits
}

// dial connects to addr and performs the hello handshake, naming cfg.Peer
// and giving cfg.Password in it.
func dial(ctx context.Context, addr string, cfg *Config) (*conn, error) {
	timeout, maxFrame := cfg.DialTimeout, cfg.Limits.MaxFrame()
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err) // net's error says what it dialled
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &conn{
		nc:      nc,
		addr:    addr,
		out:     new(bytes.Buffer),
		kick:    make(chan struct{}, 1),
		pending: make(map[uint64]*call),
		closed:  make(chan struct{}),
	}
	c.fw = protocol.NewFrameWriter(c.out)
	c.fw.Max = maxFrame // as the node reads: larger fails its call alone
	go c.readLoop(bufio.NewReaderSize(nc, 64<<10), maxFrame)
	go c.flushLoop()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hello := &protocol.Request{Op: protocol.OpHello, Version: protocol.Version, Key: cfg.Peer}
	if cfg.Password != "" {
		hello.Value = []byte(cfg.Password)
	}
	cl, err := c.do(hctx, hello)
	if err == nil {
		err = cl.resp.Err() // refused: another protocol version, the password, or a node at its connection limit
		releaseCall(cl)
	}
	if err != nil {
		c.close(err)
		return nil, fmt.Errorf("hello %s: %w", addr, err)
	}
	return c, nil
}

// do sends req and waits for its response or ctx. The caller must release
// the returned call's response with releaseCall once done with it.
func (c *conn) do(ctx context.Context, req *protocol.Request) (*call, error) {
	sc, err := c.start(req)
	if err != nil {
		return nil, err
	}
	return c.wait(ctx, sc)
}

// sentCall is a request on its way: what wait needs to wait for it.
type sentCall struct {
	cl    *call
	id    uint64
	sent  time.Time
	reads uint64 // responses read when it was sent
}

// start sends req (it assigns req.ID); wait waits for its response.
// Requests started one after another go out in one write.
func (c *conn) start(req *protocol.Request) (sentCall, error) {
	cl := callPool.Get().(*call)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		callPool.Put(cl)
		return sentCall{}, err
	}
	c.nextID++
	req.ID = c.nextID
	c.pending[req.ID] = cl
	c.mu.Unlock()
	sc := sentCall{cl: cl, id: req.ID, sent: time.Now(), reads: c.reads.Load()}

	c.wmu.Lock()
	wasEmpty := c.out.Len() == 0
	err := c.fw.Write(req)
	c.wmu.Unlock()
	if err != nil {
		c.forget(req.ID)
		return sentCall{}, fmt.Errorf("encode request: %w", err)
	}
	if wasEmpty {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return sc, nil
}

// wait waits for a started request's response or ctx. The caller must
// release the returned call's response with releaseCall once done with it.
func (c *conn) wait(ctx context.Context, sc sentCall) (*call, error) {
	cl := sc.cl
	select {
	case <-cl.done: // delivered already: ctx does not matter
		return cl.result()
	default:
	}
	select {
	case <-cl.done:
		return cl.result()
	case <-ctx.Done():
		// The reader may still deliver into cl; it is not reused.
		c.forget(sc.id)
		if time.Since(sc.sent) >= abandonAfter && c.reads.Load() == sc.reads {
			c.abort(fmt.Errorf("%w: %s silent for %v", ErrUnavailable, c.addr, time.Since(sc.sent).Round(time.Millisecond)))
		}
		return nil, ctx.Err()
	}
}

// abandonAfter is how long a request may go unanswered, on a connection
// that answered nothing else meanwhile, before giving it up also drops the
// connection (abort).
const abandonAfter = 500 * time.Millisecond

// abort drops a connection that has gone silent, discarding whatever it
// has not yet delivered: a request given up on must never reach the node
// later. Across a network partition TCP keeps retransmitting it, and once
// the network heals the node would execute it long after the caller retried
// elsewhere and went on (a stale SET landing after a newer one, or after a
// DELETE). Closing with SO_LINGER 0 resets the connection and throws away
// its send queue instead of delivering it.
func (c *conn) abort(err error) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.close(err)
}

// result returns a delivered call, or its error (releasing it).
func (cl *call) result() (*call, error) {
	if cl.err != nil {
		err := cl.err
		releaseCall(cl)
		return nil, err
	}
	return cl, nil
}

func releaseCall(cl *call) {
	cl.resp, cl.err = protocol.Response{}, nil
	callPool.Put(cl)
}

func (c *conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// flushLoop writes out whatever requests were buffered since its last write.
// Requests that callers buffer while it writes go out together next time.
func (c *conn) flushLoop() {
	var batch []byte
	for {
		select {
		case <-c.closed:
			return
		case <-c.kick:
		}
		// Let callers that are about to send join this write: one syscall
		// for many requests (about 1.6x the throughput of 50 workers on
		// one node, BenchmarkClient_GetSet).
		runtime.Gosched()
		c.wmu.Lock()
		batch = append(batch[:0], c.out.Bytes()...)
		c.out.Reset()
		c.wmu.Unlock()
		if len(batch) == 0 {
			continue
		}
		_, err := c.nc.Write(batch)
		if err != nil {
			c.close(fmt.Errorf("%w: write to %s: %v", ErrUnavailable, c.addr, err))
			return
		}
	}
}

// readLoop delivers responses to their calls until the connection fails.
func (c *conn) readLoop(br *bufio.Reader, maxFrame int) {
	defer close(c.closed)
	fr := protocol.NewFrameReader(br, maxFrame)
	dec := protocol.NewDecoder()
	for {
		frame, err := fr.Next()
		if err != nil {
			c.close(fmt.Errorf("%w: read from %s: %v", ErrUnavailable, c.addr, err))
			return
		}
		c.reads.Add(1)
		var resp protocol.Response
		if err := dec.DecodeResponse(frame, &resp); err != nil {
			c.close(fmt.Errorf("%w: bad response from %s: %v", ErrUnavailable, c.addr, err))
			return
		}
		c.mu.Lock()
		cl := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if cl == nil {
			if resp.ID == 0 && resp.Code != protocol.CodeOK {
				// The node refused the stream itself (e.g. frame too large).
				c.close(fmt.Errorf("node %s closed the connection: %w", c.addr, resp.Err()))
				return
			}
			continue // its caller gave up
		}
		cl.resp = resp
		cl.done <- struct{}{}
	}
}

// close breaks the connection, failing every call in flight with err.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.dead.Store(true)
	pending := c.pending
	c.pending = make(map[uint64]*call)
	c.mu.Unlock()
	c.nc.Close()
	for _, cl := range pending {
		cl.err = err
		cl.done <- struct{}{}
	}
}

// broken reports whether the connection has failed.
func (c *conn) broken() bool { return c.dead.Load() }

var errClientClosed = errors.New("cloakroom: client closed")
