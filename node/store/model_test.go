package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// The model test drives a store and a plain map side by side through long
// seeded sequences of random operations, with a fake clock, and checks
// every reply, every TTL and the store's counters against the model.

// modelEntry is what the model knows of a key: a live value or a tombstone,
// with a deadline in model milliseconds (0: none).
type modelEntry struct {
	value    string
	deadline int64
	version  uint64 // last version the store reported; 0 if unknown
	tomb     bool
}

type model struct {
	t        *testing.T
	s        *Store
	clk      *fakeClock
	rng      *rand.Rand
	now      int64 // model clock, ms since start
	tombTTL  int64
	m        map[string]*modelEntry
	keys     []string
	lastVer  map[*partition]uint64 // highest version reported, by partition
	opsSoFar int
	fixedNow bool     // the clock is shared: never advance it
	trace    []string // recent ops, printed on failure
}

func newModel(t *testing.T, seed uint64, cfg Config, nkeys int) *model {
	s, clk := newTestStore(t, cfg)
	return newModelOn(t, s, clk, seed, "sess:", nkeys)
}

// newModelOn returns a model of the keys prefix0 … prefixN-1 of s.
func newModelOn(t *testing.T, s *Store, clk *fakeClock, seed uint64, prefix string, nkeys int) *model {
	md := &model{t: t, s: s, clk: clk, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tombTTL: s.cfg.TombstoneTTL.Milliseconds(), m: map[string]*modelEntry{},
		lastVer: map[*partition]uint64{}}
	for i := range nkeys {
		md.keys = append(md.keys, fmt.Sprint(prefix, i))
	}
	return md
}

func (md *model) fail(format string, args ...any) {
	md.t.Helper()
	md.t.Fatalf("op %d: %s\nlast ops:\n  %s", md.opsSoFar, fmt.Sprintf(format, args...), strings.Join(md.trace, "\n  "))
}

func (md *model) log(format string, args ...any) {
	md.trace = append(md.trace, fmt.Sprintf(format, args...))
	if len(md.trace) > 12 {
		md.trace = md.trace[1:]
	}
}

func (md *model) live(k string) (*modelEntry, bool) {
	e := md.m[k]
	if e == nil || e.tomb || (e.deadline != 0 && e.deadline <= md.now) {
		return nil, false
	}
	return e, true
}

func (md *model) exec(req protocol.Request) protocol.Response {
	var resp protocol.Response
	md.s.Exec(&req, &resp)
	return resp
}

func (md *model) wantCode(what string, resp protocol.Response, want protocol.Code) bool {
	md.t.Helper()
	if resp.Code != want {
		md.fail("%s: got code %v (%s); want %v", what, resp.Code, resp.Msg, want)
	}
	return want == protocol.CodeOK
}

// wrote records a write the store acknowledged with version v. Versions
// order the writes of one partition.
func (md *model) wrote(what, k string, v uint64, e *modelEntry) {
	md.t.Helper()
	p := md.s.partition(k)
	if v <= md.lastVer[p] {
		md.fail("%s %s: got version %d; want above %d", what, k, v, md.lastVer[p])
	}
	md.lastVer[p] = v
	e.version = v
	md.m[k] = e
}

func (md *model) value() string {
	n := md.rng.IntN(200)
	switch md.rng.IntN(40) {
	case 0:
		n = 0
	case 1:
		n = chunkSize + md.rng.IntN(1000) // a chunk of its own
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + md.rng.IntN(26))
	}
	return string(b)
}

func (md *model) ttl() int64 { return 1 + md.rng.Int64N(5000) }

func (md *model) step() {
	md.opsSoFar++
	k := md.keys[md.rng.IntN(len(md.keys))]
	cur, isLive := md.live(k)
	switch op := md.rng.IntN(100); {
	case op < 25: // set, sometimes without a TTL
		v, ttl := md.value(), md.ttl()
		req := protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte(v), TTL: ttl}
		d := md.now + ttl
		if md.rng.IntN(10) == 0 {
			req.Flags, d = protocol.FlagNoTTL, 0
		}
		md.log("set %s (%d bytes) ttl %d flags %d", k, len(v), ttl, req.Flags)
		if resp := md.exec(req); md.wantCode("set", resp, protocol.CodeOK) {
			md.wrote("set", k, resp.Version, &modelEntry{value: v, deadline: d})
		}
	case op < 35: // add (create only)
		v, ttl := md.value(), md.ttl()
		md.log("add %s ttl %d", k, ttl)
		resp := md.exec(protocol.Request{Op: protocol.OpSet, Flags: protocol.FlagIfAbsent, Key: k, Value: []byte(v), TTL: ttl})
		if isLive {
			md.wantCode("add over a live key", resp, protocol.CodeExists)
		} else if md.wantCode("add", resp, protocol.CodeOK) {
			md.wrote("add", k, resp.Version, &modelEntry{value: v, deadline: md.now + ttl})
		}
	case op < 45: // compare-and-swap, with the right version or a stale one
		v, ttl := md.value(), md.ttl()
		var ver uint64
		right := isLive && md.rng.IntN(3) > 0
		if right {
			ver = cur.version
		} else if isLive {
			ver = cur.version - 1
		} else {
			ver = md.lastVer[md.s.partition(k)]
		}
		md.log("cas %s version %d (right: %v)", k, ver, right)
		resp := md.exec(protocol.Request{Op: protocol.OpSet, Flags: protocol.FlagIfVersion, Version: ver, Key: k, Value: []byte(v), TTL: ttl})
		switch {
		case !isLive:
			md.wantCode("cas on a missing key", resp, protocol.CodeNotFound)
		case !right:
			md.wantCode("cas with a stale version", resp, protocol.CodeConflict)
		case md.wantCode("cas", resp, protocol.CodeOK):
			md.wrote("cas", k, resp.Version, &modelEntry{value: v, deadline: md.now + ttl})
		}
	case op < 55: // touch
		ttl := md.ttl()
		md.log("touch %s ttl %d", k, ttl)
		resp := md.exec(protocol.Request{Op: protocol.OpTouch, Key: k, TTL: ttl})
		if !isLive {
			md.wantCode("touch on a missing key", resp, protocol.CodeNotFound)
		} else if md.wantCode("touch", resp, protocol.CodeOK) {
			if resp.TTL != ttl {
				md.fail("touch %s: got ttl %d; want %d", k, resp.TTL, ttl)
			}
			md.wrote("touch", k, resp.Version, &modelEntry{value: cur.value, deadline: md.now + ttl})
		}
	case op < 65: // get and touch
		ttl := md.ttl()
		md.log("getandtouch %s ttl %d", k, ttl)
		resp := md.exec(protocol.Request{Op: protocol.OpGetAndTouch, Key: k, TTL: ttl})
		if !isLive {
			md.wantCode("getandtouch on a missing key", resp, protocol.CodeNotFound)
		} else if md.wantCode("getandtouch", resp, protocol.CodeOK) {
			if string(resp.Value) != cur.value || resp.TTL != ttl {
				md.fail("getandtouch %s: got %d bytes ttl %d; want %d bytes ttl %d", k, len(resp.Value), resp.TTL, len(cur.value), ttl)
			}
			md.wrote("getandtouch", k, resp.Version, &modelEntry{value: cur.value, deadline: md.now + ttl})
		}
	case op < 80:
		md.log("get %s", k)
		md.checkGet(k)
	case op < 88: // delete one to three keys
		keys := []string{k}
		for range md.rng.IntN(3) {
			keys = append(keys, md.keys[md.rng.IntN(len(md.keys))])
		}
		md.log("delete %q", keys)
		want := 0
		for _, dk := range keys {
			if e, ok := md.live(dk); ok {
				want++
				md.m[dk] = &modelEntry{tomb: true, deadline: max(e.deadline, md.now) + md.tombTTL}
				md.lastVer[md.s.partition(dk)]++ // the tombstone's version is not reported
			}
		}
		resp := md.exec(protocol.Request{Op: protocol.OpDelete, Keys: keys})
		if md.wantCode("delete", resp, protocol.CodeOK) && resp.N != int64(want) {
			md.fail("delete %q: got %d deleted; want %d", keys, resp.N, want)
		}
	case op < 95 && !md.fixedNow:
		d := md.rng.Int64N(3000)
		md.log("advance %dms", d)
		md.now += d
		md.clk.Advance(time.Duration(d) * time.Millisecond)
	case op >= 95:
		md.log("expire cycle")
		md.s.ExpireCycle(md.rng.IntN(len(md.s.parts)), time.Hour)
	}
}

// checkGet compares a get of k with the model.
func (md *model) checkGet(k string) {
	md.t.Helper()
	resp := md.exec(protocol.Request{Op: protocol.OpGet, Key: k})
	e, ok := md.live(k)
	if !ok {
		md.wantCode("get "+k+" (missing)", resp, protocol.CodeNotFound)
		return
	}
	if !md.wantCode("get "+k, resp, protocol.CodeOK) {
		return
	}
	wantTTL := int64(-1)
	if e.deadline != 0 {
		wantTTL = e.deadline - md.now
	}
	if string(resp.Value) != e.value || resp.Version != e.version || resp.TTL != wantTTL {
		md.fail("get %s: got %d bytes, version %d, ttl %d; want %d bytes, version %d, ttl %d",
			k, len(resp.Value), resp.Version, resp.TTL, len(e.value), e.version, wantTTL)
	}
}

// counts returns the live keys and tombstones the model expects.
func (md *model) counts() (keys, tombs int64) {
	for _, e := range md.m {
		switch {
		case e.deadline != 0 && e.deadline <= md.now:
		case e.tomb:
			tombs++
		default:
			keys++
		}
	}
	return keys, tombs
}

// checkAll reads every key (collecting whatever has expired on the way),
// then compares the store's counters with the model's and checks the
// partitions' internal accounting.
func (md *model) checkAll() {
	md.t.Helper()
	for _, k := range md.keys {
		md.checkGet(k)
	}
	keys, tombs := md.counts()
	st := md.s.Stats()
	if st.Keys != keys || st.Tombstones != tombs {
		md.fail("stats: got %d keys, %d tombstones; want %d, %d", st.Keys, st.Tombstones, keys, tombs)
	}
	if err := checkAccounting(md.s); err != nil {
		md.fail("accounting: %v", err)
	}
}

func TestStore_model_randomOperationsMatchAMap(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			// Few partitions and keys, so that compaction, reuse of value
			// room and expiry all happen often.
			md := newModel(t, seed, Config{Partitions: 3, TombstoneTTL: 4 * time.Second}, 40)
			for i := range 4000 {
				md.step()
				if i%250 == 0 {
					md.checkAll()
				}
			}
			md.checkAll()
			if st := md.s.Stats(); st.ChunksCleaned == 0 || st.Expirations == 0 {
				t.Errorf("stats %+v: want chunks cleaned and expirations to have happened", st)
			}
		})
	}
}

// TestStore_model_hashCollisions runs the model with the index hash cut to
// two bits, so that most keys share a hash with another and live in spill.
func TestStore_model_hashCollisions(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			md := newModel(t, 1000+seed, Config{Partitions: 2, TombstoneTTL: 4 * time.Second}, 40)
			for _, p := range md.s.parts {
				p.hashMask = 3
			}
			// Keys come and go, so count the most that were ever spilled at
			// once: the run must have exercised collisions to prove anything.
			maxSpilled := 0
			for i := range 4000 {
				md.step()
				if i%250 == 0 {
					md.checkAll()
				}
				spilled := 0
				for _, p := range md.s.parts {
					spilled += len(p.spill)
				}
				maxSpilled = max(maxSpilled, spilled)
			}
			md.checkAll()
			if maxSpilled == 0 {
				t.Error("no key was ever spilled; want most keys to collide")
			}
		})
	}
}

// TestStore_model_maxMemory runs random writes under a memory limit: the
// store may evict, but must never crash, never go far over the limit and
// never return anything but the last value written.
func TestStore_model_maxMemory(t *testing.T) {
	const limit = 2 << 20
	md := newModel(t, 42, Config{Partitions: 8, MaxMemory: limit}, 3000)
	evictedOrOOM := 0
	for range 20000 {
		k := md.keys[md.rng.IntN(len(md.keys))]
		if md.rng.IntN(3) == 0 {
			resp := md.exec(protocol.Request{Op: protocol.OpGet, Key: k})
			e, ok := md.live(k)
			switch {
			case resp.Code == protocol.CodeOK && (!ok || string(resp.Value) != e.value):
				t.Fatalf("get %s: got %d bytes; want the last value written (%v)", k, len(resp.Value), ok)
			case resp.Code == protocol.CodeNotFound && ok:
				delete(md.m, k) // evicted
				evictedOrOOM++
			}
			continue
		}
		v := strings.Repeat("x", md.rng.IntN(4000))
		ttl := md.ttl() * 100
		resp := md.exec(protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte(v), TTL: ttl})
		switch {
		case resp.Code == protocol.CodeOK:
			md.m[k] = &modelEntry{value: v, deadline: md.now + ttl}
		case errors.Is(resp.Err(), protocol.ErrOutOfMemory):
			evictedOrOOM++ // the old value, if any, must still be there
		default:
			t.Fatalf("set %s: got %v; want ok or out of memory", k, resp.Err())
		}
		if used := md.s.Stats().UsedMemory(); used > limit+int64(len(md.s.parts))*chunkSize {
			t.Fatalf("used memory %d; want at most the limit %d plus a chunk per partition", used, limit)
		}
	}
	if err := checkAccounting(md.s); err != nil {
		t.Fatal(err)
	}
	if st := md.s.Stats(); st.Evictions == 0 || evictedOrOOM == 0 {
		t.Errorf("stats %+v: want evictions under a 2 MiB limit", st)
	}
}

// TestStore_model_concurrentWorkers runs models of disjoint key sets in
// parallel on one store (the clock stands still), then checks every model
// and the store's counters against their sum.
func TestStore_model_concurrentWorkers(t *testing.T) {
	s, clk := newTestStore(t, Config{Partitions: 3})
	models := make([]*model, 4)
	t.Run("workers", func(t *testing.T) {
		for w := range models {
			md := newModelOn(t, s, clk, uint64(100+w), fmt.Sprintf("w%d:", w), 30)
			md.fixedNow = true
			models[w] = md
			t.Run(fmt.Sprint("worker", w), func(t *testing.T) {
				t.Parallel()
				md.t = t
				for range 3000 {
					md.step()
				}
			})
		}
	})
	var keys, tombs int64
	for _, md := range models {
		md.t = t
		for _, k := range md.keys {
			md.checkGet(k)
		}
		k, tb := md.counts()
		keys, tombs = keys+k, tombs+tb
	}
	if st := s.Stats(); st.Keys != keys || st.Tombstones != tombs {
		t.Errorf("stats: got %d keys, %d tombstones; want %d, %d", st.Keys, st.Tombstones, keys, tombs)
	}
	if err := checkAccounting(s); err != nil {
		t.Error(err)
	}
}
