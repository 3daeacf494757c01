package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// The cluster loop is the single owner of cluster state: it turns
// membership changes into a new partition table, publishes it as an
// immutable view, and starts the partition transfers the change calls for.

// settle is how long the loop waits after a membership event for more
// events, so that a burst of changes yields one table.
const settle = 50 * time.Millisecond

// Members learn each other's tables from gossiped metadata (recompute),
// and memberlist sends each update to a few members picked at random, a
// few times, then drops it (with the local preset and four nodes, to two
// of the three others, on gossip and probes alike): a member it missed
// learns it from a full state exchange, which memberlist makes every
// PushPullInterval (5 s) with one member picked at random. Until then this
// node is not settled and pulls nothing. So once members have gossiped
// another table than this node's for catchUpAfter (several gossip rounds,
// so that an update on its way is not raced), the node exchanges state
// with those members itself, again after twice as long while they still
// do, up to catchUpMax: no more often than memberlist's own exchanges when
// they really are on another table (a member cut off, say).
const (
	catchUpAfter = 250 * time.Millisecond
	catchUpMax   = 5 * time.Second
)

// advertise returns the address others should dial for a listener bound
// at bound: the advertise host (or the bind host, or the gossip layer's
// chosen address for a wildcard bind) with the bound port.
func (n *Node) advertise(bound string) string {
	if bound == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	switch {
	case n.cfg.Advertise != "":
		host = n.cfg.Advertise
	case net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified(), host == "":
		if n.members != nil {
			host, _, _ = net.SplitHostPort(n.members.addr)
		}
	}
	return net.JoinHostPort(host, port)
}

func (n *Node) localMeta(table, hash uint64, leaving bool) *nodeMeta {
	return &nodeMeta{
		Cluster:     n.cfg.Cluster,
		Partitions:  n.cfg.Partitions,
		Proto:       protocol.Version,
		Addr:        n.advertise(n.Addr()),
		RESPAddr:    n.advertise(n.respBound),
		HTTPAddr:    n.advertise(n.HTTPAddr()),
		StartID:     n.startID,
		Table:       table,
		TableHash:   hash,
		Leaving:     leaving,
		RESPTLSAddr: n.advertise(n.respTLSBound),
	}
}

func (n *Node) selfInfo() protocol.MemberInfo {
	return protocol.MemberInfo{Name: n.cfg.Name, Addr: n.advertise(n.Addr()), RESPAddr: n.advertise(n.respBound), HTTPAddr: n.advertise(n.HTTPAddr()), RESPTLSAddr: n.advertise(n.respTLSBound)}
}

// view returns the current cluster view.
func (n *Node) view() *view { return n.cview.Load() }

// soloView is the view of a node alone: it holds every partition.
func (n *Node) soloView(version uint64) *view {
	t, err := ring.Compute([]string{n.cfg.Name}, n.cfg.Partitions, n.cfg.Replicas, version)
	if err != nil {
		panic(err) // one valid member and a validated partition count cannot fail
	}
	v, err := newView(t, n.cfg.Name, map[string]protocol.MemberInfo{n.cfg.Name: n.selfInfo()}, n.cfg.Replicas)
	if err != nil {
		panic(err)
	}
	return v
}

// runCluster joins the seeds (retrying until it succeeds or the node
// closes) and recomputes the view on every membership change.
func (n *Node) runCluster() {
	m := n.members
	if len(n.cfg.Join) > 0 {
		n.joinSeeds()
	}
	// While members gossip other tables than this node's, exchange state
	// with them (see catchUpAfter).
	catchUp := time.NewTimer(0)
	<-catchUp.C
	armed, wait := false, catchUpAfter
	var exchanging atomic.Bool // an exchange is under way
	recompute := func() {
		behind := n.recompute()
		switch {
		case len(behind) == 0:
			catchUp.Stop()
			armed, wait = false, catchUpAfter
		case !armed:
			catchUp.Reset(wait)
			armed = true
		}
	}
	// The first table from the joined membership comes before serving.
	recompute()
	n.joined.Store(true)
	t := time.NewTimer(0)
	<-t.C
	// Recompute now and then even without events: cheap, and it catches up
	// with anything an event missed.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-m.kick:
			t.Reset(settle)
		case <-t.C:
			recompute()
		case <-tick.C:
			recompute()
		case <-catchUp.C:
			armed = false
			behind := n.recompute()
			if len(behind) == 0 {
				wait = catchUpAfter
				continue
			}
			if exchanging.CompareAndSwap(false, true) {
				n.log.Debug("members gossip another table; exchanging state with them", "peers", behind, "after", wait)
				n.goRun(func() {
					defer exchanging.Store(false)
					if _, err := m.exchange(behind); err != nil && n.ctx.Err() == nil {
						n.log.Debug("state exchange failed", "peers", behind, "err", err)
					}
				})
			}
			wait = min(2*wait, catchUpMax)
			catchUp.Reset(wait)
			armed = true
		}
	}
}

func (n *Node) joinSeeds() {
	backoff := 100 * time.Millisecond
	for {
		// Reaching only itself is no join: a node whose other seeds do not
		// answer (yet) would serve as a cluster of one beside the real
		// one. A list that names only this node starts a new cluster.
		others, self := n.otherSeeds(n.ctx)
		if len(others) == 0 && self > 0 {
			n.log.Info("the join list names only this node: starting a new cluster", "seeds", n.cfg.Join)
			return
		}
		k, err := n.members.ml.Join(others)
		if err == nil && k > 0 && n.members.ml.NumMembers() > 1 {
			n.log.Info("joined cluster", "seeds", n.cfg.Join, "contacted", k)
			return
		}
		if err == nil {
			err = errors.New("no other member is known after the join")
		}
		n.log.Warn("join failed; retrying", "seeds", n.cfg.Join, "err", err, "retry_in", backoff)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// recompute derives the table from the current members and publishes it
// if it differs from the current one. It returns the other members whose
// gossiped table is of another member set than this node's (settled when
// there is none).
func (n *Node) recompute() (behind []string) {
	cur := n.view()
	members := map[string]protocol.MemberInfo{}
	var names []string
	var peerMax uint64
	peerVersions := map[uint64]uint64{} // member-set hash → highest version gossiped for it
	peerHashes := map[string]uint64{}   // member → hash of its table's member set
	leaving := n.leaving.Load()
	for name, raw := range n.members.members() {
		if n.members.checkMeta(name, "", raw) != nil {
			continue
		}
		meta, _ := decodeMeta(raw)
		// Every live member stays addressable, a leaving one included: its
		// partitions are pulled from it while it hands them over.
		members[name] = protocol.MemberInfo{Name: name, Addr: meta.Addr, RESPAddr: meta.RESPAddr, HTTPAddr: meta.HTTPAddr, RESPTLSAddr: meta.RESPTLSAddr}
		if name == n.cfg.Name {
			if leaving {
				continue
			}
		} else {
			if meta.Leaving {
				n.members.markLeft(name)
				continue
			}
			peerMax = max(peerMax, meta.Table)
			peerVersions[meta.TableHash] = max(peerVersions[meta.TableHash], meta.Table)
			peerHashes[name] = meta.TableHash
		}
		names = append(names, name)
	}
	if len(names) == 0 || (!leaving && !slices.Contains(names, n.cfg.Name)) {
		return nil // not a member (yet), or the last one leaving: keep the last view
	}
	slices.Sort(names)
	hash := memberHash(names)
	// Settled: every other member gossips a table of this same member set.
	for name, h := range peerHashes {
		if slices.Contains(names, name) && h != hash {
			behind = append(behind, name)
		}
	}
	slices.Sort(behind)
	settled := len(behind) == 0
	n.settled.Store(settled)
	defer n.publishTopology(settled) // whether or not the view changes below
	version := cur.table.Version
	switch {
	case hash != cur.hash:
		version = max(version, peerMax) + 1
	case peerVersions[hash] > version:
		version = peerVersions[hash] // same members, a peer numbered it higher: agree
	default:
		return
	}
	t, err := ring.Compute(names, n.cfg.Partitions, n.cfg.Replicas, version)
	if err != nil {
		n.log.Error("cannot compute partition table", "members", len(names), "err", err)
		return
	}
	v, err := newView(t, n.cfg.Name, members, n.cfg.Replicas)
	if err != nil {
		n.log.Error("cannot encode partition table", "err", err)
		return
	}
	if hash != cur.hash {
		// Queue transfers before the view is visible, so that no request
		// sees a partition as held and complete before it has arrived.
		n.transfers.onViewChange(cur, v)
	}
	n.cview.Store(v)
	n.peers.retain(members)
	n.members.updateQuorum(names, leaving)
	if hash != cur.hash {
		n.log.Info("partition table changed", "version", version, "members", len(names),
			"primaries", t.PrimaryCounts()[n.cfg.Name], "under_replicated", n.cfg.Replicas > len(names))
	}
	if err := n.members.publish(n.localMeta(version, hash, leaving)); err != nil {
		n.log.Warn("gossip table version", "version", version, "err", err)
	}
	return behind
}

// Members returns the names of the current members.
func (n *Node) Members() []string { return slices.Clone(n.view().table.Members) }

// TableVersion returns the version of the node's partition table.
func (n *Node) TableVersion() uint64 { return n.view().table.Version }

// ClusterInfo returns the node's view of the cluster.
func (n *Node) ClusterInfo() *protocol.ClusterInfo {
	ci, _ := protocol.NewDecoder().DecodeClusterInfo(n.view().info)
	return ci
}

// handOff leaves the cluster gracefully: the node gossips that it is
// leaving, so that every member computes a table without it; the new
// holders of its partitions pull them (from it among others) while it
// forwards every request; once every member has that table and is ready,
// it leaves the gossip. ctx bounds the wait (--drain-timeout).
func (n *Node) handOff(ctx context.Context) {
	if n.members == nil {
		return
	}
	if v := n.view(); len(v.table.Members) <= 1 {
		n.leaving.Store(true)
		return // alone: nobody to hand anything to
	}
	n.leaving.Store(true)
	n.members.changed()
	start := time.Now()
	err := n.waitHandedOff(ctx)
	switch {
	case err != nil:
		n.log.Warn("hand-off incomplete; leaving anyway", "err", err, "after", time.Since(start).Round(time.Millisecond))
	default:
		n.log.Info("partitions handed off", "after", time.Since(start).Round(time.Millisecond))
	}
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), 100*time.Millisecond)
	}
	if err := n.members.ml.Leave(timeout); err != nil {
		n.log.Warn("leave gossip", "err", err)
	}
}

// waitHandedOff polls until this node's view no longer includes it and
// every remaining member reports that same table and is ready.
func (n *Node) waitHandedOff(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var why string
	for {
		v := n.view()
		switch {
		case n.members.othersLeaving(n.cfg.Name):
			return errors.New("every other member is leaving too: nobody to hand over to")
		case slices.Contains(v.table.Members, n.cfg.Name):
			why = "the table still includes this node"
		case len(v.table.Members) == 0:
			return nil
		case n.transfers.pushCnt.Load() > 0:
			why = fmt.Sprintf("%d partitions still being handed over", n.transfers.pushCnt.Load())
		default:
			why = n.peersSettled(ctx, v)
			if why == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-tick.C:
		}
	}
}

// peersSettled returns "" if every member of v reports v's table and is
// ready, else what is still missing. This node, if a member, answers
// for itself without a call.
func (n *Node) peersSettled(ctx context.Context, v *view) string {
	for _, m := range v.table.Members {
		if m == v.self {
			if ok, why := n.Ready(); !ok {
				return fmt.Sprintf("%s not ready: %s", m, why)
			}
			continue
		}
		r, err := n.call(ctx, v, m, &protocol.Request{Op: protocol.OpStatus})
		if err != nil {
			return err.Error()
		}
		s, err := protocol.DecodeNodeStatus(r.Value)
		switch {
		case err != nil:
			return err.Error()
		case s.Members != len(v.table.Members) || s.TableVersion < v.table.Version:
			return fmt.Sprintf("%s has table %d of %d members", m, s.TableVersion, s.Members)
		case !s.Ready:
			return fmt.Sprintf("%s not ready: %s", m, s.NotReady)
		}
	}
	return ""
}

// underReplicated counts partitions with fewer holders than the configured
// replicas, or still arriving somewhere on this node.
func (n *Node) underReplicated() int {
	v := n.view()
	k := 0
	for p := range v.table.Owners {
		if len(v.table.Owners[p]) < n.cfg.Replicas || n.transfers.syncing(p) {
			k++
		}
	}
	return k + int(n.transfers.pushCnt.Load())
}

// Status returns the node's account of itself.
func (n *Node) Status() *protocol.NodeStatus {
	v := n.view()
	st := n.store.Stats()
	s := &protocol.NodeStatus{
		Name: n.cfg.Name, TableVersion: v.table.Version, Members: len(v.table.Members),
		Keys: st.Keys, Tombstones: st.Tombstones, MemoryUsed: st.UsedMemory(), MemoryMax: n.store.MaxMemory(),
		Evictions: st.Evictions, Arriving: int(n.transfers.syncCnt.Load()), Sending: int(n.transfers.pushCnt.Load()),
		UnderReplicated: n.underReplicated(),
	}
	for p := range v.table.Owners {
		if holds, primary := v.holds(p); primary {
			s.Primaries++
		} else if holds {
			s.Backups++
		}
	}
	s.Ready, s.NotReady = n.Ready()
	done, total, entries, elapsed := n.transfers.progress()
	s.TransferDone, s.TransferTotal, s.TransferEntries, s.TransferSeconds = done, total, entries, elapsed.Seconds()
	return s
}
