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

// cleanWhole cleans chunk v to the end, a batch at a time, as writes do.
func cleanWhole(p *partition, v int) error {
	p.victim, p.victimOff = v, 0
	for {
		released, err := p.cleanStep(cleanBatch)
		if released || err != nil {
			return err
		}
	}
}

func TestPartition_cleanStep_movesLiveEntriesTrimmedAndReleasesTheChunk(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	p := s.parts[0]
	set(s, "roomy", strings.Repeat("r", 100), time.Hour)
	set(s, "roomy", strings.Repeat("s", 60), time.Hour) // in place: 40 bytes of room to spare
	set(s, "gone", "g", time.Hour)
	exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{"gone"}})
	set(s, "kept", "k", time.Hour)

	p.mu.Lock()
	old, _ := p.lookup("roomy")
	v := old.chunk()
	p.cur = -1 // the next append takes a new chunk, so that v can be cleaned
	err := cleanWhole(p, v)
	moved, _ := p.lookup("roomy")
	h := readHeader(p.entryAt(moved))
	released := p.chunks[v] == nil
	p.mu.Unlock()

	if err != nil {
		t.Fatal(err)
	}
	if !released {
		t.Fatal("the cleaned chunk was not released")
	}
	if h.valCap != 60 {
		t.Errorf("moved entry has %d bytes of value room; want 60, its value", h.valCap)
	}
	wantValue(t, s, "roomy", strings.Repeat("s", 60))
	wantValue(t, s, "kept", "k")
	wantMissing(t, s, "gone")
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
}

// TestStore_writes_keepTheArenaNearItsLiveBytes churns one partition with
// overwrites of every size and deletes, as sessions are renewed and ended,
// and checks that writes take the dead room back a chunk at a time (no
// write releases more than one chunk), without compacting the partition
// whole, and keep the arena within about twice the bytes the index
// references.
func TestStore_writes_keepTheArenaNearItsLiveBytes(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	p := s.parts[0]
	rng := rand.New(rand.NewPCG(1, 2))
	held := func() map[*byte]bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		m := make(map[*byte]bool, len(p.chunks))
		for _, c := range p.chunks {
			if c != nil {
				m[&c[0]] = true
			}
		}
		return m
	}
	const keys = 5000
	for round := range 30 {
		for i := range keys {
			before := held()
			k := fmt.Sprint("session:", i)
			if rng.IntN(10) == 0 {
				exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{k}})
			} else {
				set(s, k, strings.Repeat("v", 50+rng.IntN(350)), time.Hour)
			}
			released := 0
			after := held()
			for c := range before {
				if !after[c] {
					released++
				}
			}
			if released > 1 {
				t.Fatalf("round %d: one write released %d chunks; want at most one", round, released)
			}
		}
		p.mu.Lock()
		arena, used := p.arenaBytes(), p.used
		p.mu.Unlock()
		if limit := 2*used + 3*chunkSize; arena > limit {
			t.Fatalf("round %d: arena %d bytes for %d used; want at most %d", round, arena, used, limit)
		}
	}
	st := s.Stats()
	if st.ChunksCleaned == 0 || st.Compactions != 0 {
		t.Fatalf("stats %+v: want chunks cleaned by writes and no partition compacted whole", st)
	}
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
}

func TestPartition_cleanStep_withNothingToMap_stopsWithEveryKeyIntact(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	p := s.parts[0]
	const n = 1000
	for i := range n {
		set(s, fmt.Sprint("k", i), strings.Repeat("v", 200), time.Hour)
	}
	s.alloc.mu.Lock()
	s.alloc.warm, s.alloc.spare, s.alloc.cold = nil, nil, nil
	s.alloc.mapper = func(int) ([]byte, error) { return nil, errors.New("no memory to map") }
	s.alloc.mu.Unlock()

	p.mu.Lock()
	l, _ := p.lookup("k0")
	v := l.chunk()
	err := cleanWhole(p, v) // moves what fits in the current chunk's end, then fails
	kept := p.chunks[v] != nil
	p.mu.Unlock()

	if err == nil || !kept {
		t.Fatalf("cleaning with nothing to map: err %v, chunk kept %v; want an error and the chunk kept", err, kept)
	}
	for i := range n {
		wantValue(t, s, fmt.Sprint("k", i), strings.Repeat("v", 200))
	}
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
}

// TestStore_cleaning_endsWhenOnlyUnusedEndsAreLeft: chunks that hold one
// large entry each leave most of their room unused at the end; cleaning
// must not take them for dead room, moving one after another for ever.
func TestStore_cleaning_endsWhenOnlyUnusedEndsAreLeft(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	p := s.parts[0]
	del := func(k string) { exec(s, protocol.Request{Op: protocol.OpDelete, Keys: []string{k}}) }
	for i := range 30 {
		set(s, fmt.Sprint("a", i), strings.Repeat("a", 21000), time.Hour) // three to a chunk
	}
	for i := range 5 {
		set(s, fmt.Sprint("t", i), strings.Repeat("t", 33000), time.Hour) // one to a chunk, half of it unused
	}
	for i := range 20 {
		set(s, fmt.Sprint("z", i), strings.Repeat("z", 21000), time.Hour)
	}
	for i := 0; i < 30; i += 3 {
		del(fmt.Sprint("a", i))
	}
	for i := range 20 {
		del(fmt.Sprint("z", i))
	}
	cleaned := s.Stats().ChunksCleaned
	for i := range 1000 {
		set(s, "small", fmt.Sprint(i%10), time.Hour) // in place after the first
	}
	p.mu.Lock()
	cleaning := p.cleaning
	p.mu.Unlock()
	if n := s.Stats().ChunksCleaned - cleaned; cleaning || n > 30 {
		t.Fatalf("after 1,000 writes: still cleaning %v, %d chunks cleaned; want cleaning over after a few", cleaning, n)
	}
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
}

// midClean returns a store whose one partition is cleaning, part way
// through a chunk that still holds live entries.
func midClean(t *testing.T) (*Store, *partition) {
	t.Helper()
	s, _ := newTestStore(t, Config{Partitions: 1})
	p := s.parts[0]
	const n = 2000
	for i := range n {
		set(s, fmt.Sprint("k", i), strings.Repeat("v", 200), time.Hour)
	}
	for i := range n {
		if i%3 == 0 {
			continue // a third stay where they are, live
		}
		set(s, fmt.Sprint("k", i), strings.Repeat("w", 50), time.Hour) // appended: the 200-byte room is dead
		p.mu.Lock()
		mid := p.cleaning && p.victim >= 0 && p.victimOff > 0
		p.mu.Unlock()
		if mid {
			return s, p
		}
	}
	t.Fatal("writes never started cleaning")
	return nil, nil
}

func wantKeys(t *testing.T, s *Store) {
	t.Helper()
	for i := range 2000 {
		if r := get(s, fmt.Sprint("k", i)); r.Code != protocol.CodeOK {
			t.Fatalf("k%d lost: %v", i, r.Code)
		}
	}
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
}

func TestStore_cleaning_withNothingToMap_stopsAndKeepsEveryKey(t *testing.T) {
	s, p := midClean(t)
	if err := checkAccounting(s); err != nil {
		t.Fatal(err)
	}
	s.alloc.mu.Lock()
	s.alloc.warm, s.alloc.spare, s.alloc.cold = nil, nil, nil
	s.alloc.mapper = func(int) ([]byte, error) { return nil, errors.New("no memory to map") }
	s.alloc.mu.Unlock()
	p.mu.Lock()
	p.cur = -1 // the next append needs a new chunk: cleaning has nowhere to move an entry
	p.mu.Unlock()
	for i := 0; ; i++ {
		set(s, "k0", fmt.Sprint(i%10), time.Hour) // in place: needs no memory
		p.mu.Lock()
		cleaning := p.cleaning
		p.mu.Unlock()
		if !cleaning {
			break
		}
		if i == 10000 {
			t.Fatal("cleaning went on with no memory to move entries to")
		}
	}
	wantKeys(t, s)
}

func TestStore_cleaning_compactedOrFlushedMidway_goesOnSound(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(s *Store, p *partition)
	}{
		{"compacted whole, as eviction does", func(s *Store, p *partition) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if err := p.compact(); err != nil {
				t.Fatal(err)
			}
		}},
		{"flushed", func(s *Store, p *partition) { s.Flush() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := midClean(t)
			tc.do(s, p)
			for i := range 2000 {
				set(s, fmt.Sprint("k", i), strings.Repeat("x", 20+i%300), time.Hour)
			}
			wantKeys(t, s)
		})
	}
}
