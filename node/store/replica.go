package store

import (
	"encoding/binary"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// This file is the store's side of replication and partition transfer.
// Entries travel with their remaining TTL rather than a deadline, so that
// nodes whose clocks differ still expire a session at the same moment.

// PartitionOf returns the partition of key.
func (s *Store) PartitionOf(key string) int { return ring.Partition(key, len(s.parts)) }

// Entry returns key's current entry, a tombstone included, as it should be
// replicated. It reports false if there is none or it has expired.
func (s *Store) Entry(key string) (protocol.Entry, bool) {
	p := s.partition(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.entryLocked(p, key)
}

// entryLocked is Entry for a key of p, whose lock the caller holds.
func (s *Store) entryLocked(p *partition, key string) (protocol.Entry, bool) {
	l, ok := p.lookup(key)
	if !ok {
		return protocol.Entry{}, false
	}
	e := p.entryAt(l)
	h := readHeader(e)
	now := s.now()
	if h.expired(now) {
		return protocol.Entry{}, false
	}
	return s.toEntry(key, e, h, now), true
}

func (s *Store) toEntry(key string, e []byte, h header, now int64) protocol.Entry {
	x := protocol.Entry{Key: key, TTL: s.remaining(h, now), Version: h.version, Tombstone: h.tombstone()}
	x.Value = slices.Clone(valueOf(e, h)) // a tombstone's: its delete token, if it has one
	if x.Value == nil && !x.Tombstone {
		x.Value = []byte{}
	}
	return x
}

// Apply stores x unless the store already holds a version of its key at
// least as new. It reports whether x was applied. An entry whose TTL has
// run out is not stored.
func (s *Store) Apply(x *protocol.Entry) (bool, error) {
	if err := s.reserveBytes(applyNeed(x)); err != nil {
		return false, err
	}
	p := s.partition(x.Key)
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.applyLocked(p, x, s.now())
}

// ApplyBatch applies entries in order as Apply does, taking a partition's
// lock once for each run of up to fetchLockRun consecutive entries of that
// partition. It returns how many entries were applied, and stops at the
// first error.
func (s *Store) ApplyBatch(entries []protocol.Entry) (int, error) {
	applied, pi := 0, -1
	for i := 0; i < len(entries); {
		if pi < 0 {
			pi = s.PartitionOf(entries[i].Key)
		}
		j, next, need := i+1, -1, applyNeed(&entries[i])
		for ; j < len(entries) && j-i < fetchLockRun; j++ {
			if q := s.PartitionOf(entries[j].Key); q != pi {
				next = q
				break
			}
			need += applyNeed(&entries[j])
		}
		if err := s.reserveBytes(need); err != nil {
			return applied, err
		}
		p := s.parts[pi]
		p.mu.Lock()
		now := s.now()
		for k := i; k < j; k++ {
			ok, err := s.applyLocked(p, &entries[k], now)
			if err != nil {
				p.mu.Unlock()
				return applied, err
			}
			if ok {
				applied++
			}
		}
		p.mu.Unlock()
		i, pi = j, next
	}
	return applied, nil
}

// checkEntry refuses an entry no store could have sent: a version past
// protocol.MaxVersion would let the partition's next version wrap around
// below the ones before it (later writes would then lose to it
// everywhere), and a TTL below -1 (none) or past protocol.MaxTTL would
// overflow the clock.
func checkEntry(x *protocol.Entry) error {
	switch {
	case x.Key == "":
		return protocol.Errorf(protocol.CodeBadRequest, "entry with an empty key")
	case x.Version == 0 || x.Version > protocol.MaxVersion:
		return protocol.Errorf(protocol.CodeBadRequest, "entry %q: version %d out of range [1,%d]", x.Key, x.Version, protocol.MaxVersion)
	case x.TTL < -1 || x.TTL > protocol.MaxTTL:
		return protocol.Errorf(protocol.CodeBadRequest, "entry %q: ttl %dms out of range", x.Key, x.TTL)
	}
	return nil
}

// applyNeed is the memory an Apply of x may take.
func applyNeed(x *protocol.Entry) int64 {
	if x.TTL == 0 || x.Tombstone {
		return 0 // not stored, or written in place of the entry it deletes
	}
	return int64(hdrSize + len(x.Key) + len(x.Value))
}

// storedValue is the value to store for x: a live entry's value, or a
// tombstone's delete token (nothing else: a tombstone holds no value).
func storedValue(x *protocol.Entry) []byte {
	switch {
	case !x.Tombstone:
		return x.Value
	case len(x.Value) == protocol.DeleteTokenLen:
		return x.Value
	}
	return nil
}

// applyLocked is Apply under p's lock, p being x's partition.
func (s *Store) applyLocked(p *partition, x *protocol.Entry, now int64) (bool, error) {
	if err := checkEntry(x); err != nil {
		return false, err
	}
	if x.TTL == 0 {
		return false, nil
	}
	if x.Version > p.maxVer {
		p.maxVer = x.Version
	}
	l, ok := p.lookup(x.Key)
	if ok {
		h := readHeader(p.entryAt(l))
		if h.version >= x.Version && !h.expired(now) {
			return false, nil
		}
	}
	nh := header{version: x.Version}
	if x.TTL > 0 {
		nh.deadline = now + x.TTL
	}
	if x.Tombstone {
		nh.flags = flagTombstone
		if nh.deadline == 0 {
			nh.deadline = now + s.cfg.TombstoneTTL.Milliseconds()
		}
	}
	value := storedValue(x)
	err := p.write(x.Key, l, ok, nh, value)
	if err != nil && x.Tombstone && value != nil {
		err = p.write(x.Key, l, ok, nh, nil) // no room for the token: as del
	}
	if err != nil {
		if protocol.CodeOf(err) == protocol.CodeTooLarge {
			return false, err
		}
		return false, protocol.Errorf(protocol.CodeOutOfMemory, "apply: %v", err)
	}
	s.reclaim(p)
	return true, nil
}

// PartitionKeys counts the live keys of partition pi, and of them those
// with a TTL. Both include expired keys not yet dropped.
func (s *Store) PartitionKeys(pi int) (keys, ttls int) {
	p := s.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys, p.ttls
}

// DropPartition forgets every entry of partition pi, for a node that no
// longer holds it.
func (s *Store) DropPartition(pi int) {
	p := s.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
}

// Digest summarises partition pi for anti-entropy: a hash over every
// unexpired entry's key, version and kind (order-independent), and the
// number of entries. Two holders with the same entries have the same digest.
func (s *Store) Digest(pi int) (sum uint64, n int) {
	p := s.parts[pi]
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	var buf []byte
	for _, l := range p.locsInArenaOrder() {
		e := p.entryAt(l)
		h := readHeader(e)
		if h.expired(now) {
			continue
		}
		buf = append(buf[:0], keyOf(e, h)...)
		buf = binary.LittleEndian.AppendUint64(buf, h.version)
		buf = append(buf, h.flags&flagTombstone)
		sum ^= xxhash.Sum64(buf)
		n++
	}
	return sum, n
}

// Revert undoes a write the cluster did not acknowledge: if key's entry
// still has version (nothing newer came since), it is put back to prev, or
// removed if there was none (had false). It reports whether it reverted.
func (s *Store) Revert(key string, version uint64, prev protocol.Entry, had bool) bool {
	p := s.partition(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.lookup(key)
	if !ok || readHeader(p.entryAt(l)).version != version {
		return false
	}
	if !had {
		p.unlink(key, l)
		s.reclaim(p)
		return true
	}
	now := s.now()
	h := header{version: prev.Version}
	if prev.TTL > 0 {
		h.deadline = now + prev.TTL
	}
	value := storedValue(&prev)
	if prev.Tombstone {
		h.flags = flagTombstone
		if h.deadline == 0 {
			h.deadline = now + s.cfg.TombstoneTTL.Milliseconds()
		}
	}
	if err := p.write(key, l, true, h, value); err != nil {
		p.unlink(key, l) // no room to put it back: better absent than unacknowledged
	}
	s.reclaim(p)
	return true
}
