package ring

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Table is the partition table of one cluster membership: for every
// partition, the members that hold it, primary first. It is immutable once
// computed; nodes and clients publish it through an atomic pointer and read
// it without locks.
type Table struct {
	// Version orders tables: a node rejects replication work stamped with a
	// table older than its own.
	Version uint64
	// Members are the member names, sorted.
	Members []string
	// Owners lists, per partition, indexes into Members: the primary, then
	// the backups.
	Owners [][]uint16
}

// Partitions returns the partition count.
func (t *Table) Partitions() int { return len(t.Owners) }

// Primary returns the name of partition p's primary.
func (t *Table) Primary(p int) string { return t.Members[t.Owners[p][0]] }

// Holders returns the names of the members holding partition p, primary first.
func (t *Table) Holders(p int) []string {
	out := make([]string, len(t.Owners[p]))
	for i, m := range t.Owners[p] {
		out[i] = t.Members[m]
	}
	return out
}

// Holds reports whether member holds partition p (as primary or backup),
// and whether as primary.
func (t *Table) Holds(member string, p int) (holds, primary bool) {
	for i, m := range t.Owners[p] {
		if t.Members[m] == member {
			return true, i == 0
		}
	}
	return false, false
}

// PrimaryCounts returns how many partitions each member is primary for.
func (t *Table) PrimaryCounts() map[string]int {
	out := make(map[string]int, len(t.Members))
	for _, o := range t.Owners {
		out[t.Members[o[0]]]++
	}
	return out
}

// loadFactor bounds any member's share of primaries to about 1.25 times
// the average (consistent hashing with bounded loads).
const loadFactor = 1.25

// virtualNodes is how many points each member has on the hash ring.
const virtualNodes = 32

// ErrNoMembers is returned by Compute for an empty member set.
var ErrNoMembers = errors.New("ring: no members")

// Compute returns the table for members (any order, no duplicates) with
// the given partition count and number of copies per partition (including
// the primary; capped at the member count). The result depends only on the
// arguments, so every node computes the same table from the same members.
//
// Primaries come from a consistent-hash ring with bounded loads. The first
// backup of a partition is the member that would become its primary if the
// primary left, so a lost primary's partitions are promoted in place, and
// they are spread over all other members rather than one successor. Further
// backups are chosen by rendezvous hashing.
func Compute(members []string, partitions, replicas int, version uint64) (*Table, error) {
	if len(members) == 0 {
		return nil, ErrNoMembers
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("ring: %d partitions; want 1..%d", partitions, MaxPartitions)
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	if i := firstDuplicate(ms); i >= 0 {
		return nil, fmt.Errorf("ring: member %q listed twice", ms[i])
	}
	for _, m := range ms {
		if m == "" || strings.ContainsAny(m, "\x00#") {
			return nil, fmt.Errorf("ring: bad member name %q", m)
		}
	}
	if len(ms) > math.MaxUint16 {
		return nil, fmt.Errorf("ring: %d members; at most %d", len(ms), math.MaxUint16)
	}
	replicas = max(1, min(replicas, len(ms)))
	index := make(map[string]uint16, len(ms))
	for i, m := range ms {
		index[m] = uint16(i)
	}
	primaries, err := primaryOwners(ms, partitions)
	if err != nil {
		return nil, err
	}
	// The first backup: primary on the ring without the primary.
	var without = map[string][]string{}
	if replicas > 1 {
		for _, m := range ms {
			rest := slices.DeleteFunc(slices.Clone(ms), func(x string) bool { return x == m })
			if without[m], err = primaryOwners(rest, partitions); err != nil {
				return nil, err
			}
		}
	}
	t := &Table{Version: version, Members: ms, Owners: make([][]uint16, partitions)}
	for p := range partitions {
		owners := make([]uint16, 0, replicas)
		owners = append(owners, index[primaries[p]])
		if replicas > 1 {
			owners = append(owners, index[without[primaries[p]][p]])
		}
		if len(owners) < replicas {
			owners = append(owners, rendezvous(ms, p, owners, replicas-len(owners))...)
		}
		t.Owners[p] = owners
	}
	return t, nil
}

// primaryOwners assigns each partition a member with consistent hashing
// with bounded loads. It checks the conditions under which the library
// panics (and leaves its state half-changed) before calling it.
func primaryOwners(members []string, partitions int) ([]string, error) {
	n := len(members)
	if n > partitions {
		return nil, fmt.Errorf("ring: %d members but only %d partitions; every member needs one", n, partitions)
	}
	load := loadFactor
	// The library's room per member is ceil(floor(P/N) * load); raise the
	// load until all partitions fit.
	for float64(n)*math.Ceil(float64(partitions/n)*load) < float64(partitions) {
		load += 0.05
	}
	cms := make([]consistent.Member, n)
	for i, m := range members {
		cms[i] = ringMember(m)
	}
	c := consistent.New(cms, consistent.Config{
		Hasher:            xxHasher{},
		PartitionCount:    partitions,
		ReplicationFactor: virtualNodes,
		Load:              load,
	})
	out := make([]string, partitions)
	for p := range partitions {
		out[p] = string(c.GetPartitionOwner(p).(ringMember))
	}
	return out, nil
}

// ringMember is a member on the consistent ring. Its ring name ends in a
// separator so that the library's virtual-node keys (name + index) cannot
// collide: "member1"+"0" and "member"+"10" would.
type ringMember string

func (m ringMember) String() string { return string(m) + "#" }

type xxHasher struct{}

func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// rendezvous picks n members for partition p by highest random weight,
// skipping those already chosen.
func rendezvous(members []string, p int, chosen []uint16, n int) []uint16 {
	type scored struct {
		idx   uint16
		score uint64
	}
	var cands []scored
	for i, m := range members {
		if slices.Contains(chosen, uint16(i)) {
			continue
		}
		cands = append(cands, scored{uint16(i), xxhash.Sum64String(fmt.Sprintf("%d#%s", p, m))})
	}
	slices.SortFunc(cands, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := make([]uint16, 0, n)
	for i := 0; i < n && i < len(cands); i++ {
		out = append(out, cands[i].idx)
	}
	return out
}

func firstDuplicate(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}
