package store

import (
	"hash/maphash"
	stdbits "math/bits"
	"sync"
	"sync/atomic"

	"github.com/cloakroom/cloakroom/protocol"
)

// partition holds the entries of one partition: a pointer-free index from
// key hash to location, and the arena chunks the entries live in. Entries
// are appended; space freed by overwrites and deletes is reclaimed a chunk
// at a time (clean.go), or by compaction, which copies every live entry
// into fresh chunks.
type partition struct {
	alloc    *allocator
	seed     maphash.Seed
	hashMask uint64        // all ones, so the full hash indexes
	entries  *atomic.Int64 // the store's count of indexed entries, all partitions

	mu     sync.Mutex     // guards everything below
	index  map[uint64]loc // key hash → entry
	spill  map[string]loc // keys whose hash another key already holds in index
	chunks [][]byte       // arena; nil where a chunk was released
	use    []chunkUse     // for each of chunks, its fill and dead bytes
	cur    int            // chunk being appended to, -1 if none
	off    int            // append offset in chunks[cur]
	used   int64          // bytes of entries still referenced
	dead   int64          // bytes of entries (or value room) no longer referenced
	keys   int            // live (non-tombstone) entries, including expired ones not yet dropped
	ttls   int            // of keys, those with a deadline (Redis's "expires")
	tombs  int            // tombstones
	maxVer uint64         // highest version written or applied

	// Chunk cleaning (clean.go): whether writes are cleaning, the chunk
	// being cleaned (-1: none) and the offset its next step starts at.
	cleaning  bool
	victim    int
	victimOff int

	snap    *fetchSnap // newest transfer snapshot (fetch.go), nil if none
	snapSeq uint64     // snapshots taken
}

// hash returns key's index hash. Tests narrow hashMask to force collisions.
func (p *partition) hash(key string) uint64 { return maphash.String(p.seed, key) & p.hashMask }

func newPartition(a *allocator, seed maphash.Seed, entries *atomic.Int64) *partition {
	return &partition{alloc: a, seed: seed, hashMask: ^uint64(0), entries: entries, index: make(map[uint64]loc), cur: -1}
}

// entryAt returns the bytes of the entry at l, from its header on.
func (p *partition) entryAt(l loc) []byte { return p.chunks[l.chunk()][l.off():] }

func keyOf(e []byte, h header) []byte   { return e[hdrSize : hdrSize+h.keyLen] }
func valueOf(e []byte, h header) []byte { return e[hdrSize+h.keyLen : hdrSize+h.keyLen+h.valLen] }

// lookup finds key's entry, expired or not.
func (p *partition) lookup(key string) (loc, bool) {
	h := p.hash(key)
	if l, ok := p.index[h]; ok {
		e := p.entryAt(l)
		if string(keyOf(e, readHeader(e))) == key {
			return l, true
		}
	}
	if len(p.spill) > 0 {
		l, ok := p.spill[key]
		return l, ok
	}
	return 0, false
}

// setLoc points key at l, in the index or, on a hash collision, in spill.
func (p *partition) setLoc(key string, l loc) {
	h := p.hash(key)
	if old, ok := p.index[h]; ok {
		e := p.entryAt(old)
		if string(keyOf(e, readHeader(e))) != key {
			if p.spill == nil {
				p.spill = make(map[string]loc)
			}
			p.spill[key] = l
			return
		}
	}
	p.index[h] = l
}

// unlink removes key from the index and accounts its entry as dead.
func (p *partition) unlink(key string, l loc) {
	h := p.hash(key)
	if cur, ok := p.index[h]; ok && cur == l {
		delete(p.index, h)
	} else {
		delete(p.spill, key)
	}
	p.drop(l)
	p.entries.Add(-1)
}

// relink points key, whose entry is at old, at its new entry at l, and
// accounts the old one as dead: an unlink and a setLoc with one hash of
// the key and one probe of the index, and no change to the store's count
// of entries.
func (p *partition) relink(key string, old, l loc) {
	h := p.hash(key)
	if cur, ok := p.index[h]; ok && cur == old {
		p.index[h] = l
	} else {
		p.spill[key] = l
	}
	p.drop(old)
}

// drop marks the entry at l dead, moves its bytes from used to dead and
// takes it out of the key, TTL and tombstone counts.
func (p *partition) drop(l loc) {
	e := p.entryAt(l)
	hd := readHeader(e)
	markDead(e)
	p.used -= int64(hd.size())
	p.dead += int64(hd.size())
	p.use[l.chunk()].dead += hd.size()
	p.account(hd, -1)
}

// maxSlack is the value room an entry may leave unused, beyond the size of
// its value, and still be written in place.
const maxSlack = 64

// write stores an entry for key, in place when the existing entry at old
// (if ok) has room and would not waste more than the value's size (or
// maxSlack) of it, else appended, so that compaction can take the room of
// a shrunk value or a deleted one back. When there is no memory to append,
// an entry that fits is written in place all the same, so deletes never
// fail.
func (p *partition) write(key string, old loc, ok bool, h header, value []byte) error {
	if len(key) > maxKeyLen || int64(len(value)) > maxValueLen {
		// The header's length fields would truncate: refuse, never corrupt.
		return protocol.Errorf(protocol.CodeTooLarge, "key of %d bytes, value of %d: the store holds keys up to %d bytes and values up to %d",
			len(key), len(value), maxKeyLen, int64(maxValueLen))
	}
	h.keyLen = len(key)
	h.valLen = len(value)
	if h.version > p.maxVer {
		p.maxVer = h.version
	}
	inPlace := func() {
		e := p.entryAt(old)
		oh := readHeader(e)
		h.valCap = oh.valCap
		p.account(oh, -1)
		p.account(h, +1)
		h.write(e)
		copy(e[hdrSize+h.keyLen:], value)
	}
	fits := false
	if ok {
		valCap := readHeader(p.entryAt(old)).valCap
		fits = valCap >= h.valLen
		if fits && valCap-h.valLen <= max(h.valLen, maxSlack) {
			inPlace()
			return nil
		}
	}
	h.valCap = h.valLen
	l, err := p.append(h.size())
	if err != nil {
		if fits {
			inPlace()
			return nil
		}
		return err
	}
	e := p.entryAt(l)
	h.write(e)
	copy(e[hdrSize:], key)
	copy(e[hdrSize+h.keyLen:], value)
	if ok {
		p.relink(key, old, l)
	} else {
		p.setLoc(key, l)
		p.entries.Add(1)
	}
	p.used += int64(h.size())
	p.account(h, +1)
	return nil
}

// account adds (sign +1) or removes (-1) h from the key, TTL and tombstone
// counts.
func (p *partition) account(h header, sign int) {
	switch {
	case h.tombstone():
		p.tombs += sign
	case h.deadline != 0:
		p.ttls += sign
		fallthrough
	default:
		p.keys += sign
	}
}

// append reserves n bytes at the end of the arena.
func (p *partition) append(n int) (loc, error) {
	if n > chunkSize {
		b, err := p.alloc.alloc(n)
		if err != nil {
			return 0, err
		}
		i := p.addChunk(b)
		p.use[i].fill = n
		return makeLoc(i, 0), nil
	}
	if p.cur < 0 || p.off+n > len(p.chunks[p.cur]) {
		b, err := p.alloc.alloc(chunkSize)
		if err != nil {
			return 0, err
		}
		p.cur, p.off = p.addChunk(b), 0
	}
	l := makeLoc(p.cur, p.off)
	p.off += n
	p.use[p.cur].fill = p.off
	return l, nil
}

// addChunk puts b in the first slot a released chunk left, or a new one,
// and returns its number.
func (p *partition) addChunk(b []byte) int {
	for i, c := range p.chunks {
		if c == nil {
			p.chunks[i], p.use[i] = b, chunkUse{}
			return i
		}
	}
	p.chunks = append(p.chunks, b)
	p.use = append(p.use, chunkUse{})
	return len(p.chunks) - 1
}

// arenaBytes is the size of every chunk the partition holds.
func (p *partition) arenaBytes() int64 {
	var n int64
	for _, c := range p.chunks {
		n += int64(len(c))
	}
	return n
}

// wantsCleaning reports whether at least half of the arena, and at least
// one chunk's worth, is dead.
func (p *partition) wantsCleaning() bool {
	return p.dead >= chunkSize && p.dead >= p.used
}

// appendTrimmed appends a copy of entry e, whose header is h, with its
// value room trimmed to the value, and returns where and its size.
func (p *partition) appendTrimmed(e []byte, h header) (loc, int, error) {
	src := e[:hdrSize+h.keyLen+h.valLen]
	h.valCap = h.valLen
	nl, err := p.append(h.size())
	if err != nil {
		return 0, 0, err
	}
	dst := p.entryAt(nl)
	copy(dst, src)
	h.write(dst)
	return nl, h.size(), nil
}

// compact copies every referenced entry into fresh chunks, trimming value
// room to the value, and releases the old chunks. On an allocation failure
// the partition is left as it was.
func (p *partition) compact() error {
	old, oldUse := p.chunks, p.use
	oldCur, oldOff := p.cur, p.off
	p.chunks, p.use, p.cur, p.off = nil, nil, -1, 0
	moves := make(map[uint64]loc, len(p.index))
	var spill map[string]loc
	var used int64
	move := func(l loc) (loc, error) {
		e := old[l.chunk()][l.off():]
		nl, size, err := p.appendTrimmed(e, readHeader(e))
		used += int64(size)
		return nl, err
	}
	fail := func(err error) error {
		for _, c := range p.chunks {
			p.alloc.release(c)
		}
		p.chunks, p.use, p.cur, p.off = old, oldUse, oldCur, oldOff
		return err
	}
	for h, l := range p.index {
		nl, err := move(l)
		if err != nil {
			return fail(err)
		}
		moves[h] = nl
	}
	for k, l := range p.spill {
		nl, err := move(l)
		if err != nil {
			return fail(err)
		}
		if spill == nil {
			spill = make(map[string]loc, len(p.spill))
		}
		spill[k] = nl
	}
	for _, c := range old {
		if c != nil {
			p.alloc.release(c)
		}
	}
	p.index, p.spill, p.used, p.dead, p.cleaning = moves, spill, used, 0, false
	return nil
}

// forEach calls fn for every entry until fn returns false. fn must not
// change the partition except through unlink of the entry it was given.
func (p *partition) forEach(fn func(key string, l loc, h header) bool) {
	for _, l := range p.index {
		e := p.entryAt(l)
		h := readHeader(e)
		if !fn(string(keyOf(e, h)), l, h) {
			return
		}
	}
	for k, l := range p.spill {
		if !fn(k, l, readHeader(p.entryAt(l))) {
			return
		}
	}
}

// locsInArenaOrder returns the location of every indexed entry in arena
// order: reading the entries in that order touches memory sequentially
// rather than at random, as iterating the index does. It radix-sorts on
// chunk and offset (8 bits a pass), linear in the entries.
func (p *partition) locsInArenaOrder() []loc {
	a := make([]loc, 0, len(p.index)+len(p.spill))
	for _, l := range p.index {
		a = append(a, l)
	}
	for _, l := range p.spill {
		a = append(a, l)
	}
	key := func(l loc) uint64 { return uint64(l.chunk())<<offBits | uint64(l.off()) }
	bits := offBits + stdbits.Len(uint(len(p.chunks)))
	b := make([]loc, len(a))
	for shift := 0; shift < bits; shift += 8 {
		var at [257]int
		for _, l := range a {
			at[key(l)>>shift&0xff+1]++
		}
		for d := 1; d < len(at); d++ {
			at[d] += at[d-1]
		}
		for _, l := range a {
			d := key(l) >> shift & 0xff
			b[at[d]] = l
			at[d]++
		}
		a, b = b, a
	}
	return a
}

// offBits holds any entry's offset in its chunk: a standard chunk's, or 0
// in a chunk of its own.
const offBits = 16

const _ = uint(1<<offBits - chunkSize) // chunkSize must fit in offBits

// reset releases every chunk and forgets every entry.
func (p *partition) reset() {
	for _, c := range p.chunks {
		if c != nil {
			p.alloc.release(c)
		}
	}
	p.entries.Add(-int64(p.keys + p.tombs))
	p.index, p.spill, p.chunks, p.use, p.snap = make(map[uint64]loc), nil, nil, nil, nil
	p.cur, p.off, p.used, p.dead, p.keys, p.ttls, p.tombs, p.cleaning = -1, 0, 0, 0, 0, 0, 0, false
}
