package store

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestStore(t *testing.T, cfg Config) (*Store, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s := New(cfg)
	t.Cleanup(s.Flush)
	return s, clk
}

func exec(s *Store, req protocol.Request) protocol.Response {
	var resp protocol.Response
	s.Exec(&req, &resp)
	return resp
}

func set(s *Store, key, val string, ttl time.Duration) protocol.Response {
	return exec(s, protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte(val), TTL: ttl.Milliseconds()})
}

func get(s *Store, key string) protocol.Response {
	return exec(s, protocol.Request{Op: protocol.OpGet, Key: key})
}

func wantValue(t *testing.T, s *Store, key, want string) protocol.Response {
	t.Helper()
	r := get(s, key)
	if r.Code != protocol.CodeOK || string(r.Value) != want {
		t.Fatalf("get %q = %v %q; want OK %q", key, r.Code, r.Value, want)
	}
	return r
}

func wantMissing(t *testing.T, s *Store, key string) {
	t.Helper()
	if r := get(s, key); r.Code != protocol.CodeNotFound {
		t.Fatalf("get %q = %v %q; want NotFound", key, r.Code, r.Value)
	}
}

func TestStore_SetGet(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	r := set(s, "a", "1", time.Minute)
	if r.Code != protocol.CodeOK || r.Version == 0 {
		t.Fatalf("set = %+v; want OK with a version", r)
	}
	g := wantValue(t, s, "a", "1")
	if g.Version != r.Version {
		t.Errorf("get version %d; want %d", g.Version, r.Version)
	}
	if g.TTL != time.Minute.Milliseconds() {
		t.Errorf("ttl %d; want %d", g.TTL, time.Minute.Milliseconds())
	}
	wantMissing(t, s, "b")
}

func TestStore_Set_emptyValueIsNotMissing(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	set(s, "a", "", time.Minute)
	r := get(s, "a")
	if r.Code != protocol.CodeOK || r.Value == nil || len(r.Value) != 0 {
		t.Fatalf("get = %v %#v; want OK and an empty, non-nil value", r.Code, r.Value)
	}
}

func TestStore_Set_rejectsNonPositiveTTL(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	for _, ttl := range []int64{0, -5} {
		r := exec(s, protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte("v"), TTL: ttl})
		if r.Code != protocol.CodeBadRequest {
			t.Errorf("set ttl=%d: %v; want BadRequest", ttl, r.Code)
		}
	}
	wantMissing(t, s, "a")
}

func TestStore_Set_overwriteGrowsAndShrinks(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	for _, v := range []string{"short", string(bytes.Repeat([]byte("x"), 5000)), "s", "", "medium value"} {
		set(s, "k", v, time.Minute)
		wantValue(t, s, "k", v)
	}
	if st := s.Stats(); st.Keys != 1 {
		t.Errorf("keys = %d; want 1", st.Keys)
	}
}

func TestStore_Set_conditions(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	nx := protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte("1"), TTL: 60000, Flags: protocol.FlagIfAbsent}
	if r := exec(s, nx); r.Code != protocol.CodeOK {
		t.Fatalf("create-only on new key: %v", r.Code)
	}
	nx.Value = []byte("2")
	if r := exec(s, nx); r.Code != protocol.CodeExists {
		t.Fatalf("create-only on existing key: %v; want Exists", r.Code)
	}
	wantValue(t, s, "a", "1")

	xx := protocol.Request{Op: protocol.OpSet, Key: "b", Value: []byte("1"), TTL: 60000, Flags: protocol.FlagIfPresent}
	if r := exec(s, xx); r.Code != protocol.CodeNotFound {
		t.Fatalf("update-only on missing key: %v; want NotFound", r.Code)
	}
	wantMissing(t, s, "b")

	v := get(s, "a").Version
	cas := protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte("3"), TTL: 60000, Flags: protocol.FlagIfVersion, Version: v}
	r := exec(s, cas)
	if r.Code != protocol.CodeOK {
		t.Fatalf("cas with current version: %v", r.Code)
	}
	if r.Version <= v {
		t.Fatalf("new version %d not above %d", r.Version, v)
	}
	cas.Value = []byte("4") // still the old version
	if r := exec(s, cas); r.Code != protocol.CodeConflict {
		t.Fatalf("cas with stale version: %v; want Conflict", r.Code)
	}
	wantValue(t, s, "a", "3")
}

func TestStore_Set_ifAbsentKeepsTTL(t *testing.T) {
	// Olric stored SET k v EX n NX without a TTL.
	s, clk := newTestStore(t, Config{})
	exec(s, protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte("1"), TTL: 1000, Flags: protocol.FlagIfAbsent})
	clk.Advance(1001 * time.Millisecond)
	wantMissing(t, s, "a")
}

func TestStore_Set_keepTTLAndReturnOld(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	set(s, "a", "old", time.Minute)
	r := exec(s, protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte("new"), Flags: protocol.FlagKeepTTL | protocol.FlagReturnOld})
	if r.Code != protocol.CodeOK || string(r.Value) != "old" || r.N != 1 {
		t.Fatalf("set keepttl get = %v %q n=%d; want OK old 1", r.Code, r.Value, r.N)
	}
	if g := wantValue(t, s, "a", "new"); g.TTL != 60000 {
		t.Errorf("ttl %d; want 60000", g.TTL)
	}
}

func TestStore_Touch_keepsValue(t *testing.T) {
	// Olric's TTL-only update erased the value.
	s, clk := newTestStore(t, Config{})
	w := set(s, "a", "coat", time.Second)
	r := exec(s, protocol.Request{Op: protocol.OpTouch, Key: "a", TTL: 10_000})
	if r.Code != protocol.CodeOK || r.N != 1 || r.Version <= w.Version {
		t.Fatalf("touch = %+v; want OK, n=1, a newer version", r)
	}
	clk.Advance(5 * time.Second)
	g := wantValue(t, s, "a", "coat")
	if g.TTL != 5000 {
		t.Errorf("ttl %d; want 5000", g.TTL)
	}
	if r := exec(s, protocol.Request{Op: protocol.OpTouch, Key: "missing", TTL: 1000}); r.Code != protocol.CodeNotFound {
		t.Errorf("touch missing: %v; want NotFound", r.Code)
	}
	if r := exec(s, protocol.Request{Op: protocol.OpTouch, Key: "a", TTL: 0}); r.Code != protocol.CodeBadRequest {
		t.Errorf("touch ttl 0: %v; want BadRequest", r.Code)
	}
}

func TestStore_Touch_conditions(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	touch := func(ttl int64, f protocol.Flags) protocol.Response {
		return exec(s, protocol.Request{Op: protocol.OpTouch, Key: "a", TTL: ttl, Flags: f})
	}
	set(s, "a", "v", 10*time.Second)
	cases := []struct {
		name  string
		ttl   int64
		flags protocol.Flags
		n     int64
		ttlMs int64
	}{
		{"nx on volatile", 5000, protocol.FlagTTLIfNone, 0, 10000},
		{"xx on volatile", 20000, protocol.FlagTTLIfSet, 1, 20000},
		{"gt smaller", 5000, protocol.FlagTTLIfGreater, 0, 20000},
		{"lt smaller", 5000, protocol.FlagTTLIfLess, 1, 5000},
		{"persist", 0, protocol.FlagNoTTL, 1, -1},
		{"persist again", 0, protocol.FlagNoTTL, 0, -1},
		{"gt on persistent", 5000, protocol.FlagTTLIfGreater, 0, -1},
		{"lt on persistent", 5000, protocol.FlagTTLIfLess, 1, 5000},
	}
	for _, c := range cases {
		r := touch(c.ttl, c.flags)
		if r.Code != protocol.CodeOK || r.N != c.n || r.TTL != c.ttlMs {
			t.Fatalf("%s: got code=%v n=%d ttl=%d; want n=%d ttl=%d", c.name, r.Code, r.N, r.TTL, c.n, c.ttlMs)
		}
	}
	if r := touch(-1, protocol.FlagAllowPast); r.N != 1 {
		t.Fatalf("expire in the past: n=%d; want 1", r.N)
	}
	wantMissing(t, s, "a")
}

func TestStore_GetAndTouch_slidesExpiry(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	set(s, "a", "v", time.Second)
	for range 5 {
		clk.Advance(900 * time.Millisecond)
		r := exec(s, protocol.Request{Op: protocol.OpGetAndTouch, Key: "a", TTL: 1000})
		if r.Code != protocol.CodeOK || string(r.Value) != "v" || r.TTL != 1000 {
			t.Fatalf("getandtouch = %v %q ttl=%d", r.Code, r.Value, r.TTL)
		}
	}
	clk.Advance(1001 * time.Millisecond)
	wantMissing(t, s, "a")
}

func TestStore_Delete_countsExisting(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	set(s, "a", "1", time.Minute)
	set(s, "b", "2", time.Minute)
	r := exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{"a", "b", "c", "a"}})
	if r.N != 2 {
		t.Fatalf("deleted %d; want 2", r.N)
	}
	wantMissing(t, s, "a")
	wantMissing(t, s, "b")
	st := s.Stats()
	if st.Keys != 0 || st.Tombstones != 2 {
		t.Errorf("keys=%d tombstones=%d; want 0 and 2", st.Keys, st.Tombstones)
	}
}

func TestStore_Set_overTombstoneAndExpired_replacesEntry(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	set(s, "a", "1", time.Minute)
	exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{"a"}})
	set(s, "a", "2", time.Minute) // over the tombstone
	wantValue(t, s, "a", "2")
	set(s, "b", "1", time.Second)
	clk.Advance(2 * time.Second)
	set(s, "b", "2", time.Minute) // over the expired entry
	wantValue(t, s, "b", "2")
	st := s.Stats()
	if st.Keys != 2 || st.Tombstones != 0 {
		t.Errorf("keys=%d tombstones=%d; want 2 and 0", st.Keys, st.Tombstones)
	}
	if used := s.usedMemory(); used != st.UsedMemory() {
		t.Errorf("usedMemory %d; want %d", used, st.UsedMemory())
	}
}

func TestStore_Delete_tombstoneOutlivesEntry(t *testing.T) {
	s, clk := newTestStore(t, Config{TombstoneTTL: time.Minute})
	set(s, "a", "1", 10*time.Second)
	exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{"a"}})
	clk.Advance(65 * time.Second)
	if st := s.Stats(); st.Tombstones != 1 {
		t.Fatalf("tombstones=%d before its deadline; want 1", st.Tombstones)
	}
	clk.Advance(10 * time.Second)
	expireAll(s)
	if st := s.Stats(); st.Tombstones != 0 {
		t.Fatalf("tombstones=%d after its deadline; want 0", st.Tombstones)
	}
}

func TestStore_Expiry_activeWithoutReads(t *testing.T) {
	s, clk := newTestStore(t, Config{Partitions: 7})
	for i := range 1000 {
		set(s, fmt.Sprint("k", i), "v", time.Second)
	}
	set(s, "long", "v", time.Hour)
	clk.Advance(2 * time.Second)
	for range 100 {
		expireAll(s)
	}
	st := s.Stats()
	if st.Keys != 1 || st.Expirations != 1000 {
		t.Fatalf("keys=%d expirations=%d; want 1 and 1000", st.Keys, st.Expirations)
	}
	wantValue(t, s, "long", "v")
}

func TestStore_Compaction_keepsLiveKeys(t *testing.T) {
	// Olric's compaction lost live keys.
	s, _ := newTestStore(t, Config{Partitions: 3})
	const n = 2000
	for round := range 20 {
		for i := range n {
			set(s, fmt.Sprint("k", i), fmt.Sprintf("v%d-%d-%s", i, round, bytes.Repeat([]byte("x"), round*7)), time.Hour)
		}
		exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{fmt.Sprint("k", round)}})
	}
	for i := range 19 { // k19 was deleted in the last round
		exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{fmt.Sprint("k", i)}})
	}
	if s.Stats().ChunksCleaned == 0 {
		t.Fatal("no chunk was cleaned; the test proves nothing")
	}
	for i := range n {
		key := fmt.Sprint("k", i)
		if i < 20 {
			wantMissing(t, s, key)
			continue
		}
		wantValue(t, s, key, fmt.Sprintf("v%d-%d-%s", i, 19, bytes.Repeat([]byte("x"), 19*7)))
	}
}

func TestStore_LargeValue(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	big := bytes.Repeat([]byte("b"), protocol.DefaultMaxValue)
	exec(s, protocol.Request{Op: protocol.OpSet, Key: "big", Value: big, TTL: 60000})
	if r := get(s, "big"); !bytes.Equal(r.Value, big) {
		t.Fatalf("large value came back as %d bytes; want %d", len(r.Value), len(big))
	}
	exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{"big"}})
	set(s, "big", "small now", time.Minute)
	wantValue(t, s, "big", "small now")
}

func TestStore_MaxMemory_evictsNearestExpiry(t *testing.T) {
	const limit = 4 << 20
	s, _ := newTestStore(t, Config{Partitions: 8, MaxMemory: limit})
	val := string(bytes.Repeat([]byte("v"), 200))
	// Long-lived sessions first, then many short-lived ones over the limit.
	for i := range 1000 {
		if r := set(s, fmt.Sprint("long", i), val, time.Hour); r.Code != protocol.CodeOK {
			t.Fatalf("set long%d: %v", i, r.Err())
		}
	}
	for i := range 40000 {
		if r := set(s, fmt.Sprint("short", i), val, time.Minute+time.Duration(i)*time.Millisecond); r.Code != protocol.CodeOK {
			t.Fatalf("set short%d: %v", i, r.Err())
		}
	}
	st := s.Stats()
	if st.Evictions == 0 {
		t.Fatal("no evictions")
	}
	if used := st.UsedMemory(); used > limit+chunkSize*int64(s.Partitions()) {
		t.Fatalf("used %d bytes; limit %d", used, limit)
	}
	for i := range 1000 {
		wantValue(t, s, fmt.Sprint("long", i), val)
	}
}

func TestStore_MaxMemory_refusesWhenNothingEvictable(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1, MaxMemory: 1})
	r := set(s, "a", "v", time.Minute)
	if !errors.Is(r.Err(), protocol.ErrOutOfMemory) {
		t.Fatalf("set over a tiny limit: %v; want ErrOutOfMemory", r.Err())
	}
	if got := s.Stats().Refusals; got != 1 {
		t.Fatalf("Stats().Refusals = %d after one refused set; want 1", got)
	}
}

func TestStore_Scan_visitsEveryKeyOnce(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 4})
	want := map[string]bool{}
	for i := range 500 {
		k := fmt.Sprint("user:", i)
		want[k] = true
		set(s, k, "v", time.Minute)
	}
	set(s, "other", "v", time.Minute)
	got := map[string]int{}
	for p := range s.Partitions() {
		cursor := uint64(0)
		for {
			r := exec(s, protocol.Request{Op: protocol.OpScan, Partition: int32(p), Cursor: cursor, Count: 7, Pattern: "user:*"})
			for _, k := range r.Keys {
				got[k]++
			}
			if r.Cursor == 0 {
				break
			}
			cursor = r.Cursor
		}
	}
	if len(got) != len(want) {
		t.Fatalf("scan found %d keys; want %d", len(got), len(want))
	}
	for k, n := range got {
		if !want[k] || n != 1 {
			t.Fatalf("key %q seen %d times (wanted: %v)", k, n, want[k])
		}
	}
}

// A page matches at most ScanExamine(count) keys against its pattern and
// then returns, with none found if need be, and a cursor after the last it
// examined: a pattern that matches few of a large partition's keys costs
// each page a bounded amount, and paging still finds each match once.
func TestStore_Scan_pageExaminesABoundedNumberOfKeys(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	for i := range 3000 {
		set(s, fmt.Sprint("other:", i), "v", time.Minute)
	}
	for i := range 5 {
		set(s, fmt.Sprint("user:", i), "v", time.Minute)
	}
	seen := map[string]int{}
	pages := 0
	for cursor := uint64(0); ; pages++ {
		r := exec(s, protocol.Request{Op: protocol.OpScan, Cursor: cursor, Count: 10, Pattern: "user:*"})
		const most = 100             // ten times the count, at least 100
		if r.N < 1 || r.N > most+2 { // +2: keys sharing the last one's position
			t.Fatalf("page %d examined %d keys; want 1 to %d", pages, r.N, most)
		}
		for _, k := range r.Keys {
			seen[k]++
		}
		if r.Cursor == 0 {
			break
		}
		cursor = r.Cursor
	}
	if len(seen) != 5 {
		t.Errorf("paging found %v; want the 5 user: keys", seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s found %d times", k, n)
		}
	}
	if pages < 3005/102 {
		t.Errorf("%d pages for 3,005 keys; want at least %d (each examining at most about 100)", pages+1, 3005/102)
	}
}

// A scan asked for more keys than fit in a frame returns a page that does
// (its encoded keys within maxScanBytes) and a cursor for the rest: a
// reply over the frame limit would fail, and close the connection it
// travels on, for every request sharing it.
func TestStore_Scan_pageFitsInAFrame(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	const keys = 400
	long := strings.Repeat("k", 1000)
	for i := range keys {
		set(s, fmt.Sprint(long, i), "v", time.Minute)
	}
	seen := map[string]bool{}
	pages := 0
	for cursor := uint64(0); ; pages++ {
		r := exec(s, protocol.Request{Op: protocol.OpScan, Cursor: cursor, Count: 1 << 20})
		size := 0
		for _, k := range r.Keys {
			seen[k] = true
			size += len(k) + 5
		}
		if size > maxScanBytes+5*1024 { // a page may end with keys sharing a position
			t.Fatalf("page %d: %d keys, %d bytes; want at most %d", pages, len(r.Keys), size, maxScanBytes)
		}
		if r.Cursor == 0 {
			break
		}
		cursor = r.Cursor
	}
	if len(seen) != keys || pages < 2 {
		t.Fatalf("%d keys in %d pages; want %d, in several", len(seen), pages+1, keys)
	}
}

func TestPartition_hashCollisionSpills(t *testing.T) {
	var a allocator
	var entries atomic.Int64
	p := newPartition(&a, maphash.MakeSeed(), &entries)
	defer p.reset()
	h := header{deadline: 0, version: 1}
	if err := p.write("a", 0, false, h, []byte("A")); err != nil {
		t.Fatal(err)
	}
	// Make "b" collide with "a": point b's hash at a's entry.
	la, _ := p.lookup("a")
	p.index[maphash.String(p.seed, "b")] = la
	if err := p.write("b", 0, false, h, []byte("B")); err != nil {
		t.Fatal(err)
	}
	if len(p.spill) != 1 {
		t.Fatalf("spill has %d keys; want 1", len(p.spill))
	}
	for _, k := range []string{"a", "b"} {
		l, ok := p.lookup(k)
		e := p.entryAt(l)
		if !ok || string(valueOf(e, readHeader(e))) != strings.ToUpper(k) {
			t.Fatalf("lookup %q failed", k)
		}
	}
	if err := p.compact(); err != nil {
		t.Fatal(err)
	}
	if l, ok := p.lookup("b"); !ok || string(valueOf(p.entryAt(l), readHeader(p.entryAt(l)))) != "B" {
		t.Fatal("spilled key lost in compaction")
	}
}

func TestStore_DeleteMatch_onePartition(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	// A hash tag keeps one user's sessions in one partition.
	for i := range 5 {
		set(s, fmt.Sprintf("s:{u1}:%d", i), "v", time.Minute)
		set(s, fmt.Sprintf("s:{u2}:%d", i), "v", time.Minute)
	}
	p := int32(ring.Partition("{u1}", s.Partitions()))
	r := exec(s, protocol.Request{Op: protocol.OpDeleteMatch, Partition: p, Pattern: "s:{u1}:*"})
	if r.Code != protocol.CodeOK || r.N != 5 {
		t.Fatalf("deletematch = %v n=%d; want OK 5", r.Code, r.N)
	}
	for i := range 5 {
		wantMissing(t, s, fmt.Sprintf("s:{u1}:%d", i))
		wantValue(t, s, fmt.Sprintf("s:{u2}:%d", i), "v")
	}
}

// expireAll runs expiry cycles until every partition had a turn.
func expireAll(s *Store) {
	start := 0
	for range (s.Partitions() + expirePartitionsPerCycle - 1) / expirePartitionsPerCycle {
		start = s.ExpireCycle(start, time.Second)
	}
}

func TestStore_now_systemClock(t *testing.T) {
	sys := New(Config{Partitions: 1, Now: time.Now})
	if !sys.sysClock {
		t.Fatalf("Now: time.Now: sysClock false; want true")
	}
	if def := New(Config{Partitions: 1}); !def.sysClock {
		t.Fatalf("Now: nil: sysClock false; want true")
	}
	fake := New(Config{Partitions: 1, Now: func() time.Time { return time.Unix(0, 0) }})
	if fake.sysClock {
		t.Fatalf("fake Now: sysClock true; want false")
	}
	// Both readings measure time since base on the monotonic clock.
	before := sys.cfg.Now().Sub(sys.base).Milliseconds()
	got := sys.now()
	after := sys.cfg.Now().Sub(sys.base).Milliseconds()
	if got < before || got > after {
		t.Fatalf("now() = %d; want within [%d, %d]", got, before, after)
	}
}
