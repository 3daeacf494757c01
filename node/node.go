package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
)

// Node is one Cloakroom server. Create it with New; stop it with Shutdown
// (graceful) or Close.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	metrics *metrics

	ctx    context.Context // cancelled by Close; background work stops on it
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts

	native net.Listener
	http   *httpServer
	resp   *respListener // Redis protocol listener; nil when disabled

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool

	draining atomic.Bool // refuses new work while shutting down
}

// New validates cfg, binds every listener and starts serving. On error
// nothing is left running.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:   cfg,
		log:   cfg.Logger.With("node", cfg.Name),
		conns: make(map[net.Conn]struct{}),
	}
	n.store = store.New(store.Config{Partitions: cfg.Partitions, MaxMemory: cfg.MaxMemory, Now: cfg.Now})
	n.metrics = newMetrics(n)
	n.ctx, n.cancel = context.WithCancel(context.Background())

	var err error
	if n.native, err = net.Listen("tcp", cfg.Addr); err != nil {
		n.Close()
		return nil, fmt.Errorf("listen native %s: %w", cfg.Addr, err)
	}
	if cfg.HTTPAddr != "" {
		if n.http, err = n.startHTTP(cfg.HTTPAddr); err != nil {
			n.Close()
			return nil, err
		}
	}
	if cfg.RESPAddr != "" {
		if n.resp, err = n.startRESP(cfg.RESPAddr); err != nil {
			n.Close()
			return nil, err
		}
	}
	n.goRun(func() { n.store.RunExpiry(n.ctx, cfg.ExpiryInterval) })
	n.goRun(func() { n.acceptLoop(n.native, n.serveNative) })
	n.log.Info("node started", "addr", n.native.Addr().String(), "http", n.HTTPAddr(), "resp", n.RESPAddr(),
		"partitions", cfg.Partitions, "max_memory", cfg.MaxMemory, "limits", cfg.Limits.String())
	return n, nil
}

// Addr returns the native listener's address.
func (n *Node) Addr() string { return n.native.Addr().String() }

// HTTPAddr returns the HTTP listener's address, or "" if it is disabled.
func (n *Node) HTTPAddr() string {
	if n.http == nil {
		return ""
	}
	return n.http.addr()
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Store returns the node's local store.
func (n *Node) Store() *store.Store { return n.store }

// goRun starts fn on a goroutine that Close waits for.
func (n *Node) goRun(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// acceptLoop accepts connections on ln and serves each on its own goroutine
// until ln is closed.
func (n *Node) acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				n.log.Error("accept", "addr", ln.Addr().String(), "err", err)
			}
			return
		}
		if !n.track(c) {
			c.Close()
			return
		}
		n.goRun(func() {
			defer n.untrack(c)
			serve(c)
		})
	}
}

func (n *Node) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.conns[c] = struct{}{}
	n.metrics.conns.Inc()
	return true
}

func (n *Node) untrack(c net.Conn) {
	c.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.conns[c]; ok {
		delete(n.conns, c)
		n.metrics.conns.Dec()
	}
}

// Do runs one request on this node and fills resp. It is the single entry
// point behind every listener.
func (n *Node) Do(ctx context.Context, req *protocol.Request, resp *protocol.Response) {
	switch {
	case n.draining.Load() && req.Op != protocol.OpPing:
		resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "node %s is shutting down", n.cfg.Name))
	case req.Op == protocol.OpFlush && !n.cfg.AllowFlush:
		resp.SetErr(protocol.Errorf(protocol.CodeDisabled, "flush is disabled; start the node with --allow-flush"))
	default:
		if err := n.cfg.Limits.Check(req); err != nil {
			resp.SetErr(err)
		} else {
			n.store.Exec(req, resp)
		}
	}
	n.metrics.observe(req.Op, resp.Code)
}

// DoAtomic runs single-key requests whose keys share one partition as one
// atomic step (MULTI/EXEC). A failed guard (OpGet with FlagIfVersion) aborts
// it with ErrConflict before anything runs; keys in different partitions
// are refused with ErrBadRequest.
func (n *Node) DoAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) error {
	if n.draining.Load() {
		return protocol.Errorf(protocol.CodeUnavailable, "node %s is shutting down", n.cfg.Name)
	}
	for _, r := range reqs {
		if err := n.cfg.Limits.Check(r); err != nil {
			return err
		}
	}
	return n.store.ExecAtomic(reqs, resps)
}

// Partitions returns the cluster's partition count.
func (n *Node) Partitions() int { return n.cfg.Partitions }

// Shutdown stops taking new work, then closes the node. ctx bounds the wait.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	n.log.Info("node shutting down")
	return n.Close()
}

// Close stops every listener and connection and waits for every goroutine.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	if n.cancel != nil {
		n.cancel()
	}
	var errs []error
	if n.native != nil {
		if err := n.native.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if n.http != nil {
		errs = append(errs, n.http.close())
	}
	if n.resp != nil {
		errs = append(errs, n.resp.close())
	}
	n.wg.Wait()
	if n.store != nil {
		n.store.Flush() // give the arena back
	}
	return errors.Join(errs...)
}
