package store

import "hash/maphash"

// Overwrites and deletes leave dead entries in a partition's chunks. The
// write path takes their room back a little at a time: a partition whose
// dead bytes reach its used ones (and a chunk's worth) starts cleaning, and
// each write to it then examines up to cleanBatch entries of one chunk (the
// one with the most dead bytes), moving the live ones to the end of
// the arena; once past its last entry it releases the chunk and picks the
// next, until the dead bytes are down to a quarter of the used ones. A dead
// entry carries flagDead, so examining one is a header read: only a live
// one's key is hashed to find it in the index (1-5% less time a renewal
// or a logout: BenchmarkPartition_reclaim, BenchmarkStore_logout).
//
// So a write does a bounded amount of this work whatever the partition's
// size. Compacting the whole partition at once, as eviction still does
// (partition.compact), holds its lock, and the event loop that wrote, for
// time that grows with the partition: in BenchmarkPartition_reclaim, at
// 3,700 sessions (a partition of a million-session node), the slowest
// write took 8.2-8.4 ms when writes compacted, 0.3-0.6 ms now; at 37,000,
// 91-105 ms against 1.0-1.3 ms (docs/benchmarks.md, "Dead room back a
// chunk at a time").

// cleanUntil ends cleaning once dead <= used/cleanUntil.
const cleanUntil = 4

// cleanBatch bounds the entries one write examines while cleaning.
const cleanBatch = 64

// minCleanGain is the least dead room a chunk must hold to be cleaned: a
// chunk that is nearly all live costs a whole copy for little.
const minCleanGain = chunkSize / 8

// chunkUse is what a partition keeps of each of its chunks.
type chunkUse struct {
	fill int // bytes of entries appended to it, from offset 0
	dead int // bytes of those entries no longer referenced
}

// reclaim runs one cleaning step if the partition is cleaning or has
// reason to start. It reports whether it released a chunk.
func (p *partition) reclaim() bool {
	if !p.cleaning {
		if !p.wantsCleaning() {
			return false
		}
		p.cleaning, p.victim = true, -1
	}
	if p.victim < 0 {
		v := -1
		if p.dead*cleanUntil > p.used {
			v = p.pickVictim()
		}
		if v < 0 {
			p.cleaning = false
			return false
		}
		p.victim, p.victimOff = v, 0
	}
	released, err := p.cleanStep(cleanBatch)
	if err != nil {
		p.cleaning = false
		return false
	}
	return released
}

// pickVictim returns the chunk, other than the one being appended to,
// with the most dead bytes (of two with as many, the one with the larger
// unused end), or -1 if none has minCleanGain dead. Only dead bytes count
// towards the choice: releasing a chunk then always lowers p.dead by at
// least minCleanGain, so cleaning ends. Counting unused ends too would let
// it go on for ever, each release of a chunk holding one large entry
// leaving the same unused end behind in the chunk the entry moved to.
func (p *partition) pickVictim() int {
	best, bestDead, bestEnd := -1, minCleanGain-1, 0
	for i, c := range p.chunks {
		if c == nil || i == p.cur {
			continue
		}
		d, end := p.use[i].dead, len(c)-p.use[i].fill
		if d > bestDead || d == bestDead && best >= 0 && end > bestEnd {
			best, bestDead, bestEnd = i, d, end
		}
	}
	return best
}

// cleanStep examines up to n entries of p.victim from p.victimOff on,
// moving the live ones to the end of the arena with their value room
// trimmed to the value. Past the last entry it releases the chunk, which
// is dead through and through by then, and reports true. If an allocation
// fails it stops there: the entries moved so far stay moved.
func (p *partition) cleanStep(n int) (bool, error) {
	v := p.victim
	c := p.chunks[v]
	for ; n > 0 && p.victimOff < p.use[v].fill; n-- {
		e := c[p.victimOff:]
		h := readHeader(e)
		if h.flags&flagDead != 0 {
			p.victimOff += h.size() // a header read, no hash or index probe
			continue
		}
		if err := p.moveIfIndexed(makeLoc(v, p.victimOff), e, h); err != nil {
			return false, err
		}
		p.victimOff += h.size()
	}
	if p.victimOff < p.use[v].fill {
		return false, nil
	}
	p.dead -= int64(p.use[v].dead)
	p.alloc.release(c)
	p.chunks[v], p.use[v] = nil, chunkUse{}
	p.victim = -1
	return true, nil
}

// moveIfIndexed copies the entry at l (its bytes e, its header h) to the
// end of the arena and points the index at the copy, if the index points
// at l; the old copy becomes dead.
func (p *partition) moveIfIndexed(l loc, e []byte, h header) error {
	key := keyOf(e, h)
	hash := maphash.Bytes(p.seed, key) & p.hashMask
	inIndex := false
	if cur, ok := p.index[hash]; ok && cur == l {
		inIndex = true
	} else if cur, ok := p.spill[string(key)]; !ok || cur != l {
		// Dead already. cleanStep passes over entries marked dead, and
		// every entry the index stops pointing at is marked, so this is
		// a safety net that the tests never reach.
		return nil
	}
	nl, size, err := p.appendTrimmed(e, h)
	if err != nil {
		return err
	}
	if inIndex {
		p.index[hash] = nl
	} else {
		p.spill[string(key)] = nl
	}
	p.drop(l) // the old copy: marked and counted dead, out of the counts
	p.used += int64(size)
	p.account(h, +1)
	return nil
}
