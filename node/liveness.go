package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Liveness for quorum. memberlist needs tens of seconds to declare a member
// that was cut off dead, and one that was cut off drops its peers one at a
// time over as long; until then each side still has the other in its
// table. Quorum cannot wait for that: a node that can no longer reach most
// of its cluster must stop serving sessions within seconds, or it goes on
// answering reads of sessions the majority has deleted. So every node pings
// the other members of its table over the native protocol, and counts as
// seen only those that answered within quorumWindow from a table of the
// same members as its own. The last part matters when a network partition
// heals: the cut-off node may never have dropped anyone from its table,
// while the majority still runs on a table without it for a few seconds
// more; answering its pings does not make them agree, and until they do it
// must not serve what it kept from before the cut.
//
// A node that regains quorum has missed what the majority did meanwhile:
// before it serves again it pulls every partition it holds from every
// other member (resync), as a node joining for the first time would, so
// that a session deleted on the majority side cannot come back through it.
const (
	heartbeatInterval = 500 * time.Millisecond
	heartbeatTimeout  = time.Second
	// quorumWindow is how recently a member must have answered to count
	// towards quorum. A member that enters the table counts from then on
	// for one window before it must have answered.
	quorumWindow = 3 * time.Second
	// silentAfter is how long a member may go without answering a
	// heartbeat before reads stop waiting for it (Node.silent): three
	// heartbeats missed, long before failure detection drops it.
	silentAfter = 3 * heartbeatInterval
)

// quorumState is the input to the quorum decision, guarded by
// membership.mu.
type quorumState struct {
	// base is the membership this node last belonged to. A member joins it
	// when it enters the table and leaves it only by leaving gracefully
	// (left); a crashed member stays, so a node cut off from the others
	// cannot count itself a majority.
	base map[string]bool
	left map[string]bool
	// table is the current table's member set; heard is when each other
	// member last answered a heartbeat from a table of the same members,
	// or entered the table; answered is when it last answered at all
	// (alive, whatever its table), or entered the table.
	table    []string
	heard    map[string]time.Time
	answered map[string]time.Time
	// pinging marks members with a heartbeat in flight.
	pinging map[string]bool
}

// updateQuorum folds the members of a new table into the base membership
// and decides whether this node still sees a majority of it.
func (m *membership) updateQuorum(members []string, leaving bool) {
	now := time.Now()
	m.mu.Lock()
	q := &m.q
	for _, name := range members {
		q.base[name] = true
		if !slices.Contains(q.table, name) {
			q.heard[name], q.answered[name] = now, now
		}
	}
	for name := range q.left {
		delete(q.base, name)
	}
	if leaving {
		delete(q.base, m.n.cfg.Name)
	}
	q.table = slices.Clone(members)
	for name := range q.heard {
		if !slices.Contains(members, name) {
			delete(q.heard, name)
			delete(q.answered, name)
		}
	}
	m.mu.Unlock()
	m.evalQuorum(now)
}

// heardFrom records that name answered a heartbeat sent at at, from a
// table of the same members as this node's if sameTable.
func (m *membership) heardFrom(name string, at time.Time, sameTable bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.q.answered[name]; ok && at.After(m.q.answered[name]) {
		m.q.answered[name] = at
	}
	if _, ok := m.q.heard[name]; ok && sameTable && at.After(m.q.heard[name]) {
		m.q.heard[name] = at
	}
}

// evalQuorum decides whether this node sees a majority of its base
// membership now, and publishes the answer. On regaining quorum it first
// queues the resync, so that no request is served from what the node held
// while it was cut off.
func (m *membership) evalQuorum(now time.Time) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	m.mu.Lock()
	seen := 0
	var silent []string
	for _, name := range m.q.table {
		if name != m.n.cfg.Name && now.Sub(m.q.answered[name]) > silentAfter {
			silent = append(silent, name)
		}
		if !m.q.base[name] {
			continue
		}
		if name == m.n.cfg.Name || now.Sub(m.q.heard[name]) <= quorumWindow {
			seen++
		}
	}
	base := len(m.q.base)
	m.mu.Unlock()
	m.silent.Store(&silent)
	why := ""
	if base > 0 && seen*2 <= base {
		why = fmt.Sprintf("node %s sees %d of the %d members it last belonged to, not a majority", m.n.cfg.Name, seen, base)
	}
	prev := *m.quorum.Load()
	if prev == why {
		return
	}
	switch {
	case why != "" && prev == "":
		m.n.log.Warn("lost quorum: refusing reads and writes", "seen", seen, "base", base)
	case why == "":
		m.n.log.Info("quorum regained; pulling every held partition again", "seen", seen, "base", base)
		m.n.resync()
	}
	m.quorum.Store(&why)
}

// noQuorum returns why this node may not serve keys, or "".
func (m *membership) noQuorum() string { return *m.quorum.Load() }

// silent reports whether member name of this node's table has not answered
// a heartbeat for silentAfter: it is stopped, cut off or overloaded, and
// failure detection may take seconds more to drop it from the table.
func (n *Node) silent(name string) bool { return slices.Contains(n.silentList(), name) }

// silentMembers counts the members silent reports.
func (n *Node) silentMembers() int { return len(n.silentList()) }

// silentList returns the members silent reports, as evalQuorum last found
// them.
func (n *Node) silentList() []string {
	if n.members == nil {
		return nil
	}
	if s := n.members.silent.Load(); s != nil {
		return *s
	}
	return nil
}

// runHeartbeats pings the other members of the table every
// heartbeatInterval and re-evaluates quorum, until the node closes.
func (n *Node) runHeartbeats() {
	tick := time.NewTicker(heartbeatInterval)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	m := n.members
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			v := n.view()
			for _, name := range v.table.Members {
				if name == n.cfg.Name || !m.startPing(name) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer m.endPing(name)
					ctx, cancel := context.WithTimeout(n.ctx, heartbeatTimeout)
					defer cancel()
					sent := time.Now()
					r, err := n.call(ctx, v, name, &protocol.Request{Op: protocol.OpPing})
					if err == nil {
						m.heardFrom(name, sent, r.Code == protocol.CodeOK && r.Version == n.view().hash)
					}
				}()
			}
			m.evalQuorum(now)
		}
	}
}

// startPing marks a heartbeat to name in flight; false if one already is.
func (m *membership) startPing(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.q.pinging[name] {
		return false
	}
	m.q.pinging[name] = true
	return true
}

func (m *membership) endPing(name string) {
	m.mu.Lock()
	delete(m.q.pinging, name)
	m.mu.Unlock()
}

// resync queues a pull of every partition this node holds from every other
// member: after a partition the majority may have written and deleted
// sessions this node never saw, and the partitions' holders may since have
// moved more than once. Entries apply by version, so pulling what the node
// already has costs bandwidth, not correctness; until a partition has been
// pulled, requests fetch their keys first (ensureKeys).
func (n *Node) resync() {
	cur := n.view()
	old := *cur
	old.provisional = true // as if nothing held had ever been held
	n.transfers.onViewChange(&old, cur)
}
