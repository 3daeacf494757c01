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
	s.alloc.free = nil
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
