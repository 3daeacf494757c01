package store

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Config configures a Store. The zero value of each field means its default.
type Config struct {
	// Partitions is the number of partitions. Zero means ring.DefaultPartitions.
	Partitions int
	// MaxMemory bounds the bytes the store holds (arena plus index). When a
	// write would pass it, the entries nearest expiry are evicted; when that
	// cannot make room the write fails with ErrOutOfMemory. Zero: no limit.
	MaxMemory int64
	// TombstoneTTL is how long a delete's tombstone outlives the deleted
	// entry's own deadline (or, for an entry with no TTL, the delete). It
	// keeps late or stale replicas from resurrecting the entry. Zero means
	// DefaultTombstoneTTL.
	TombstoneTTL time.Duration
	// Now is the clock. Nil means time.Now. Deadlines are kept on this
	// clock's monotonic reading, so wall-clock jumps do not move them.
	// With time.Now the store reads only the monotonic clock per request
	// (the wall clock is read once, in New).
	Now func() time.Time
}

// DefaultTombstoneTTL is the default Config.TombstoneTTL.
const DefaultTombstoneTTL = time.Hour

// indexEntryBytes is the memory charged per indexed entry for the index
// itself (a Go map slot of 16 bytes at typical load, plus growth room).
const indexEntryBytes = 32

// Store is a partitioned in-memory key-value store with TTLs, versions and
// tombstones. Its methods are safe for concurrent use; each partition has
// its own lock, held only for in-memory work.
type Store struct {
	cfg      Config
	base     time.Time // clock origin; deadlines are ms since base
	baseWall uint64    // base as wall-clock µs, for versions
	sysClock bool      // cfg.Now is time.Now: now reads only the monotonic clock
	alloc    allocator
	parts    []*partition

	snapMu    sync.Mutex // guards snapParts
	snapParts []int      // partitions holding a transfer snapshot, least recently used first

	entries       atomic.Int64 // indexed entries (keys and tombstones)
	evictions     atomic.Int64
	expirations   atomic.Int64
	refusals      atomic.Int64 // writes refused at MaxMemory
	compactions   atomic.Int64
	chunksCleaned atomic.Int64
}

// New returns an empty Store.
func New(cfg Config) *Store {
	if cfg.Partitions <= 0 {
		cfg.Partitions = ring.DefaultPartitions
	}
	if cfg.TombstoneTTL <= 0 {
		cfg.TombstoneTTL = DefaultTombstoneTTL
	}
	sys := cfg.Now == nil || reflect.ValueOf(cfg.Now).Pointer() == reflect.ValueOf(time.Now).Pointer()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, sysClock: sys}
	// Start the clock an hour back so that every deadline is positive.
	s.base = cfg.Now().Add(-time.Hour)
	s.baseWall = uint64(s.base.UnixMicro())
	seed := maphash.MakeSeed()
	s.parts = make([]*partition, cfg.Partitions)
	for i := range s.parts {
		s.parts[i] = newPartition(&s.alloc, seed, &s.entries)
	}
	return s
}

// Partitions returns the partition count.
func (s *Store) Partitions() int { return len(s.parts) }

// MaxMemory returns the bytes the store may hold (Config.MaxMemory); 0 for
// no limit.
func (s *Store) MaxMemory() int64 { return s.cfg.MaxMemory }

// now returns the store clock in milliseconds. On the system clock it is
// time.Since(base), which reads only the monotonic clock; time.Now would
// read the wall clock too, and Sub would ignore it (base has a monotonic
// reading), so the result is the same at about half the cost.
func (s *Store) now() int64 {
	if s.sysClock {
		return time.Since(s.base).Milliseconds()
	}
	return s.cfg.Now().Sub(s.base).Milliseconds()
}

// nextVersion returns a version above every version p has seen. Versions
// follow the wall clock (in µs, at the store clock's ms resolution) where
// it is ahead, so that an owner that takes over a partition numbers its
// writes after the previous owner's. now is the store clock.
func (s *Store) nextVersion(p *partition, now int64) uint64 {
	v := p.maxVer + 1
	if w := s.baseWall + uint64(now)*1000; w > v {
		v = w
	}
	p.maxVer = v
	return v
}

// Stats is a snapshot of the store's counters.
type Stats struct {
	Keys        int64 // live entries, including expired ones not yet collected
	KeysWithTTL int64 // of Keys, those with a TTL
	Tombstones  int64
	ArenaBytes  int64 // bytes of arena chunks held
	IndexBytes  int64 // estimated bytes of the indexes
	Evictions   int64
	Expirations int64
	Compactions int64 // partitions compacted whole, to make room for a write at MaxMemory
	// ChunksCleaned counts arena chunks whose live entries writes moved
	// away, so that the chunk could be released.
	ChunksCleaned int64
	Refusals      int64 // writes refused at MaxMemory, with nothing left to evict
}

// UsedMemory is the store's memory account: arena plus index.
func (st Stats) UsedMemory() int64 { return st.ArenaBytes + st.IndexBytes }

// Stats returns current counters.
func (s *Store) Stats() Stats {
	var st Stats
	for _, p := range s.parts {
		p.mu.Lock()
		st.Keys += int64(p.keys)
		st.KeysWithTTL += int64(p.ttls)
		st.Tombstones += int64(p.tombs)
		p.mu.Unlock()
	}
	st.ArenaBytes = s.alloc.inUse.Load()
	st.IndexBytes = (st.Keys + st.Tombstones) * indexEntryBytes
	st.Evictions = s.evictions.Load()
	st.Expirations = s.expirations.Load()
	st.Compactions = s.compactions.Load()
	st.ChunksCleaned = s.chunksCleaned.Load()
	st.Refusals = s.refusals.Load()
	return st
}

// usedMemory is the memory account without taking any lock.
func (s *Store) usedMemory() int64 {
	return s.alloc.inUse.Load() + s.entries.Load()*indexEntryBytes
}

// Exec runs one request against the store and fills resp (whose Value
// buffer it reuses). Keys of one request may lie in different partitions;
// each key is handled under its own partition's lock.
func (s *Store) Exec(req *protocol.Request, resp *protocol.Response) {
	resetResponse(resp)
	var err error
	switch req.Op {
	case protocol.OpPing:
	case protocol.OpDelete:
		err = s.deleteKeys(req.Keys, req.Value, resp, nil)
	case protocol.OpExists:
		for _, k := range req.Keys {
			p := s.partition(k)
			p.mu.Lock()
			if _, _, ok := s.live(p, k, s.now()); ok {
				resp.N++
			}
			p.mu.Unlock()
		}
	case protocol.OpScan:
		err = s.scan(req, resp)
	case protocol.OpCount:
		st := s.Stats()
		resp.N, resp.TTLKeys = st.Keys, st.KeysWithTTL
	case protocol.OpFlush:
		s.Flush()
	case protocol.OpDeleteMatch:
		err = s.deleteMatch(req, resp)
	default:
		if !singleKey(req.Op) {
			err = protocol.Errorf(protocol.CodeUnknownOp, "op %s", req.Op)
			break
		}
		err = s.execOne(s.partition(req.Key), req, resp, nil)
	}
	if err != nil {
		resp.SetErr(err)
	}
}

func singleKey(op protocol.Op) bool {
	switch op {
	case protocol.OpGet, protocol.OpSet, protocol.OpTouch, protocol.OpGetAndTouch, protocol.OpGetAndDelete, protocol.OpTTL:
		return true
	}
	return false
}

// ExecOn runs a single-key request whose key the caller has already mapped
// to partition pi (saving the hash); other requests go to Exec.
func (s *Store) ExecOn(pi int, req *protocol.Request, resp *protocol.Response) {
	if !singleKey(req.Op) {
		s.Exec(req, resp)
		return
	}
	resetResponse(resp)
	if err := s.execOne(s.parts[pi], req, resp, nil); err != nil {
		resp.SetErr(err)
	}
}

// execOne runs a single-key request on p, its key's partition, under p's
// lock, after reserving room for a SET. If c is not nil it records the
// key's entries just before and after (ExecTracked).
func (s *Store) execOne(p *partition, req *protocol.Request, resp *protocol.Response, c *Change) error {
	if req.Op == protocol.OpSet {
		if err := s.reserve(req); err != nil {
			return err
		}
	}
	if c != nil {
		return s.execTracked(p, req, resp, c)
	}
	return s.execOn(p, req, resp)
}

func (s *Store) execOn(p *partition, req *protocol.Request, resp *protocol.Response) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.execLocked(p, req, resp)
}

func (s *Store) execTracked(p *partition, req *protocol.Request, resp *protocol.Response, c *Change) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Key = req.Key
	c.Before, c.Had = s.entryLocked(p, req.Key)
	err := s.execLocked(p, req, resp)
	c.After, c.Has = s.entryLocked(p, req.Key)
	return err
}

// deleteKeys deletes keys, each under its partition's lock, with the delete
// token of the call (see del), and adds to resp.N those that existed. A key
// named again counts once, as in Redis: the second time it would find the
// call's own tombstone. If track is not nil (one per key) it records each
// key's entries just before and after (ExecTracked); a key named again
// leaves its Change empty.
func (s *Store) deleteKeys(keys []string, token []byte, resp *protocol.Response, track []Change) error {
	var err error
	var seen map[string]bool // for long lists; short ones are searched
	if len(keys) > 8 {
		seen = make(map[string]bool, len(keys))
	}
	for i, k := range keys {
		if seen != nil && seen[k] || seen == nil && slices.Contains(keys[:i], k) {
			continue
		}
		if seen != nil {
			seen[k] = true
		}
		p := s.partition(k)
		p.mu.Lock()
		if track != nil {
			track[i].Key = k
			track[i].Before, track[i].Had = s.entryLocked(p, k)
		}
		n, derr := s.del(p, k, s.now(), token)
		if track != nil {
			track[i].After, track[i].Has = s.entryLocked(p, k)
		}
		p.mu.Unlock()
		resp.N += int64(n)
		if derr != nil {
			err = derr
		}
	}
	return err
}

// execLocked runs a single-key op on p, whose lock the caller holds.
func (s *Store) execLocked(p *partition, req *protocol.Request, resp *protocol.Response) error {
	now := s.now()
	switch req.Op {
	case protocol.OpGet:
		return s.get(p, req, resp, now)
	case protocol.OpSet:
		return s.set(p, req, resp, now)
	case protocol.OpTouch:
		return s.touch(p, req, resp, now)
	case protocol.OpGetAndTouch:
		if err := s.get(p, req, resp, now); err != nil {
			return err
		}
		return s.touch(p, req, resp, now)
	case protocol.OpGetAndDelete:
		// With FlagNoValue it is a DEL's, in a pipeline or a transaction:
		// Value is the DEL's token, as OpDelete's.
		var token []byte
		if req.Flags&protocol.FlagNoValue != 0 {
			token = req.Value
		}
		if err := s.get(p, req, resp, now); err != nil {
			if s.deletedBy(p, req.Key, now, token) {
				return nil
			}
			return err
		}
		_, err := s.del(p, req.Key, now, token)
		return err
	case protocol.OpTTL:
		_, h, ok := s.live(p, req.Key, now)
		if !ok {
			return protocol.ErrNotFound
		}
		resp.TTL = s.remaining(h, now)
		return nil
	}
	return protocol.Errorf(protocol.CodeUnknownOp, "op %s", req.Op)
}

func resetResponse(resp *protocol.Response) {
	resp.Code, resp.Msg, resp.Value = protocol.CodeOK, "", resp.Value[:0]
	resp.Version, resp.TTL, resp.N, resp.TTLKeys, resp.Keys, resp.Cursor = 0, 0, 0, 0, nil, 0
}

func (s *Store) partition(key string) *partition {
	return s.parts[ring.Partition(key, len(s.parts))]
}

// live returns key's entry if it exists, is not a tombstone and has not
// expired. An expired entry is dropped on the way. For a tombstone it
// returns the tombstone's location and header (and false); with no entry,
// a zero header.
func (s *Store) live(p *partition, key string, now int64) (loc, header, bool) {
	l, ok := p.lookup(key)
	if !ok {
		return 0, header{}, false
	}
	h := readHeader(p.entryAt(l))
	if h.expired(now) {
		p.unlink(key, l)
		s.expirations.Add(1)
		s.reclaim(p)
		return 0, header{}, false
	}
	return l, h, !h.tombstone()
}

func (s *Store) remaining(h header, now int64) int64 {
	if h.deadline == 0 {
		return -1
	}
	return max(h.deadline-now, 0)
}

func (s *Store) get(p *partition, req *protocol.Request, resp *protocol.Response, now int64) error {
	l, h, ok := s.live(p, req.Key, now)
	if !ok {
		return protocol.ErrNotFound
	}
	if req.Flags&protocol.FlagNoValue != 0 {
		resp.Version, resp.TTL = h.version, s.remaining(h, now)
		return nil
	}
	resp.Value = append(resp.Value, valueOf(p.entryAt(l), h)...)
	if resp.Value == nil {
		resp.Value = []byte{}
	}
	resp.Version, resp.TTL = h.version, s.remaining(h, now)
	return nil
}

// deadline turns a request's TTL and flags into a deadline. cur is the
// existing deadline, for KeepTTL.
func (s *Store) deadline(req *protocol.Request, cur int64, exists bool, now int64) (int64, error) {
	switch {
	case req.Flags&protocol.FlagKeepTTL != 0:
		if exists {
			return cur, nil
		}
		return 0, nil
	case req.Flags&protocol.FlagNoTTL != 0:
		return 0, nil
	case req.TTL <= 0:
		return 0, protocol.Errorf(protocol.CodeBadRequest, "ttl must be positive, got %dms", req.TTL)
	}
	return now + req.TTL, nil
}

func (s *Store) set(p *partition, req *protocol.Request, resp *protocol.Response, now int64) error {
	// One lookup serves both the checks (on a live entry) and the write,
	// which goes in place over a live entry or a tombstone.
	l, h, exists := s.live(p, req.Key, now)
	had := exists || h.tombstone()
	switch {
	case req.Flags&protocol.FlagIfAbsent != 0 && exists:
		return protocol.ErrExists
	case req.Flags&(protocol.FlagIfPresent|protocol.FlagIfVersion) != 0 && !exists:
		return protocol.ErrNotFound
	case req.Flags&protocol.FlagIfVersion != 0 && h.version != req.Version:
		return protocol.Errorf(protocol.CodeConflict, "version is %d, not %d", h.version, req.Version)
	}
	d, err := s.deadline(req, h.deadline, exists, now)
	if err != nil {
		return err
	}
	if req.Flags&protocol.FlagReturnOld != 0 && exists {
		resp.Value = append(resp.Value, valueOf(p.entryAt(l), h)...)
		resp.N = 1
	}
	nh := header{deadline: d, version: s.nextVersion(p, now)}
	if err := p.write(req.Key, l, had, nh, req.Value); err != nil {
		if protocol.CodeOf(err) == protocol.CodeTooLarge {
			return err
		}
		return fmt.Errorf("%w: %v", protocol.ErrOutOfMemory, err)
	}
	resp.Version = nh.version
	s.reclaim(p)
	return nil
}

func (s *Store) touch(p *partition, req *protocol.Request, resp *protocol.Response, now int64) error {
	l, h, ok := s.live(p, req.Key, now)
	if !ok {
		return protocol.ErrNotFound
	}
	f := req.Flags
	var d int64
	switch {
	case f&protocol.FlagNoTTL != 0:
		d = 0
	case req.TTL <= 0 && f&protocol.FlagAllowPast == 0:
		return protocol.Errorf(protocol.CodeBadRequest, "ttl must be positive, got %dms", req.TTL)
	default:
		d = now + req.TTL
	}
	switch {
	case f&protocol.FlagTTLIfNone != 0 && h.deadline != 0,
		f&protocol.FlagTTLIfSet != 0 && h.deadline == 0,
		f&protocol.FlagTTLIfGreater != 0 && (h.deadline == 0 || d <= h.deadline),
		f&protocol.FlagTTLIfLess != 0 && h.deadline != 0 && d >= h.deadline,
		f&protocol.FlagNoTTL != 0 && h.deadline == 0:
		resp.TTL = s.remaining(h, now)
		return nil
	}
	resp.N = 1
	if f&protocol.FlagNoTTL == 0 && req.TTL <= 0 {
		_, err := s.del(p, req.Key, now, nil)
		resp.TTL = 0
		return err
	}
	e := p.entryAt(l)
	v := s.nextVersion(p, now)
	p.account(h, -1)
	h.deadline = d
	p.account(h, +1)
	setDeadline(e, d)
	setVersion(e, v)
	resp.Version, resp.TTL = v, s.remaining(h, now)
	return nil
}

// del replaces key's live entry with a tombstone that keeps token, the
// delete call's (protocol.NewDeleteToken), if it has one. It reports 1 if
// there was a live entry, or if key's tombstone keeps the same token: an
// earlier attempt of the same call deleted it, and its answer was lost
// (timed out, or refused after the delete had reached a backup).
func (s *Store) del(p *partition, key string, now int64, token []byte) (int, error) {
	l, h, ok := s.live(p, key, now)
	if !ok {
		if keeps(p, l, h, token) {
			return 1, nil
		}
		return 0, nil
	}
	d := max(h.deadline, now) + s.cfg.TombstoneTTL.Milliseconds()
	th := header{flags: flagTombstone, deadline: d, version: s.nextVersion(p, now)}
	err := p.write(key, l, true, th, token)
	if err != nil && token != nil {
		// No room to move the entry for its token (its value was shorter):
		// a tombstone without one goes in place. A delete is never refused
		// for memory.
		err = p.write(key, l, true, th, nil)
	}
	if err != nil {
		return 0, err // in place always fits; kept for safety
	}
	s.reclaim(p)
	return 1, nil
}

// deletedBy reports whether key's tombstone keeps token: a delete with
// that token, an earlier attempt of the same call, deleted it.
func (s *Store) deletedBy(p *partition, key string, now int64, token []byte) bool {
	if len(token) == 0 {
		return false
	}
	l, h, ok := s.live(p, key, now)
	return !ok && keeps(p, l, h, token)
}

// keeps reports whether the entry at l, with header h (zero: none), is a
// tombstone that keeps token.
func keeps(p *partition, l loc, h header, token []byte) bool {
	return len(token) > 0 && h.tombstone() && bytes.Equal(valueOf(p.entryAt(l), h), token)
}

// reclaim takes back dead room after a write to p, a chunk at a time.
func (s *Store) reclaim(p *partition) {
	if p.reclaim() {
		s.chunksCleaned.Add(1)
	}
}

// reserve makes room for a write of req under MaxMemory, evicting the
// entries nearest expiry. It runs before any partition lock is taken.
func (s *Store) reserve(req *protocol.Request) error {
	return s.reserveBytes(int64(hdrSize + len(req.Key) + len(req.Value)))
}

// reserveBytes makes room for need more bytes under MaxMemory, as reserve.
func (s *Store) reserveBytes(need int64) error {
	if s.cfg.MaxMemory <= 0 || need == 0 {
		return nil
	}
	if s.usedMemory()+need <= s.cfg.MaxMemory {
		return nil
	}
	if s.evict(need) {
		return nil
	}
	s.refusals.Add(1)
	return protocol.Errorf(protocol.CodeOutOfMemory, "max-memory %d bytes reached and nothing left to evict", s.cfg.MaxMemory)
}

// Flush forgets every entry.
func (s *Store) Flush() {
	for _, p := range s.parts {
		p.mu.Lock()
		p.reset()
		p.mu.Unlock()
	}
}
