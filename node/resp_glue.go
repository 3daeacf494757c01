package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloakroom/cloakroom/node/resp"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Node is the backend of its Redis protocol listener.
var _ resp.Backend = (*Node)(nil)

// respListener is the node's Redis protocol server, with its plain and
// TLS listeners (either may be nil).
type respListener struct {
	srv   *resp.Server
	ln    net.Listener
	tlsLn net.Listener
	// topo is the current slot ownership, as plain ([0]) and TLS ([1])
	// Redis clients see it: the same layout with the addresses each dials.
	topo [2]atomic.Pointer[resp.Topology]

	// topoView is the view topo was made from; only the cluster goroutine
	// (recompute, through publishTopology) touches it.
	topoView *view
}

// startRESP binds the Redis protocol's listeners and creates their
// server; serveRESP starts it.
func (n *Node) startRESP() (_ *respListener, err error) {
	r := &respListener{}
	defer func() {
		if err != nil {
			r.closeListeners() // the one bound before the other failed
		}
	}()
	if a := n.cfg.RESPAddr; a != "" {
		if r.ln, err = net.Listen("tcp", a); err != nil {
			return nil, fmt.Errorf("listen resp %s: %w", a, err)
		}
	}
	var certs *certFiles
	if a := n.cfg.RESPTLSAddr; a != "" {
		var cfg *tls.Config
		if cfg, certs, err = respTLSConfig(&n.cfg, n.log); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("listen resp-tls %s: %w", a, err)
		}
		r.tlsLn = tls.NewListener(ln, cfg)
	}
	// Until the node has its first table it describes itself alone if it
	// starts a cluster, and no slots at all (CLUSTER INFO: cluster_state
	// fail) if it joins one: a node restarting into its cluster must not
	// claim every slot to a client that reloads its layout from it.
	for i, ln := range r.listeners() {
		if len(n.cfg.Join) > 0 || ln == nil {
			r.topo[i].Store(&resp.Topology{})
		} else {
			r.topo[i].Store(soloTopology(n.cfg.Name, respAdvertise(n.cfg.Advertise, ln.Addr().String())))
		}
	}
	r.srv = resp.NewServer(n, resp.Config{
		Password:    n.cfg.Password,
		ClusterMode: n.cfg.RESPClusterMode,
		IdleSpin:    n.cfg.RESPIdleSpin,
		MaxClients:  n.cfg.RESPMaxClients,
		IdleTimeout: n.cfg.RESPIdleTimeout,
		RetryWindow: n.cfg.RESPRetryWindow,
		TLS:         r.tlsLn != nil,
		Limits:      resp.DefaultLimits(n.cfg.Limits.MaxValue),
		Logger:      n.log,
	})
	srv := r.srv
	n.metrics.reg.MustRegister(
		stat("cloakroom_resp_clients", "Open Redis protocol connections.", prometheus.GaugeValue, func() int64 { return int64(srv.Clients()) }),
		stat("cloakroom_resp_refused_connections_total", "Redis protocol connections closed at once because the node was at --resp-max-clients.", prometheus.CounterValue, srv.Refused),
		stat("cloakroom_resp_idle_closed_total", "Redis protocol connections closed for sending nothing for --resp-idle-timeout.", prometheus.CounterValue, srv.IdleClosed),
		stat("cloakroom_resp_retries_total", "Redis commands' attempts made again because the cluster was changing (--resp-retry-window).", prometheus.CounterValue, srv.Retries),
		stat("cloakroom_resp_tls_clients", "Open Redis protocol connections over TLS (among cloakroom_resp_clients).", prometheus.GaugeValue, srv.TLSClients),
		stat("cloakroom_resp_tls_handshake_failures_total", "Redis protocol TLS clients closed because their handshake failed or took over 10s.", prometheus.CounterValue, srv.TLSHandshakeFailures))
	if certs != nil {
		n.metrics.reg.MustRegister(stat("cloakroom_resp_tls_cert_expiry_timestamp_seconds",
			"When the certificate the Redis protocol's TLS listener serves expires, in Unix seconds (--resp-tls-cert; present only with --resp-tls-addr).",
			prometheus.GaugeValue, certs.notAfter))
	}
	return r, nil
}

// serveRESP starts serving the Redis protocol's listeners, if there are
// any. New calls it last, once every field the server's goroutines read is
// set.
func (n *Node) serveRESP() {
	if n.resp == nil {
		return
	}
	for _, ln := range n.resp.listeners() {
		if ln == nil {
			continue
		}
		n.goRun(func() {
			if err := n.resp.srv.Serve(ln); err != nil && !errors.Is(err, resp.ErrServerClosed) {
				n.log.Error("resp serve", "addr", ln.Addr().String(), "err", err)
			}
		})
	}
}

// listeners returns the plain and the TLS listener, either nil if
// disabled; r.topo is indexed the same way.
func (r *respListener) listeners() [2]net.Listener { return [2]net.Listener{r.ln, r.tlsLn} }

func (r *respListener) close() error {
	err := r.srv.Close()
	if cerr := r.closeListeners(); cerr != nil && err == nil {
		err = cerr // Serve never ran (New failed after binding)
	}
	return err
}

func (r *respListener) closeListeners() error {
	var errs []error
	for _, ln := range r.listeners() {
		if ln == nil {
			continue
		}
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RESPAddr returns the Redis protocol listener's address, or "" if it is
// disabled.
func (n *Node) RESPAddr() string {
	if n.resp == nil || n.resp.ln == nil {
		return ""
	}
	return n.resp.ln.Addr().String()
}

// RESPTLSAddr returns the Redis protocol's TLS listener's address, or ""
// if it is disabled.
func (n *Node) RESPTLSAddr() string {
	if n.resp == nil || n.resp.tlsLn == nil {
		return ""
	}
	return n.resp.tlsLn.Addr().String()
}

// Topology returns the slot ownership Redis clients see (CLUSTER SLOTS and
// MOVED), with the addresses plain or (tls) TLS clients dial. It returns
// the same pointer until ownership changes.
func (n *Node) Topology(tls bool) *resp.Topology {
	if n.resp == nil {
		return nil
	}
	if tls {
		return n.resp.topo[1].Load()
	}
	return n.resp.topo[0].Load()
}

// Local reports whether Do serves req on this node without waiting on the
// network, so that the RESP server may run it on an event loop: a request
// for a key whose partition this node is primary of, settled (no transfer
// in progress that would make it fetch the key from a peer), and either
// not a write or a write with no backup to replicate to. Keyed commands of
// a node without quorum, and anything else, may wait. It mirrors route and
// onPartition; when in doubt it answers false, which only costs a goroutine.
func (n *Node) Local(req *protocol.Request) bool {
	switch {
	case req.Op == protocol.OpPing:
		return true
	case !singleKey(req.Op) && req.Op != protocol.OpDelete && req.Op != protocol.OpExists:
		return false
	case !n.serving() || n.noQuorum() != "":
		return true // refused at once
	}
	v := n.view()
	if len(v.table.Members) == 1 && v.table.Members[0] == v.self && n.settled.Load() && n.transfers.syncCnt.Load() == 0 {
		return len(req.Keys) <= 1 // alone: every partition is here, without backups
	}
	if req.Key != "" {
		return n.localKey(v, req.Op, req.Key)
	}
	if len(req.Keys) != 1 { // multiKey runs groups on goroutines
		return false
	}
	return n.localKey(v, req.Op, req.Keys[0])
}

func (n *Node) localKey(v *view, op protocol.Op, key string) bool {
	p := ring.Partition(key, n.cfg.Partitions)
	if _, primary := v.holds(p); !primary || n.unsure(p) {
		return false
	}
	return !mutates(op) || len(v.table.Owners[p]) <= 1
}

// respAdvertise is the host:port Redis clients dial for a listener bound at
// bound: the advertise host if set, else the bind host, with loopback for a
// wildcard bind.
func respAdvertise(advertise, bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	switch ip := net.ParseIP(host); {
	case advertise != "":
		host = advertise
	case ip != nil && ip.IsUnspecified():
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// publishTopology makes the Redis listener describe the current view, for
// CLUSTER SLOTS/SHARDS/NODES and MOVED, with settled as its Settled: every
// member serves from a table of the same members. It makes a new Topology
// only when the view or settled changed. Only the cluster goroutine calls
// it (recompute).
func (n *Node) publishTopology(settled bool) {
	r := n.resp
	if r == nil {
		return
	}
	v := n.view()
	if v.provisional {
		return // not joined yet: keep what startRESP stored
	}
	for i, ln := range r.listeners() {
		if ln == nil {
			continue // no such clients to describe the cluster to
		}
		if v == r.topoView {
			cur := r.topo[i].Load()
			if cur.Settled != settled {
				t := *cur // Shards are shared: a Topology is never changed
				t.Settled = settled
				r.topo[i].Store(&t)
			}
			continue
		}
		t := n.topologyOf(v, i == 1)
		t.Settled = settled
		r.topo[i].Store(t)
	}
	r.topoView = v
}

// topologyOf is v's slot layout with the addresses plain or (tls) TLS
// clients dial. A member without such a listener cannot be dialled by
// those clients: the partitions it is primary of are shown as served by
// this node, which forwards them, and it is left out of the replicas.
func (n *Node) topologyOf(v *view, tls bool) *resp.Topology {
	addr := func(name string) string {
		if tls {
			return v.members[name].RESPTLSAddr
		}
		return v.members[name].RESPAddr
	}
	return TopologyOf(n.cfg.Partitions, v.table.Version,
		func(p int) string {
			if pr := v.primary(p); addr(pr) != "" {
				return pr
			}
			return v.self
		},
		func(p int) []string {
			return slices.DeleteFunc(v.table.Holders(p)[1:], func(m string) bool { return addr(m) == "" })
		},
		addr)
}

// soloTopology is the topology of a node alone: it serves every slot.
func soloTopology(name, addr string) *resp.Topology {
	return &resp.Topology{Epoch: 1, Settled: true, Shards: []resp.Shard{{
		Slots:   [][2]uint16{{0, ring.SlotCount - 1}},
		Primary: resp.Peer{Name: name, Addr: addr},
	}}}
}

// TopologyOf groups partitions into Redis slot ranges by owner: primary(p)
// and backups(p) name partition p's holders and respAddr a node's RESP
// address. Adjacent partitions with the same holders merge into one range.
func TopologyOf(partitions int, epoch uint64, primary func(p int) string, backups func(p int) []string, respAddr func(name string) string) *resp.Topology {
	t := &resp.Topology{Epoch: epoch}
	byOwners := map[string]int{} // holders → shard index
	key := func(p int) string {
		k := primary(p)
		for _, b := range backups(p) {
			k += "\x00" + b
		}
		return k
	}
	for p := 0; p < partitions; p++ {
		first, last := ring.SlotRange(p, partitions)
		k := key(p)
		i, ok := byOwners[k]
		if !ok {
			sh := resp.Shard{Primary: resp.Peer{Name: primary(p), Addr: respAddr(primary(p))}}
			for _, b := range backups(p) {
				sh.Replicas = append(sh.Replicas, resp.Peer{Name: b, Addr: respAddr(b)})
			}
			i = len(t.Shards)
			t.Shards = append(t.Shards, sh)
			byOwners[k] = i
		}
		sl := &t.Shards[i].Slots
		if n := len(*sl); n > 0 && (*sl)[n-1][1]+1 == first {
			(*sl)[n-1][1] = last
		} else {
			*sl = append(*sl, [2]uint16{first, last})
		}
	}
	return t
}
