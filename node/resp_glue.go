package node

import (
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

// respListener is the node's Redis protocol listener.
type respListener struct {
	srv  *resp.Server
	ln   net.Listener
	topo atomic.Pointer[resp.Topology] // current slot ownership, as Redis clients see it

	// topoView is the view topo was made from; only the cluster goroutine
	// (recompute, through publishTopology) touches it.
	topoView *view
}

// startRESP binds addr and creates the Redis protocol server for it;
// serveRESP starts it.
func (n *Node) startRESP(addr string) (*respListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen resp %s: %w", addr, err)
	}
	r := &respListener{ln: ln}
	// Until the node has its first table it describes itself alone if it
	// starts a cluster, and no slots at all (CLUSTER INFO: cluster_state
	// fail) if it joins one: a node restarting into its cluster must not
	// claim every slot to a client that reloads its layout from it.
	if len(n.cfg.Join) == 0 {
		r.topo.Store(soloTopology(n.cfg.Name, respAdvertise(n.cfg.Advertise, ln.Addr().String())))
	} else {
		r.topo.Store(&resp.Topology{})
	}
	r.srv = resp.NewServer(n, resp.Config{
		Password:    n.cfg.Password,
		ClusterMode: n.cfg.RESPClusterMode,
		IdleSpin:    n.cfg.RESPIdleSpin,
		MaxClients:  n.cfg.RESPMaxClients,
		IdleTimeout: n.cfg.RESPIdleTimeout,
		RetryWindow: n.cfg.RESPRetryWindow,
		Limits:      resp.DefaultLimits(n.cfg.Limits.MaxValue),
		Logger:      n.log,
	})
	srv := r.srv
	n.metrics.reg.MustRegister(
		stat("cloakroom_resp_clients", "Open Redis protocol connections.", prometheus.GaugeValue, func() int64 { return int64(srv.Clients()) }),
		stat("cloakroom_resp_refused_connections_total", "Redis protocol connections closed at once because the node was at --resp-max-clients.", prometheus.CounterValue, srv.Refused),
		stat("cloakroom_resp_idle_closed_total", "Redis protocol connections closed for sending nothing for --resp-idle-timeout.", prometheus.CounterValue, srv.IdleClosed),
		stat("cloakroom_resp_retries_total", "Redis commands' attempts made again because the cluster was changing (--resp-retry-window).", prometheus.CounterValue, srv.Retries))
	return r, nil
}

// serveRESP starts serving the Redis protocol listener, if there is one. New
// calls it last, once every field the server's goroutines read is set.
func (n *Node) serveRESP() {
	if n.resp == nil {
		return
	}
	n.goRun(func() {
		if err := n.resp.srv.Serve(n.resp.ln); err != nil && !errors.Is(err, resp.ErrServerClosed) {
			n.log.Error("resp serve", "err", err)
		}
	})
}

func (r *respListener) close() error {
	err := r.srv.Close()
	if cerr := r.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr // Serve never ran (New failed after binding)
	}
	return err
}

// RESPAddr returns the Redis protocol listener's address, or "" if it is
// disabled.
func (n *Node) RESPAddr() string {
	if n.resp == nil {
		return ""
	}
	return n.resp.ln.Addr().String()
}

// Topology returns the slot ownership Redis clients see (CLUSTER SLOTS and
// MOVED). It returns the same pointer until ownership changes.
func (n *Node) Topology() *resp.Topology {
	if n.resp == nil {
		return nil
	}
	return n.resp.topo.Load()
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
	if v == r.topoView {
		cur := r.topo.Load()
		if cur.Settled != settled {
			t := *cur // Shards are shared: a Topology is never changed
			t.Settled = settled
			r.topo.Store(&t)
		}
		return
	}
	t := n.topologyOf(v)
	t.Settled = settled
	r.topo.Store(t)
	r.topoView = v
}

// topologyOf is v's slot layout. A member without a Redis listener cannot
// be dialled by Redis clients: the partitions it is primary of are shown
// as served by this node, which forwards them, and it is left out of the
// replicas.
func (n *Node) topologyOf(v *view) *resp.Topology {
	addr := func(name string) string { return v.members[name].RESPAddr }
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
