package node

import (
	"hash/fnv"
	"slices"
	"strings"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// view is an immutable snapshot of the cluster as this node sees it: the
// partition table and how to reach each member. The node publishes a new
// view through an atomic pointer on every membership change; requests read
// it without locks.
type view struct {
	table   *ring.Table
	self    string
	members map[string]protocol.MemberInfo
	hash    uint64 // of the member set
	info    []byte // encoded ClusterInfo, for OpTable

	// provisional marks the view a node starts with before it has joined
	// its cluster: holding a partition in it means nothing.
	provisional bool
}

func newView(t *ring.Table, self string, members map[string]protocol.MemberInfo, replicas int) (*view, error) {
	v := &view{table: t, self: self, members: members, hash: memberHash(t.Members)}
	ci := &protocol.ClusterInfo{Version: t.Version, Partitions: t.Partitions(), Replicas: replicas, Owners: t.Owners}
	for _, name := range t.Members {
		ci.Members = append(ci.Members, members[name])
	}
	var err error
	v.info, err = protocol.EncodeClusterInfo(ci)
	return v, err
}

// memberHash identifies a member set, so that nodes can tell whether two
// tables were computed from the same members.
func memberHash(sorted []string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(sorted, "\x00")))
	return h.Sum64()
}

// primary returns the name of partition p's primary.
func (v *view) primary(p int) string { return v.table.Primary(p) }

// holds reports whether this node holds p, and whether as primary.
func (v *view) holds(p int) (holds, primary bool) { return v.table.Holds(v.self, p) }

// others returns the holders of p other than this node.
func (v *view) others(p int) []string {
	return slices.DeleteFunc(v.table.Holders(p), func(m string) bool { return m == v.self })
}
