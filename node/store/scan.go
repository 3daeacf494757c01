package store

import (
	"slices"

	"github.com/cloakroom/cloakroom/protocol"
)

// DefaultScanCount is how many keys a scan returns when asked for none.
const DefaultScanCount = 10

// maxScanBytes bounds the keys one scan returns by their encoded size, so
// that its reply fits in a frame whatever the limits (a frame has 64 KiB
// beyond its value, protocol.Limits.MaxFrame): a page cut short by it
// ends with a cursor, as one cut short by its count does.
const maxScanBytes = 48 << 10

// scanPos is a key's position in scan order within its partition: a hash
// that is the same on every node and every run, so a cursor stays valid
// across restarts and ownership changes. Positions start at 1; 0 is the
// start of a partition. Positions fit in ScanPosBits bits, so a cluster-wide
// cursor can carry the partition in the bits above.
func scanPos(key string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * fnvPrime64
	}
	return h>>(64-ScanPosBits+1) + 1
}

// scanPosBytes is scanPos of a key held as bytes.
func scanPosBytes(key []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range key {
		h = (h ^ uint64(c)) * fnvPrime64
	}
	return h>>(64-ScanPosBits+1) + 1
}

// FNV-1a, 64 bits (as hash/fnv's New64a, without its allocation).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// ScanPosBits is the width of a scan position; positions are in
// [1, 1<<(ScanPosBits-1)].
const ScanPosBits = 47

// scan lists live keys of one partition in scan order after req.Cursor
// that match req.Pattern. All keys sharing a position are returned
// together, so none is skipped.
//
// Its work is bounded, as Redis bounds a SCAN's: it matches at most
// ScanExamine(count) keys (and all those sharing the last one's position),
// a key whose match is costly counting as several, and returns a cursor
// after the last it examined even if none matched; resp.N is the keys
// examined, so counted.
// The partition's lock is held only to copy the keys after the cursor;
// matching, which a pattern of 1 KiB against keys of 1 KiB makes cost
// milliseconds a key, runs without it. (A SCAN used to match every key of
// the partition under its lock: 5,000 such keys held every GET of the
// partition, and the listener behind it, for 7.8 s.)
func (s *Store) scan(req *protocol.Request, resp *protocol.Response) error {
	if err := s.checkPartition(req.Partition); err != nil {
		return err
	}
	count := int(req.Count)
	if count <= 0 {
		count = DefaultScanCount
	}
	type item struct {
		pos uint64
		key string
	}
	var items []item
	p := s.parts[req.Partition]
	p.mu.Lock()
	now := s.now()
	p.forEach(func(key string, _ loc, h header) bool {
		if h.tombstone() || h.expired(now) {
			return true
		}
		if pos := scanPos(key); pos > req.Cursor {
			items = append(items, item{pos, key})
		}
		return true
	})
	p.mu.Unlock()
	slices.SortFunc(items, func(a, b item) int {
		if a.pos != b.pos {
			if a.pos < b.pos {
				return -1
			}
			return 1
		}
		if a.key < b.key {
			return -1
		}
		return 1
	})
	budget := ScanExamine(count)
	var keys []string
	size, i := 0, 0
	for i < len(items) && len(keys) < count && budget > 0 {
		j := i + 1 // the keys sharing items[i]'s position go together
		for j < len(items) && items[j].pos == items[i].pos {
			j++
		}
		from, grew := len(keys), 0
		for _, it := range items[i:j] {
			match, steps := req.Pattern == "", 0
			if !match {
				match, steps = protocol.MatchGlobCost(req.Pattern, it.key)
			}
			budget -= 1 + steps/matchStepsPerKey
			if match {
				keys = append(keys, it.key)
				grew += len(it.key) + 5 // 5: msgpack's string header, at most
			}
		}
		if from > 0 && size+grew > maxScanBytes {
			keys = keys[:from] // this position's keys come with the next page
			break
		}
		size += grew
		i = j
	}
	resp.Keys = keys
	resp.N = int64(ScanExamine(count) - budget)
	if i < len(items) {
		resp.Cursor = items[i-1].pos
	}
	return nil
}

// ScanExamine is how many keys one scan page asking for count keys may
// match against its pattern: ten times count, as Redis visits up to ten
// times COUNT buckets, and at least 100. A key whose match takes more than
// matchStepsPerKey steps counts as more than one. A RESP SCAN bounds its
// pages together by the same.
func ScanExamine(count int) int { return max(10*count, 100) }

// matchStepsPerKey is the match work (protocol.MatchGlobCost's steps,
// about a nanosecond each) that counts as one more key examined: a
// session key against a prefix pattern takes a few dozen, a costly
// pattern against a long key up to a million. Without it, a page of
// ScanExamine(count) keys could match for count * 10 ms.
const matchStepsPerKey = 1024

func (s *Store) checkPartition(p int32) error {
	if p < 0 || int(p) >= len(s.parts) {
		return protocol.Errorf(protocol.CodeBadRequest, "partition %d out of range [0,%d)", p, len(s.parts))
	}
	return nil
}

// deleteMatch tombstones every live key of one partition matching
// req.Pattern, holding the partition's lock throughout. resp.Keys lists
// the deleted keys.
func (s *Store) deleteMatch(req *protocol.Request, resp *protocol.Response) error {
	if err := s.checkPartition(req.Partition); err != nil {
		return err
	}
	if req.Pattern == "" {
		return protocol.Errorf(protocol.CodeBadRequest, "deletematch needs a pattern")
	}
	p := s.parts[req.Partition]
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []string
	now := s.now()
	p.forEach(func(key string, l loc, h header) bool {
		// A tombstone keeping the request's token is a key an earlier
		// attempt of this call deleted: it counts again (del).
		if h.expired(now) || h.tombstone() && !keeps(p, l, h, req.Value) {
			return true
		}
		if protocol.MatchGlob(req.Pattern, key) {
			keys = append(keys, key)
		}
		return true
	})
	for _, k := range keys {
		n, err := s.del(p, k, now, req.Value)
		if err != nil {
			return err
		}
		resp.N += int64(n)
		resp.Keys = append(resp.Keys, k)
	}
	return nil
}
