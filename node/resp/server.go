package resp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Backend is what the RESP server needs from a node. *node.Node implements
// it; every key operation goes through Do or DoAtomic, which route it to the
// key's owner, so the RESP layer never touches a store.
type Backend interface {
	// Do runs one request and fills resp.
	Do(ctx context.Context, req *protocol.Request, resp *protocol.Response)
	// DoAtomic runs single-key requests sharing one partition as one step;
	// a failed guard (OpGet with FlagIfVersion) aborts it with ErrConflict.
	DoAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) error
	// Partitions returns the cluster's partition count.
	Partitions() int
	// Name returns this node's name.
	Name() string
	// Topology returns the current slot ownership. It must be cheap: the
	// server calls it for every keyed command in cluster mode, and caches
	// what it derives from it for as long as the same pointer comes back.
	Topology() *Topology
}

// Topology is an immutable snapshot of which node serves which slots.
type Topology struct {
	// Shards lists every slot range with its primary and replicas.
	Shards []Shard
	// Epoch increases with every ownership change.
	Epoch uint64
}

// Shard is a set of slot ranges served by one primary and its replicas.
type Shard struct {
	// Slots are inclusive [first, last] slot ranges.
	Slots [][2]uint16
	// Primary serves the slots.
	Primary Peer
	// Replicas hold copies.
	Replicas []Peer
}

// Peer is a node as Redis clients see it.
type Peer struct {
	// Name is the node's name, unique in the cluster.
	Name string
	// Addr is the node's RESP address, host:port, as clients dial it.
	Addr string
}

// Config configures a Server. The zero value serves RESP without a password
// and without cluster mode.
type Config struct {
	// Password, when set, is required by AUTH or HELLO ... AUTH before any
	// other command.
	Password string
	// ClusterMode makes the server act as a Redis Cluster node: CLUSTER
	// commands answer and keys owned elsewhere get MOVED redirects.
	ClusterMode bool
	// Limits bound one command; zero fields mean DefaultLimits' values.
	Limits Limits
	// Version is the redis_version the server reports. Empty means 7.2.0.
	Version string
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the wall clock for EXPIREAT, PXAT and TIME. Nil means time.Now.
	Now func() time.Time
}

// DefaultLimits returns the limits for values up to maxValue bytes.
func DefaultLimits(maxValue int) Limits {
	return Limits{MaxArgs: 1 << 20, MaxBulk: maxValue, MaxCommand: max(64<<20, 2*maxValue), MaxInline: 64 << 10}
}

// Server serves the Redis protocol for one Backend. Create it with
// NewServer, run Serve on a listener, and stop it with Close.
type Server struct {
	b     Backend
	cfg   Config
	log   *slog.Logger
	start time.Time
	cmds  map[string]*command
	topo  atomic.Pointer[slotTable]

	nextID    atomic.Int64
	totalConn atomic.Int64
	doneCmds  atomic.Int64 // commands of closed connections; open ones count their own

	ctx    context.Context // cancelled by Close; passed to every Backend call
	cancel context.CancelFunc
	wg     sync.WaitGroup // every connection goroutine

	mu     sync.Mutex // guards the fields below
	lns    map[net.Listener]struct{}
	conns  map[*conn]struct{}
	closed bool
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
	s := &Server{
		b: b, cfg: cfg, log: cfg.Logger, start: cfg.Now(),
		lns: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
	}
	s.cmds = commandTable()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("resp: server closed")

// Serve accepts connections on ln and serves each on its own goroutine
// until Close. It always returns a non-nil error; after Close,
// ErrServerClosed. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
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
		c := s.newConn(nc)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			c.serve(s.ctx)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.totalConn.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.doneCmds.Add(c.cmds.Load())
	s.mu.Unlock()
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

// Close stops every listener and connection and waits for their goroutines.
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
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return errors.Join(errs...)
}

const bufSize = 16 << 10

// serve runs one connection: read a command, run it, buffer its reply, and
// flush only when no more input waits, so pipelined commands share a write.
func (c *conn) serve(ctx context.Context) {
	for {
		args, err := c.rd.ReadCommand()
		if err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				c.w.Error("ERR " + pe.Error())
				c.w.Flush()
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("resp: read", "peer", c.addr, "err", err)
			}
			return
		}
		if len(args) > 0 {
			c.cmds.Add(1)
			c.dispatch(ctx, args)
		}
		if c.quit {
			c.w.Flush()
			return
		}
		if c.rd.Buffered() == 0 {
			if err := c.w.Flush(); err != nil {
				return
			}
		}
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), addr: nc.RemoteAddr().String()}
	lim := s.cfg.Limits
	if s.cfg.Password == "" {
		c.authed = true
	} else {
		lim = unauthLimits
	}
	c.rd = NewReader(bufio.NewReaderSize(nc, bufSize), lim)
	c.w = NewWriter(bufio.NewWriterSize(nc, bufSize))
	c.created = s.cfg.Now()
	return c
}
