package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/internal/throttle"
	"github.com/cloakroom/cloakroom/internal/workpool"
	"github.com/cloakroom/cloakroom/node/store"
)

// Node is one Cloakroom server. Create it with New; stop it with Shutdown
// (graceful) or Close.
type Node struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	metrics *metrics
	// oversized counts native frames refused as over the limit, logged
	// once every ten seconds (warnOversized).
	oversized    atomic.Int64
	oversizedLog throttle.Every
	auth         *nativeAuth // the native hello's password

	ctx    context.Context // cancelled by Close; background work stops on it
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the node starts
	// work runs native-protocol requests that wait on other nodes (see
	// package workpool), each connection's at once.
	work *workpool.Pool

	native       net.Listener
	http         *httpServer
	respBound    string        // bound Redis-protocol address, "" if disabled
	respTLSBound string        // bound Redis-protocol TLS address, "" if disabled
	resp         *respListener // Redis protocol listener; nil when disabled

	cview     atomic.Pointer[view] // the current cluster view
	members   *membership          // nil when gossip is disabled
	peers     *peers
	transfers *transfers
	startID   uint64
	joined    atomic.Bool // the node has joined its cluster (or needs none)
	settled   atomic.Bool // every member gossips a table of the same member set
	quiet     quietPeers  // members that left a forwarded read unanswered lately
	leaving   atomic.Bool // a graceful shutdown has begun

	mu       sync.Mutex        // guards conns, reserved and closed
	conns    map[net.Conn]bool // native connections; true: taken past --max-conns for a member (track)
	reserved int               // how many of conns are
	closed   bool

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
		conns: make(map[net.Conn]bool),

		oversizedLog: throttle.Every{Period: 10 * time.Second},
		auth:         newNativeAuth(&cfg),
		work:         workpool.New(workpool.DefaultIdle),
	}
	limit := cfg.MaxMemory
	if limit == 0 {
		var from string
		if limit, from = safetyLimit(); limit > 0 {
			n.log.Info("no --max-memory: capping the store so the node is never killed for its data", "limit", limit, "from", from)
		}
	}
	n.store = store.New(store.Config{Partitions: cfg.Partitions, MaxMemory: limit, Now: cfg.Now})
	n.metrics = newMetrics(n)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.peers = newPeers(cfg.Name, cfg.NativePassword, cfg.Limits, cfg.PeerTimeout)
	n.transfers = newTransfers(n)
	n.startID = randomID()

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
	if cfg.RESPAddr != "" || cfg.RESPTLSAddr != "" {
		if n.resp, err = n.startRESP(); err != nil {
			n.Close()
			return nil, err
		}
		n.respBound, n.respTLSBound = n.RESPAddr(), n.RESPTLSAddr()
	}
	v := n.soloView(1)
	v.provisional = len(cfg.Join) > 0
	n.cview.Store(v)
	n.joined.Store(len(cfg.Join) == 0)
	n.settled.Store(true)
	if cfg.GossipAddr != "" {
		if n.members, err = n.startMembership(); err != nil {
			n.Close()
			return nil, err
		}
		if err := n.members.publish(n.localMeta(1, v.hash, false)); err != nil {
			n.Close()
			return nil, err
		}
		n.goRun(n.runCluster)
		n.goRun(n.runHeartbeats)
		n.goRun(func() { n.transfers.run(n.ctx) })
		n.goRun(n.runAntiEntropy)
	}
	n.goRun(func() { n.store.RunExpiry(n.ctx, cfg.ExpiryInterval) })
	n.goRun(func() { n.acceptLoop(n.native, n.serveNative) })
	n.serveRESP()
	n.log.Info("node started", "addr", n.native.Addr().String(), "http", n.HTTPAddr(), "resp", n.RESPAddr(), "resp_tls", n.RESPTLSAddr(), "gossip", n.GossipAddr(),
		"partitions", cfg.Partitions, "max_memory", n.store.MaxMemory(), "limits", cfg.Limits.String())
	if passwordWithoutGossipKey(&cfg) {
		n.log.Warn("--native-password without --gossip-key: whoever reaches the gossip port can join as a member, be given partitions and learn the password; set --gossip-key too", "gossip", cfg.GossipAddr)
	}
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
func (n *Node) acceptLoop(ln net.Listener, serve func(c net.Conn, member bool)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				n.log.Error("accept", "addr", ln.Addr().String(), "err", err)
			}
			return
		}
		accepted, member, open := n.track(c)
		if !open {
			c.Close()
			return
		}
		if !accepted {
			continue
		}
		n.goRun(func() {
			defer n.untrack(c)
			serve(c, member)
		})
	}
}

// peerReserve is how many native connections past --max-conns a node takes
// from its members: enough for each to open its connections to it
// (client.Config.ConnsPerNode, 2) twice over.
func peerReserve(members int) int { return max(16, 4*members) }

// track registers a new connection. It reports whether the connection was
// accepted and whether the node is still open. A node at --max-conns
// closes a new connection at once, unless it comes from the address a
// member gossips from and the peer reserve has room: then member is true,
// and the connection must name that member in its hello (serveNative). A
// client that leaks connections until the limit must not cut the cluster
// off from this node.
func (n *Node) track(c net.Conn) (accepted, member, open bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false, false, false
	}
	if len(n.conns)-n.reserved >= n.cfg.MaxConns {
		if n.members == nil || n.reserved >= peerReserve(len(n.view().members)) || !n.members.at("", hostOf(c.RemoteAddr())) {
			n.metrics.refusedConns.Inc()
			c.Close()
			return false, false, true
		}
		member = true
		n.reserved++
		n.metrics.reserved.Inc()
	}
	n.conns[c] = member
	n.metrics.conns.Inc()
	return true, member, true
}

func (n *Node) untrack(c net.Conn) {
	c.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	if member, ok := n.conns[c]; ok {
		delete(n.conns, c)
		if member {
			n.reserved--
			n.metrics.reserved.Dec()
		}
		n.metrics.conns.Dec()
	}
}

// hostOf returns the IP of a TCP address, or its string.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// Partitions returns the cluster's partition count.
func (n *Node) Partitions() int { return n.cfg.Partitions }

// Shutdown leaves the cluster gracefully, then closes the node. Its
// partitions' backups take over (they hold every acknowledged write); ctx
// bounds the wait.
func (n *Node) Shutdown(ctx context.Context) error {
	n.log.Info("node shutting down")
	n.handOff(ctx)
	n.draining.Store(true)
	return n.Close()
}

// serving reports whether the node takes client requests.
func (n *Node) serving() bool { return n.joined.Load() && !n.draining.Load() }

func (n *Node) state() string {
	switch {
	case n.draining.Load():
		return "shutting down"
	case !n.joined.Load():
		return "joining its cluster"
	}
	return "serving"
}

// GossipAddr returns the bound gossip address, or "" if gossip is disabled.
func (n *Node) GossipAddr() string {
	if n.members == nil {
		return ""
	}
	return n.members.addr
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
	if n.members != nil {
		_ = n.members.ml.Shutdown()
	}
	if n.peers != nil {
		n.peers.close()
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
	// Every connection has ended, and with it every task it started.
	n.work.Close()
	n.work.Wait()
	if n.store != nil {
		n.store.Flush() // give the arena back
	}
	return errors.Join(errs...)
}
