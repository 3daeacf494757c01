package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/pool/goroutine"

	"github.com/cloakroom/cloakroom/internal/throttle"
	"github.com/cloakroom/cloakroom/internal/workpool"
	"github.com/cloakroom/cloakroom/protocol"
)

func init() {
	// gnet starts a worker pool (two goroutines that never end) when it is
	// loaded. On Unix only its EventLoop.Enroll uses the pool; the server
	// enrolls through Client.EnrollContext, so the pool is released.
	goroutine.DefaultWorkerPool.Release()
}

// Server serves the Redis protocol for one Backend. Create it with
// NewServer, run Serve on a listener, and stop it with Close.
//
// Connections are served by a few event loops, as in Redis: each loop
// waits for input on many connections at once, parses every complete
// command a connection has sent, runs it, and sends all the replies in one
// write. A command whose backend call could wait (on the network, in a
// cluster) runs on a goroutine instead; its connection's further input
// waits, buffered, until it is done, so replies keep their order.
type Server struct {
	b     Backend
	cfg   Config
	log   *slog.Logger
	start time.Time
	cmds  map[string]*command
	get   *command                     // cmds["get"]
	set   *command                     // cmds["set"]
	topo  [2]atomic.Pointer[slotTable] // plain clients' and TLS clients' (table)

	// work runs commands that may wait (forwarded, replicated) on worker
	// goroutines that outlive them: a forwarded command's call path is
	// deep, and a fresh goroutine for each grew its stack several times,
	// 15% of an entry node's CPU when it forwarded unpipelined GETs.
	work *workpool.Pool

	nextID     atomic.Int64
	totalConn  atomic.Int64
	admitted   atomic.Int64   // connections accepted and not closed, enrolling or open
	refused    atomic.Int64   // connections closed at once for MaxClients
	enrolling  chan struct{}  // a token for each connection accepted and not yet in a loop (maxEnrolling)
	refusalLog throttle.Every // refusals are logged once every ten seconds
	unreadLog  throttle.Every // so are clients closed for not reading their replies,
	floodLog   throttle.Every // for sending too much while a command ran,
	httpLog    throttle.Every // for sending an HTTP request,
	waitLog    throttle.Every // and for input over MaxWaitingInput
	waiting    atomic.Int64   // input the connections hold unrun (conn.held), for MaxWaitingInput
	fileLimit  int            // the open-file limit at start; 0 if unknown
	idleClosed atomic.Int64   // connections closed for the idle timeout
	retries    atomic.Int64   // attempts made again while the cluster changed (retry.go)
	doneCmds   atomic.Int64   // commands of closed connections; open ones count their own
	tlsFailed  atomic.Int64   // TLS handshakes that failed or timed out
	tlsLog     throttle.Every // those are logged once every ten seconds
	tlsCopies  sync.WaitGroup // the goroutines copying between TLS clients and their loops (tls.go)
	tlsClients atomic.Int64   // TLS connections with a copying goroutine running

	ctx    context.Context // cancelled by Close; passed to every Backend call
	cancel context.CancelFunc

	mu     sync.Mutex // guards the fields below
	loops  *gnet.Client
	wg     sync.WaitGroup // enrolments, TLS handshakes and goroutines running commands; Add under mu while !closed
	lns    map[net.Listener]struct{}
	conns  map[*conn]struct{}
	closed bool
	afters map[gnet.EventLoop]*afterPoll // each loop's, made by the first OnOpen on it
}

// NewServer returns a Server for b.
func NewServer(b Backend, cfg Config) *Server {
	if cfg.Version == "" {
		cfg.Version = "7.2.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.workerIdle <= 0 {
		cfg.workerIdle = workpool.DefaultIdle
	}
	if cfg.handshakeTimeout <= 0 {
		cfg.handshakeTimeout = TLSHandshakeTimeout
	}
	if cfg.tlsDrain <= 0 {
		cfg.tlsDrain = tlsDrain
	}
	if cfg.RetryWindow == 0 {
		cfg.RetryWindow = DefaultRetryWindow
	}
	if cfg.IdleSpin == 0 {
		cfg.IdleSpin = DefaultIdleSpin
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	fileLimit := openFileLimit()
	if most := maxClientsFor(fileLimit, cfg.TLS); cfg.MaxClients > most && fileLimit > 0 {
		cfg.Logger.Warn("resp: client limit lowered to half the open-file limit (a sixth with TLS: a TLS client takes three descriptors), so that the node keeps descriptors for its peers and other clients; raise ulimit -n for more",
			"resp_max_clients", cfg.MaxClients, "open_file_limit", fileLimit, "tls", cfg.TLS, "lowered_to", most)
		cfg.MaxClients = most
	}
	if cfg.EventLoops <= 0 {
		cfg.EventLoops = max(1, runtime.GOMAXPROCS(0)/2)
	}
	def := DefaultLimits(protocol.DefaultMaxValue)
	if cfg.Limits.MaxArgs == 0 {
		cfg.Limits.MaxArgs = def.MaxArgs
	}
	if cfg.Limits.MaxBulk == 0 {
		cfg.Limits.MaxBulk = def.MaxBulk
	}
	if cfg.Limits.MaxCommand == 0 {
		cfg.Limits.MaxCommand = def.MaxCommand
	}
	if cfg.Limits.MaxInline == 0 {
		cfg.Limits.MaxInline = def.MaxInline
	}
	if cfg.MaxWaitingInput == 0 {
		cfg.MaxWaitingInput = max(128<<20, 2*int64(cfg.Limits.MaxCommand))
	}
	s := &Server{
		b: b, cfg: cfg, log: cfg.Logger, start: cfg.Now(),
		lns: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
		afters:     map[gnet.EventLoop]*afterPoll{},
		enrolling:  make(chan struct{}, maxEnrolling),
		refusalLog: throttle.Every{Period: 10 * time.Second},
		unreadLog:  throttle.Every{Period: 10 * time.Second},
		floodLog:   throttle.Every{Period: 10 * time.Second},
		httpLog:    throttle.Every{Period: 10 * time.Second},
		waitLog:    throttle.Every{Period: 10 * time.Second},
		tlsLog:     throttle.Every{Period: 10 * time.Second},
		fileLimit:  fileLimit,
		work:       workpool.New(cfg.workerIdle),
	}
	s.cmds = commandTable()
	s.get, s.set = s.cmds["get"], s.cmds["set"]
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// maxClientsFor is the most clients the server lets in for an open-file
// limit of fileLimit: half the descriptors, the other half for the node's
// peers and native clients, and three for a TLS client (tls.go).
func maxClientsFor(fileLimit int, tls bool) int {
	if tls {
		return fileLimit / 6
	}
	return fileLimit / 2
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("resp: server closed")

// Serve accepts connections on ln and hands each to an event loop until
// Close. A listener of TLS connections (tls.NewListener) serves TLS
// clients (tls.go). It always returns a non-nil error; after Close,
// ErrServerClosed. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.loops == nil {
		loops, err := s.startLoops()
		if err != nil {
			s.mu.Unlock()
			ln.Close()
			return err
		}
		s.loops = loops
		s.startSweeper()
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()
	var backoff time.Duration
	for {
		// Accept no faster than the loops take connections in (enroll).
		select {
		case s.enrolling <- struct{}{}:
		case <-s.ctx.Done():
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.enrolling
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("resp: accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.admit() {
			<-s.enrolling
			s.refuse(nc)
			continue
		}
		if tc, ok := nc.(*tls.Conn); ok {
			<-s.enrolling // taken again once its handshake is done
			s.serveTLS(tc)
			continue
		}
		if !s.enroll(nc) {
			return ErrServerClosed
		}
	}
}

// maxEnrolling bounds the connections accepted and not yet taken in by an
// event loop (enroll). A loop takes new connections in between serving
// its connections' input, so this is also how many new connections one
// round of a busy loop takes in; the accept loop waits meanwhile, and
// further clients wait in the kernel's backlog, as they do for a
// redis-server busy serving. Unbounded, a client that opened connections
// in a loop, each writing a long pipeline and closing without reading,
// was accepted three times as fast as redis-server accepts it, and the
// node then served 13,800 such connections' input while every other
// client waited 10 s (docs/redis-compat.md). A pool of 50 clients opening
// at once is still taken in in one round.
const maxEnrolling = 64

func (s *Server) startLoops() (*gnet.Client, error) {
	// Each loop keeps its own thread. A loop that finds no input yields
	// before it blocks in epoll_wait, and a yielded goroutine resumes on
	// whichever thread the scheduler woke for it: unlocked, one loop's work
	// was spread over three threads in turn, and redis-benchmark -P 16
	// measured 0.76x redis-server instead of 1.0x (docs/benchmarks.md).
	loops, err := gnet.NewClient(&handler{s: s},
		gnet.WithNumEventLoop(s.cfg.EventLoops),
		gnet.WithLockOSThread(true),
		gnet.WithLogger(gnetLogger{s.log}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	if err != nil {
		return nil, fmt.Errorf("resp: event loops: %w", err)
	}
	if err := loops.Start(); err != nil {
		return nil, fmt.Errorf("resp: event loops: %w", err)
	}
	return loops, nil
}

// enroll hands nc to an event loop; it reports false once the server is
// closed. It takes over the token the accept loop took for nc (enrolling)
// and gives it back once the loop has taken nc in or refused it, or at
// once if it reports false. The hand-over runs on a goroutine of its own: it waits for the
// loop to register the connection, and connections accepted meanwhile
// (a pool of 50 opening at once) are then registered together in one of
// the loop's wake-ups rather than one wake-up each.
func (s *Server) enroll(nc net.Conn) bool {
	return s.enrollConn(s.newConn(nc), nc)
}

// enrollConn is enroll for the connection c made for nc.
func (s *Server) enrollConn(c *conn, nc net.Conn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		s.admitted.Add(-1)
		<-s.enrolling
		return false
	}
	s.wg.Add(1)
	loops := s.loops
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() { <-s.enrolling }()
		// The loop owns a duplicate of the socket from here; nc is closed.
		if _, err := loops.EnrollContext(nc, c); err != nil {
			s.log.Warn("resp: enroll", "peer", c.addr, "err", err)
		}
		// A connection the loop opened is let go by OnClose; one it did
		// not (its socket failed before the hand-over, or the poller
		// refused it) has no more to come. Close waits for enrolments
		// before it stops the loops, so a loop never stops under one.
		s.mu.Lock()
		opened := c.gc != nil
		s.mu.Unlock()
		if !opened {
			s.admitted.Add(-1)
		}
	}()
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.doneCmds.Add(c.cmds.Load())
}

// commandsProcessed counts the commands every connection has run.
func (s *Server) commandsProcessed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.doneCmds.Load()
	for c := range s.conns {
		n += c.cmds.Load()
	}
	return n
}

// Clients returns the number of open connections.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops every listener, event loop and connection and waits for
// their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	for ln := range s.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	loops := s.loops
	for _, a := range s.afters {
		a.spin.quit.Store(true)
	}
	s.mu.Unlock()
	s.cancel()
	// Commands running on goroutines end (their context is cancelled) and
	// wake their loops before the loops stop.
	s.work.Close()
	s.wg.Wait()
	s.work.Wait()
	if loops != nil {
		if err := loops.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	s.tlsCopies.Wait() // each ends once its loop's end is closed, within tlsDrain
	s.mu.Lock()
	for _, a := range s.afters {
		a.spin.stop()
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}
