package store

import (
	"cmp"
	"slices"
	"sort"

	"github.com/cloakroom/cloakroom/protocol"
)

// This file serves partition transfers (Fetch) from a snapshot of the
// partition's keys in scan order, so that a transfer walks and sorts the
// partition once rather than once per batch, and holds the partition's lock
// only briefly at a time.
//
// A transfer starts with cursor 0, which always takes a fresh snapshot; a
// later batch reads the partition's newest snapshot, which was taken no
// earlier than that (snapshots are only ever replaced by newer ones), or
// takes a fresh one if it was dropped. So every key that exists on this
// node throughout a transfer is in each snapshot the transfer reads, and
// since a batch resumes after the cursor's scan position it is returned
// exactly once. Entries are read from the live partition by key, so what
// a batch returns is current: overwrites, tombstones and TTL changes made
// since the snapshot show, and keys gone since are skipped. Keys created
// after the snapshot are not returned; replication to the new holders and
// hand-over pushes carry those (see node/transfer.go).

// fetchSnap is a partition's unexpired keys in scan order.
type fetchSnap struct {
	seq  uint64   // order of taking within the partition
	pos  []uint64 // scan positions, ascending
	keys []string // keys[i] is at pos[i]; substrings of one string
}

// maxSnapshots bounds how many partitions keep a snapshot between batches.
// A transfer whose snapshot was dropped takes a new one, so this bounds
// memory, not correctness.
const maxSnapshots = 8

// fetchLockRun is how many keys a batch reads per hold of the partition's
// lock, so that foreground requests on the partition wait little.
const fetchLockRun = 256

// fetchValueBlock is the size of the buffers batch values are copied into.
const fetchValueBlock = 64 << 10

// Fetch returns entries of partition pi, tombstones included, in scan order
// after cursor, at most maxBytes of keys and values counting 32 bytes of
// overhead each (but at least one entry; keys sharing a scan position stay
// together). The second result is the cursor to continue from, 0 when the
// partition is done. Cursor 0 starts a transfer: see the top of this file
// for what a transfer returns while the partition changes.
func (s *Store) Fetch(pi int, cursor uint64, maxBytes int) ([]protocol.Entry, uint64) {
	p := s.parts[pi]
	var snap *fetchSnap
	if cursor != 0 {
		p.mu.Lock()
		snap = p.snap
		p.mu.Unlock()
	}
	if snap == nil {
		snap = s.snapshot(p)
	}
	s.useSnapshot(pi)
	i := sort.Search(len(snap.pos), func(i int) bool { return snap.pos[i] > cursor })
	var out []protocol.Entry
	var buf []byte // values are copied into shared blocks, not one allocation each
	size := 0
	for i < len(snap.pos) {
		p.mu.Lock()
		now := s.now()
		for end := min(i+fetchLockRun, len(snap.pos)); i < end; i++ {
			key := snap.keys[i]
			l, ok := p.lookup(key)
			if !ok {
				continue
			}
			e := p.entryAt(l)
			h := readHeader(e)
			if h.expired(now) {
				continue
			}
			sz := h.keyLen + h.valLen + 32
			if len(out) > 0 && size+sz > maxBytes && snap.pos[i] != snap.pos[i-1] {
				p.mu.Unlock()
				return out, snap.pos[i-1]
			}
			size += sz
			x := protocol.Entry{Key: key, TTL: s.remaining(h, now), Version: h.version, Tombstone: h.tombstone()}
			if !x.Tombstone || h.valLen > 0 { // a tombstone's value is its delete token
				if len(buf)+h.valLen > cap(buf) {
					buf = make([]byte, 0, max(h.valLen, min(fetchValueBlock, maxBytes)))
				}
				n := len(buf)
				buf = append(buf, valueOf(e, h)...)
				x.Value = buf[n:len(buf):len(buf)]
			}
			if out == nil {
				out = make([]protocol.Entry, 0, min(len(snap.pos)-i, maxBytes/(sz+1)+1))
			}
			out = append(out, x)
		}
		p.mu.Unlock()
	}
	s.dropSnapshot(pi, snap)
	return out, 0
}

// snapshot takes a new snapshot of p's keys and makes it p's newest unless
// a newer one was taken meanwhile. It walks p under its lock and sorts
// outside it.
func (s *Store) snapshot(p *partition) *fetchSnap {
	p.mu.Lock()
	now := s.now()
	locs := p.locsInArenaOrder()
	pos := make([]uint64, 0, len(locs))
	ends := make([]int, 0, len(locs)) // key i is buf[ends[i-1]:ends[i]]
	buf := make([]byte, 0, 24*len(locs))
	for _, l := range locs {
		e := p.entryAt(l)
		h := readHeader(e)
		if h.expired(now) {
			continue
		}
		key := keyOf(e, h)
		buf = append(buf, key...)
		pos = append(pos, scanPosBytes(key))
		ends = append(ends, len(buf))
	}
	p.snapSeq++
	snap := &fetchSnap{seq: p.snapSeq}
	p.mu.Unlock()

	// Sort the keys' indexes by position: packed below the position in one
	// word when they fit (a plain integer sort), else with a comparison.
	n := len(pos)
	order := make([]uint64, n)
	const idxBits = 64 - (ScanPosBits - 1)
	if n <= 1<<idxBits {
		for i, x := range pos {
			order[i] = x<<idxBits | uint64(i)
		}
		slices.Sort(order)
		for i := range order {
			order[i] &= 1<<idxBits - 1
		}
	} else {
		for i := range order {
			order[i] = uint64(i)
		}
		slices.SortFunc(order, func(a, b uint64) int { return cmp.Compare(pos[a], pos[b]) })
	}
	all := string(buf)
	snap.pos = make([]uint64, n)
	snap.keys = make([]string, n)
	for j, i := range order {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		snap.pos[j], snap.keys[j] = pos[i], all[start:ends[i]]
	}

	p.mu.Lock()
	p.installSnap(snap)
	p.mu.Unlock()
	return snap
}

// installSnap makes snap p's newest snapshot unless p has a newer one: a
// snapshot taken earlier than another may be sorted later. p.mu must be
// held.
func (p *partition) installSnap(snap *fetchSnap) {
	if p.snap == nil || p.snap.seq < snap.seq {
		p.snap = snap
	}
}

// useSnapshot records that partition pi's snapshot was just used, and
// drops the least recently used snapshots beyond maxSnapshots.
func (s *Store) useSnapshot(pi int) {
	s.snapMu.Lock()
	s.snapParts = slices.DeleteFunc(s.snapParts, func(q int) bool { return q == pi })
	s.snapParts = append(s.snapParts, pi)
	var drop []int
	if n := len(s.snapParts) - maxSnapshots; n > 0 {
		drop = slices.Clone(s.snapParts[:n])
		s.snapParts = slices.Delete(s.snapParts, 0, n)
	}
	s.snapMu.Unlock()
	for _, q := range drop {
		p := s.parts[q]
		p.mu.Lock()
		p.snap = nil
		p.mu.Unlock()
	}
}

// dropSnapshot forgets snap, which a transfer has read to the end, unless
// a newer snapshot replaced it. Another transfer still reading it takes a
// new one.
func (s *Store) dropSnapshot(pi int, snap *fetchSnap) {
	p := s.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.snap != snap {
		return
	}
	p.snap = nil
	s.snapMu.Lock() // after p.mu; useSnapshot never holds both
	s.snapParts = slices.DeleteFunc(s.snapParts, func(q int) bool { return q == pi })
	s.snapMu.Unlock()
}
