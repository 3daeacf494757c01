package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cloakroom/cloakroom/protocol"
)

// fetchAll reads partition pi to the end in batches of maxBytes, calling
// between (if not nil) after every batch, and counts each key returned.
func fetchAll(s *Store, pi, maxBytes int, between func(batch int)) map[string]int {
	seen := map[string]int{}
	cursor := uint64(0)
	for batch := 0; ; batch++ {
		es, next := s.Fetch(pi, cursor, maxBytes)
		for _, e := range es {
			seen[e.Key]++
		}
		if next == 0 {
			return seen
		}
		if next <= cursor {
			seen["cursor went back"]++
			return seen
		}
		cursor = next
		if between != nil {
			between(batch)
		}
	}
}

func wantOnce(t *testing.T, seen map[string]int, keys []string) {
	t.Helper()
	for _, k := range keys {
		if n := seen[k]; n != 1 {
			t.Errorf("key %s returned %d times; want once", k, n)
		}
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("key %s returned %d times; want at most once", k, n)
		}
	}
}

func TestStore_Fetch_returnsEveryLastingKeyOnceWhileThePartitionChurns(t *testing.T) {
	s, clk := newTestStore(t, Config{Partitions: 1})
	var keep []string
	for i := range 2000 {
		k := fmt.Sprint("keep", i)
		keep = append(keep, k)
		set(s, k, "v", time.Hour)
	}
	big := strings.Repeat("x", 2000)
	cleaned := s.Stats().ChunksCleaned
	seen := fetchAll(s, 0, 2000, func(batch int) {
		// New keys, short-lived keys, deletes of new keys, and large values
		// shrunk so that their room is dead and chunks are cleaned.
		for i := range 40 {
			k := fmt.Sprint("tmp", batch, "-", i)
			set(s, k, big, time.Second)
			if i%2 == 0 {
				set(s, k, "y", time.Second)
			} else {
				exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{k}})
			}
		}
		// Lasting keys change too: overwritten, grown, TTL set, deleted.
		for i := batch; i < len(keep); i += 97 {
			switch batch % 3 {
			case 0:
				set(s, keep[i], big, time.Hour)
			case 1:
				set(s, keep[i], "w", time.Hour)
			case 2:
				exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{keep[i]}})
			}
		}
		clk.Advance(700 * time.Millisecond)
		s.ExpireCycle(0, time.Second)
	})
	if got := s.Stats().ChunksCleaned; got == cleaned {
		t.Fatal("no chunk of the partition was cleaned during the walk; the test does not test that")
	}
	wantOnce(t, seen, keep)
}

func TestStore_Fetch_aNewTransferSeesKeysAnEarlierOneMissed(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	for i := range 1000 {
		set(s, fmt.Sprint("old", i), "v", time.Hour)
	}
	// A transfer reads its first batch and stops there (its puller died).
	if _, next := s.Fetch(0, 0, 500); next == 0 {
		t.Fatal("one batch held the whole partition; want several")
	}
	var late []string
	for i := range 1000 {
		k := fmt.Sprint("late", i)
		late = append(late, k)
		set(s, k, "v", time.Hour)
	}
	// A transfer that starts now must see the late keys.
	seen := fetchAll(s, 0, 500, nil)
	wantOnce(t, seen, late)
}

func TestStore_Fetch_transfersOverlappingOnOnePartition(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 20})
	keep := fillKeeping(s, "k", 4000)
	// Transfer A reads partition 0 slowly; between its batches transfer B
	// reads partition 0 from the start (taking a newer snapshot and then
	// dropping it at its end), and transfers of every other partition push
	// partition 0's snapshot out of the most recently used.
	seenB := map[string]int{}
	cursorB, doneB := uint64(0), false
	seenA := fetchAll(s, 0, 300, func(batch int) {
		set(s, fmt.Sprint("new", batch), "v", time.Hour)
		if !doneB {
			es, next := s.Fetch(0, cursorB, 600)
			for _, e := range es {
				seenB[e.Key]++
			}
			cursorB, doneB = next, next == 0
		}
		if batch%5 == 4 {
			for pi := 1; pi < s.Partitions(); pi++ {
				s.Fetch(pi, 0, 100)
			}
		}
	})
	wantOnce(t, seenA, keep)
	if !doneB {
		t.Fatal("transfer B did not finish during A; the test does not test that")
	}
	wantOnce(t, seenB, keep)
}

func TestStore_Fetch_concurrentWritesNeverHideALastingKey(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 2})
	keep := fillKeeping(s, "keep", 3000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			big := strings.Repeat("x", 1000)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprint("churn", w, "-", i%500)
				set(s, k, big[:i%1000], time.Hour)
				if i%3 == 0 {
					exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{k}})
				}
				set(s, keep[i%len(keep)], big[:i%100], time.Hour)
			}
		}()
	}
	for range 20 {
		wantOnce(t, fetchAll(s, 0, 4000, nil), keep)
	}
	close(stop)
	wg.Wait()
}

func TestPartition_installSnap_keepsTheNewer(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	set(s, "k", "v", time.Hour)
	p := s.parts[0]
	older := s.snapshot(p)
	newer := s.snapshot(p)
	if older.seq >= newer.seq {
		t.Fatalf("snapshots numbered %d then %d; want increasing", older.seq, newer.seq)
	}
	// The older snapshot finishes sorting last.
	p.mu.Lock()
	p.installSnap(older)
	got := p.snap
	p.mu.Unlock()
	if got != newer {
		t.Fatalf("partition keeps snapshot %d; want the newer %d", got.seq, newer.seq)
	}
}

func TestScanPos_isFNV1a(t *testing.T) {
	for _, k := range []string{"", "a", "session:12345", strings.Repeat("z", 300)} {
		h := fnv.New64a()
		h.Write([]byte(k))
		want := h.Sum64()>>(64-ScanPosBits+1) + 1
		if got := scanPos(k); got != want {
			t.Errorf("scanPos(%q) = %d; want %d", k, got, want)
		}
		if got := scanPosBytes([]byte(k)); got != want {
			t.Errorf("scanPosBytes(%q) = %d; want %d", k, got, want)
		}
	}
}

func TestStore_ApplyBatch_sameAsApplyingOneByOne(t *testing.T) {
	one, _ := newTestStore(t, Config{Partitions: 7})
	batch, _ := newTestStore(t, Config{Partitions: 7})
	var es []protocol.Entry
	// Long runs of one partition (past a lock run), interleaved ones,
	// stale versions, tombstones and expired entries.
	for i := range 600 {
		es = append(es, protocol.Entry{Key: fmt.Sprintf("{a}%d", i), Value: []byte(fmt.Sprint("v", i)), TTL: 60000, Version: uint64(10 + i)})
	}
	for i := range 900 {
		k := fmt.Sprint("k", i%300)
		x := protocol.Entry{Key: k, Value: []byte(fmt.Sprint("w", i)), TTL: 60000, Version: uint64(1000 - i)}
		switch i % 7 {
		case 3:
			x.Tombstone, x.Value = true, nil
		case 5:
			x.TTL = 0
		}
		es = append(es, x)
	}
	want := 0
	for i := range es {
		x := es[i]
		ok, err := one.Apply(&x)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			want++
		}
	}
	got, err := batch.ApplyBatch(es)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("ApplyBatch applied %d; want %d", got, want)
	}
	for i := range es {
		a, aok := one.Entry(es[i].Key)
		b, bok := batch.Entry(es[i].Key)
		if aok != bok || a.Version != b.Version || a.Tombstone != b.Tombstone || string(a.Value) != string(b.Value) {
			t.Fatalf("key %s: one by one %+v (%v); batch %+v (%v)", es[i].Key, a, aok, b, bok)
		}
	}
}

func TestStore_Digest_dependsOnEntriesNotLayout(t *testing.T) {
	a, _ := newTestStore(t, Config{Partitions: 1})
	b, _ := newTestStore(t, Config{Partitions: 1})
	var es []protocol.Entry
	for i := range 3000 {
		es = append(es, protocol.Entry{Key: fmt.Sprint("k", i), Value: []byte(strings.Repeat("v", i%300)), TTL: 60000, Version: uint64(i + 1)})
	}
	if _, err := a.ApplyBatch(es); err != nil {
		t.Fatal(err)
	}
	// b gets the same entries in reverse, many of them after an older
	// version of themselves that compaction then sheds.
	for i := len(es) - 1; i >= 0; i-- {
		old := es[i]
		old.Version, old.Value = 0, []byte(strings.Repeat("o", 900))
		if i%2 == 0 {
			b.Apply(&old)
		}
		b.Apply(&es[i])
	}
	sa, na := a.Digest(0)
	sb, nb := b.Digest(0)
	if sa != sb || na != nb || na != len(es) {
		t.Fatalf("digests %x/%d and %x/%d; want equal, of %d entries", sa, na, sb, nb, len(es))
	}
	// The same as hashing every entry the index holds, in index order.
	var want uint64
	p := a.parts[0]
	p.mu.Lock()
	p.forEach(func(key string, _ loc, h header) bool {
		buf := binary.LittleEndian.AppendUint64([]byte(key), h.version)
		want ^= xxhash.Sum64(append(buf, h.flags&flagTombstone))
		return true
	})
	p.mu.Unlock()
	if sa != want {
		t.Fatalf("digest %x; want %x", sa, want)
	}
	b.Apply(&protocol.Entry{Key: "k7", Value: []byte("new"), TTL: 60000, Version: 1 << 40})
	if sb2, _ := b.Digest(0); sb2 == sa {
		t.Fatal("a newer version left the digest unchanged")
	}
}

func TestPartition_locsInArenaOrder_sortsEveryIndexedEntry(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	// Many chunks, values of every size, rewrites that move entries, and
	// a value larger than a chunk.
	for i := range 5000 {
		set(s, fmt.Sprint("k", i%3000), strings.Repeat("v", i%700), time.Hour)
	}
	set(s, "big", strings.Repeat("b", chunkSize+1), time.Hour)
	p := s.parts[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.locsInArenaOrder()
	want := map[loc]bool{}
	for _, l := range p.index {
		want[l] = true
	}
	for _, l := range p.spill {
		want[l] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%d locations; want %d", len(got), len(want))
	}
	for i, l := range got {
		if !want[l] {
			t.Fatalf("location %x is not indexed", l)
		}
		if i > 0 && got[i-1] >= l {
			t.Fatalf("locations %x then %x; want ascending", got[i-1], l)
		}
	}
}

// fillKeeping sets n keys named prefix0, prefix1, ... for an hour and
// returns those of partition 0.
func fillKeeping(s *Store, prefix string, n int) []string {
	var keep []string
	for i := range n {
		k := fmt.Sprint(prefix, i)
		if s.PartitionOf(k) == 0 {
			keep = append(keep, k)
		}
		set(s, k, "v", time.Hour)
	}
	return keep
}
