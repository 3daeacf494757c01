package store

import "fmt"

// checkAccounting verifies each partition's bookkeeping against its index.
func checkAccounting(s *Store) error {
	var entries, arena int64
	for pi, p := range s.parts {
		p.mu.Lock()
		var used int64
		var keys, ttls, tombs int
		err := func() error {
			for h, l := range p.index {
				e := p.entryAt(l)
				hd := readHeader(e)
				if got := p.hash(string(keyOf(e, hd))); got != h {
					return fmt.Errorf("partition %d: key %q indexed under the wrong hash", pi, keyOf(e, hd))
				}
			}
			for k, l := range p.spill {
				if string(keyOf(p.entryAt(l), readHeader(p.entryAt(l)))) != k {
					return fmt.Errorf("partition %d: spilled key %q points at another entry", pi, k)
				}
				if il, ok := p.index[p.hash(k)]; ok && il == l {
					return fmt.Errorf("partition %d: key %q both indexed and spilled", pi, k)
				}
			}
			p.forEach(func(_ string, _ loc, h header) bool {
				used += int64(h.size())
				switch {
				case h.tombstone():
					tombs++
				case h.deadline != 0:
					ttls++
					fallthrough
				default:
					keys++
				}
				return true
			})
			if err := checkChunks(p); err != nil {
				return fmt.Errorf("partition %d: %v", pi, err)
			}
			switch {
			case used != p.used:
				return fmt.Errorf("partition %d: used %d; entries add up to %d", pi, p.used, used)
			case keys != p.keys || ttls != p.ttls || tombs != p.tombs:
				return fmt.Errorf("partition %d: counts %d keys (%d with a TTL), %d tombstones; index holds %d (%d), %d",
					pi, p.keys, p.ttls, p.tombs, keys, ttls, tombs)
			case p.dead < 0:
				return fmt.Errorf("partition %d: dead bytes %d", pi, p.dead)
			}
			return nil
		}()
		entries += int64(keys + tombs)
		arena += p.arenaBytes()
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if got := s.entries.Load(); got != entries {
		return fmt.Errorf("store counts %d entries; partitions hold %d", got, entries)
	}
	if got := s.alloc.inUse.Load(); got != arena {
		return fmt.Errorf("allocator counts %d bytes in use; partitions hold %d", got, arena)
	}
	return nil
}

// checkChunks walks every chunk's entries up to its fill and checks the
// chunk's dead bytes, and the partition's, against what the index still
// points at.
func checkChunks(p *partition) error {
	if len(p.use) != len(p.chunks) {
		return fmt.Errorf("%d chunks, %d chunk records", len(p.chunks), len(p.use))
	}
	var dead int64
	for i, c := range p.chunks {
		u := p.use[i]
		if c == nil {
			if u != (chunkUse{}) {
				return fmt.Errorf("released chunk %d has record %+v", i, u)
			}
			continue
		}
		if u.fill > len(c) {
			return fmt.Errorf("chunk %d of %d bytes filled to %d", i, len(c), u.fill)
		}
		if i == p.cur && u.fill != p.off {
			return fmt.Errorf("chunk %d being appended to: fill %d, append offset %d", i, u.fill, p.off)
		}
		live := 0
		off := 0
		for off < u.fill {
			h := readHeader(c[off:])
			if h.size() <= hdrSize-1 || off+h.size() > len(c) {
				return fmt.Errorf("chunk %d: entry at %d of size %d does not fit", i, off, h.size())
			}
			l := makeLoc(i, off)
			il, ok := p.lookup(string(keyOf(c[off:], h)))
			indexed := ok && il == l
			if indexed {
				live += h.size()
			}
			if dead := h.flags&flagDead != 0; dead == indexed {
				return fmt.Errorf("chunk %d: entry at %d (key %q) indexed %v, marked dead %v", i, off, keyOf(c[off:], h), indexed, dead)
			}
			off += h.size()
		}
		if off != u.fill {
			return fmt.Errorf("chunk %d: entries end at %d, fill %d", i, off, u.fill)
		}
		if u.dead != u.fill-live {
			return fmt.Errorf("chunk %d: %d dead bytes counted, %d of %d not indexed", i, u.dead, u.fill-live, u.fill)
		}
		dead += int64(u.dead)
	}
	if dead != p.dead {
		return fmt.Errorf("dead %d; chunks add up to %d", p.dead, dead)
	}
	return checkCleaning(p)
}

// checkCleaning checks the chunk being cleaned: held, not the one appended
// to, and walked up to an entry's start, every entry before it dead.
func checkCleaning(p *partition) error {
	if !p.cleaning || p.victim < 0 {
		return nil
	}
	v := p.victim
	if v >= len(p.chunks) || p.chunks[v] == nil || v == p.cur {
		return fmt.Errorf("cleaning chunk %d: released, or the one appended to (%d)", v, p.cur)
	}
	c := p.chunks[v]
	off := 0
	for off < p.victimOff {
		h := readHeader(c[off:])
		if il, ok := p.lookup(string(keyOf(c[off:], h))); ok && il == makeLoc(v, off) {
			return fmt.Errorf("cleaning chunk %d at %d: the entry at %d, behind it, is still indexed", v, p.victimOff, off)
		}
		off += h.size()
	}
	if off != p.victimOff || off > p.use[v].fill {
		return fmt.Errorf("cleaning chunk %d at %d: not an entry's start (fill %d)", v, p.victimOff, p.use[v].fill)
	}
	return nil
}
