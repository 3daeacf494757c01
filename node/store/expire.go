package store

import (
	"context"
	"math/rand/v2"
	"time"
)

// Active expiry follows Redis: sample a few entries of a partition, drop the
// expired ones, and sample again while more than a quarter were expired.
const (
	expireSample   = 20
	expireRepeatAt = expireSample / 4
)

// RunExpiry drops expired entries and tombstones in the background until ctx
// is done: every interval it walks partitions round-robin for at most a
// quarter of the interval. Lazy expiry on read covers what it has not reached.
// It also gives the pages of free arena chunks beyond the few kept back to
// the kernel (allocator.giveBack), so that writes never wait on it.
func (s *Store) RunExpiry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			next = s.ExpireCycle(next, interval/4)
			s.alloc.giveBack()
		}
	}
}

// expirePartitionsPerCycle is how many partitions one expiry cycle visits:
// with the default 100 ms interval, 271 partitions are each sampled about
// every 1.7 s, and a partition found mostly expired is sampled again at
// once, so the sampler keeps up with session churn without scanning.
const expirePartitionsPerCycle = 16

// ExpireCycle runs active expiry over up to expirePartitionsPerCycle
// partitions starting at start, or until budget is spent. It returns the
// partition to start from next time.
func (s *Store) ExpireCycle(start int, budget time.Duration) int {
	deadline := time.Now().Add(budget)
	n := min(expirePartitionsPerCycle, len(s.parts))
	for i := range n {
		s.expirePartition(s.parts[(start+i)%len(s.parts)])
		if time.Now().After(deadline) {
			return (start + i + 1) % len(s.parts)
		}
	}
	return (start + n) % len(s.parts)
}

func (s *Store) expirePartition(p *partition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := s.now()
	for round := 0; round < 16; round++ {
		sampled, expired := 0, 0
		p.forEach(func(key string, l loc, h header) bool {
			sampled++
			if h.expired(now) {
				p.unlink(key, l)
				expired++
			}
			return sampled < expireSample
		})
		s.expirations.Add(int64(expired))
		if expired <= expireRepeatAt {
			break
		}
	}
	s.reclaim(p)
}

// evictSample is how many entries eviction looks at to pick the one nearest
// expiry, and evictPartitions how many partitions it compares.
const (
	evictSample     = 16
	evictPartitions = 5
)

// evict frees memory until need more bytes fit under MaxMemory, evicting the
// entries nearest expiry (sampled, as Redis's volatile-ttl): it picks the
// partition whose sampled entries expire soonest, evicts from it the soonest
// of repeated samples until a chunk's worth is dead, and compacts it. It
// reports whether the write now fits.
func (s *Store) evict(need int64) bool {
	fits := func() bool { return s.usedMemory()+need <= s.cfg.MaxMemory }
	for round := 0; round < 1024 && !fits(); round++ {
		p := s.pickVictim()
		if p == nil {
			break
		}
		p.mu.Lock()
		for p.dead < chunkSize && p.keys > 0 {
			key, l, ok := s.nearestExpiry(p)
			if !ok {
				break
			}
			p.unlink(key, l)
			s.evictions.Add(1)
		}
		if p.dead > 0 && p.compact() == nil {
			s.compactions.Add(1)
		}
		p.mu.Unlock()
	}
	return fits()
}

// pickVictim samples a few non-empty partitions and returns the one whose
// sampled entries expire soonest, or nil if every sampled partition is empty.
func (s *Store) pickVictim() *partition {
	var best *partition
	bestD := int64(-1)
	for try := 0; try < evictPartitions*4 && try < len(s.parts)*4; try++ {
		p := s.parts[rand.IntN(len(s.parts))]
		p.mu.Lock()
		_, l, ok := s.nearestExpiry(p)
		var d int64
		if ok {
			d = evictRank(readHeader(p.entryAt(l)))
		}
		p.mu.Unlock()
		if !ok {
			continue
		}
		if best == nil || d < bestD {
			best, bestD = p, d
		}
		if try >= evictPartitions && best != nil {
			break
		}
	}
	return best
}

// nearestExpiry samples p and returns the evictable entry expiring soonest.
// Tombstones are never evicted before their time: they keep deletes final.
func (s *Store) nearestExpiry(p *partition) (string, loc, bool) {
	now := s.now()
	var bestKey string
	var bestLoc loc
	bestD, n := int64(-1), 0
	p.forEach(func(key string, l loc, h header) bool {
		if h.tombstone() && !h.expired(now) {
			return true
		}
		n++
		if d := evictRank(h); bestD < 0 || d < bestD {
			bestKey, bestLoc, bestD = key, l, d
		}
		return n < evictSample
	})
	return bestKey, bestLoc, bestD >= 0
}

// evictRank orders entries for eviction: soonest deadline first, entries
// without a deadline last.
func evictRank(h header) int64 {
	if h.deadline == 0 {
		return 1<<63 - 1
	}
	return h.deadline
}
