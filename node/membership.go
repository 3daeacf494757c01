package node

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/hashicorp/memberlist"
)

// membership glues memberlist to the node: it gossips this node's metadata,
// refuses members of other clusters, and wakes the cluster loop whenever
// the member set or a member's metadata changes.
type membership struct {
	n    *Node
	ml   *memberlist.Memberlist
	addr string                 // the gossip address others reach this node at, fixed at start
	meta atomic.Pointer[[]byte] // encoded nodeMeta served to memberlist
	kick chan struct{}          // capacity 1: membership changed

	mu      sync.Mutex // guards refused, peers and q
	refused map[string]string
	// peers mirrors memberlist's live members as its events report them:
	// name → gossiped metadata. memberlist's own Node values change under
	// its lock, so the node reads this copy instead.
	peers map[string][]byte
	// ips holds the address each live member gossips from, by name: a node
	// at --max-conns still takes its members' connections (see Node.track).
	ips map[string]string
	// gossipAddrs holds each live member's gossip address (host:port), by
	// name, for exchange: the *Node values memberlist's Members returns are
	// written under its own lock as gossip arrives, so they are read only
	// in its event callbacks (track), where it holds that lock.
	gossipAddrs map[string]string

	q quorumState // see liveness.go; guarded by mu

	qmu    sync.Mutex             // serialises quorum decisions (evalQuorum)
	quorum atomic.Pointer[string] // "" when the node sees a majority of q.base, else why not
	// silent lists the table's members that have not answered a heartbeat
	// for silentAfter, as evalQuorum last found them.
	silent atomic.Pointer[[]string]
}

func randomID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func newMembership(n *Node) *membership {
	m := &membership{n: n, kick: make(chan struct{}, 1), refused: map[string]string{}, peers: map[string][]byte{}, ips: map[string]string{}, gossipAddrs: map[string]string{},
		// Until the first table, the node's table is itself alone (as its
		// first view is); a node that never joins anyone keeps that one.
		q: quorumState{base: map[string]bool{n.cfg.Name: true}, left: map[string]bool{},
			table: []string{n.cfg.Name}, heard: map[string]time.Time{}, answered: map[string]time.Time{}, pinging: map[string]bool{}}}
	ok := ""
	m.quorum.Store(&ok)
	return m
}

// startMembership creates the memberlist on cfg.GossipAddr. Joining the
// seeds happens in the cluster loop, with retries.
func (n *Node) startMembership() (*membership, error) {
	m := newMembership(n)
	host, portStr, _ := net.SplitHostPort(n.cfg.GossipAddr)
	port, _ := strconv.Atoi(portStr)
	mc := memberlist.DefaultLANConfig()
	if n.cfg.GossipPreset == "local" {
		mc = memberlist.DefaultLocalConfig()
	}
	// A full state exchange every few seconds, so that a metadata update
	// (a table version) whose broadcast was missed still arrives soon.
	mc.PushPullInterval = 5 * time.Second
	mc.Name = n.cfg.Name
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if n.cfg.Advertise != "" {
		// Gossip needs an IP; a host name (a container's, say) is resolved
		// once here. The native and Redis addresses keep the name.
		ip, err := resolveIP(n.cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("advertise %q: %w", n.cfg.Advertise, err)
		}
		mc.AdvertiseAddr = ip
	}
	mc.Delegate = m
	mc.Events = m
	mc.Alive = m
	mc.Merge = m
	// A dead node may come back under its name at a new address at once:
	// names are unique by configuration, so the newcomer is that node.
	mc.DeadNodeReclaimTime = time.Nanosecond
	mc.LogOutput = logWriter{n.log.With("component", "memberlist")}
	if len(n.cfg.GossipKey) > 0 {
		mc.SecretKey = n.cfg.GossipKey
	}
	if n.cfg.tuneGossip != nil {
		n.cfg.tuneGossip(mc)
	}
	if err := m.setMeta(n.localMeta(0, 0, false)); err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", n.cfg.GossipAddr, err)
	}
	m.ml = ml
	// LocalNode's fields change under memberlist's lock later; read once.
	ln := ml.LocalNode()
	m.addr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	return m, nil
}

func (m *membership) setMeta(meta *nodeMeta) error {
	b, err := meta.encode()
	if err != nil {
		return err
	}
	m.meta.Store(&b)
	return nil
}

// publish gossips new metadata for this node. memberlist's UpdateNode
// queues the broadcast, then waits for it to be sent; but the broadcast
// signals it was sent without blocking (memberlistBroadcast.Finished), so
// one that was sent, or replaced by a newer one, before the wait began
// left UpdateNode waiting out its whole timeout. With a second's timeout
// the cluster loop stalled a second, and logged a false "timeout waiting
// for update broadcast", on most membership changes. Nothing here needs
// the broadcast sent before going on, so publish does not wait for it.
func (m *membership) publish(meta *nodeMeta) error {
	if err := m.setMeta(meta); err != nil {
		return err
	}
	if err := m.ml.UpdateNode(time.Nanosecond); err != nil && err.Error() != errUpdateNotWaited {
		return err
	}
	return nil
}

// errUpdateNotWaited is UpdateNode's error when its timeout passes before
// the broadcast is sent; the broadcast is queued all the same.
const errUpdateNotWaited = "timeout waiting for update broadcast"

func (m *membership) changed() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// check refuses a peer from another cluster or with another partition count.
// It runs inside memberlist's callbacks, where node may be read.
func (m *membership) check(node *memberlist.Node) error {
	return m.checkMeta(node.Name, node.Address(), node.Meta)
}

func (m *membership) checkMeta(name, addr string, raw []byte) error {
	meta, err := decodeMeta(raw)
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case meta.Cluster != m.n.cfg.Cluster:
		why = fmt.Sprintf("cluster name %q, ours is %q", meta.Cluster, m.n.cfg.Cluster)
	case meta.Partitions != m.n.cfg.Partitions:
		why = fmt.Sprintf("%d partitions, ours is %d (--partitions must match across the cluster)", meta.Partitions, m.n.cfg.Partitions)
	case meta.Proto != protocol.Version:
		why = fmt.Sprintf("protocol version %d, ours is %d", meta.Proto, protocol.Version)
	default:
		return nil
	}
	m.mu.Lock()
	if m.refused[name] != why {
		m.refused[name] = why
		m.n.log.Error("refusing member", "peer", name, "addr", addr, "reason", why)
	}
	m.mu.Unlock()
	return fmt.Errorf("cloakroom: refusing %s: %s", name, why)
}

// members returns a copy of the live members' metadata, by name.
func (m *membership) members() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.peers))
	for k, v := range m.peers {
		out[k] = v
	}
	return out
}

func (m *membership) track(node *memberlist.Node, alive bool) {
	m.mu.Lock()
	if alive {
		m.peers[node.Name] = bytes.Clone(node.Meta)
		m.ips[node.Name] = node.Addr.String()
		m.gossipAddrs[node.Name] = node.Address()
		delete(m.q.left, node.Name)
	} else {
		delete(m.peers, node.Name)
		delete(m.ips, node.Name)
		delete(m.gossipAddrs, node.Name)
		if node.State == memberlist.StateLeft {
			m.q.left[node.Name] = true
		}
	}
	m.mu.Unlock()
	m.changed()
}

// exchange makes a full state exchange (memberlist's push/pull, over TCP)
// with each of the named live members, as memberlist does every
// PushPullInterval with one member picked at random, and returns how many
// answered. Metadata a member gossiped that never reached this node (each
// update is sent to a few members picked at random, a few times, and then
// dropped) arrives with it.
func (m *membership) exchange(names []string) (int, error) {
	m.mu.Lock()
	var addrs []string
	for _, name := range names {
		if a, ok := m.gossipAddrs[name]; ok {
			addrs = append(addrs, a)
		}
	}
	m.mu.Unlock()
	if len(addrs) == 0 {
		return 0, nil
	}
	return m.ml.Join(addrs)
}

// at reports whether name is a live member gossiping from ip, or, with
// name "", whether any is.
func (m *membership) at(name, ip string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name != "" {
		return m.ips[name] == ip
	}
	for _, a := range m.ips {
		if a == ip {
			return true
		}
	}
	return false
}

// live reports whether name is a live member as memberlist last said.
func (m *membership) live(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.peers[name]
	return ok
}

// othersLeaving reports whether every live member but self gossips that it
// is leaving (or there is none).
func (m *membership) othersLeaving(self string) bool {
	for name, raw := range m.members() {
		if name == self {
			continue
		}
		if meta, err := decodeMeta(raw); err == nil && !meta.Leaving {
			return false
		}
	}
	return true
}

// markLeft records that name is leaving gracefully.
func (m *membership) markLeft(name string) {
	m.mu.Lock()
	m.q.left[name] = true
	m.mu.Unlock()
}

// memberlist.Delegate

func (m *membership) NodeMeta(limit int) []byte {
	b := *m.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}
func (m *membership) NotifyMsg([]byte)                           {}
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *membership) LocalState(join bool) []byte                { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool)     {}

// memberlist.EventDelegate

func (m *membership) NotifyJoin(node *memberlist.Node)   { m.track(node, true) }
func (m *membership) NotifyLeave(node *memberlist.Node)  { m.track(node, false) }
func (m *membership) NotifyUpdate(node *memberlist.Node) { m.track(node, true) }

// memberlist.AliveDelegate and MergeDelegate

func (m *membership) NotifyAlive(peer *memberlist.Node) error { return m.check(peer) }

func (m *membership) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if err := m.check(p); err != nil {
			return err
		}
	}
	return nil
}

// logWriter turns memberlist's log lines into structured debug logs, and
// its warnings and errors into warnings.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	line := string(bytes.TrimSpace(b))
	switch {
	case bytes.Contains(b, []byte("[ERR]")), bytes.Contains(b, []byte("[WARN]")):
		w.log.Warn(line)
	default:
		w.log.Debug(line)
	}
	return len(b), nil
}

var _ io.Writer = logWriter{}

// resolveIP returns host if it is an IP address, else its first address.
func resolveIP(host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("no address for %s", host)
	}
	return ips[0].String(), nil
}
