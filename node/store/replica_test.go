package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestStore_Apply_onlyNewerVersionsWin(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	apply := func(x protocol.Entry) bool {
		t.Helper()
		ok, err := s.Apply(&x)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !apply(protocol.Entry{Key: "k", Value: []byte("v2"), TTL: 60000, Version: 2}) {
		t.Fatal("first apply refused")
	}
	if apply(protocol.Entry{Key: "k", Value: []byte("v1"), TTL: 60000, Version: 1}) {
		t.Fatal("older version applied")
	}
	wantValue(t, s, "k", "v2")
	if !apply(protocol.Entry{Key: "k", TTL: 60000, Version: 3, Tombstone: true}) {
		t.Fatal("tombstone refused")
	}
	// A stale copy arriving late must not resurrect the deleted session.
	if apply(protocol.Entry{Key: "k", Value: []byte("v2"), TTL: 60000, Version: 2}) {
		t.Fatal("stale copy resurrected a deleted key")
	}
	wantMissing(t, s, "k")
	// Writes after applying number above the applied versions.
	if r := set(s, "k", "v4", time.Minute); r.Version <= 3 {
		t.Fatalf("local write got version %d; want above 3", r.Version)
	}
}

func TestStore_Apply_keepsRemainingTTL(t *testing.T) {
	s, clk := newTestStore(t, Config{})
	s.Apply(&protocol.Entry{Key: "k", Value: []byte("v"), TTL: 1500, Version: 1})
	clk.Advance(1499 * time.Millisecond)
	wantValue(t, s, "k", "v")
	clk.Advance(2 * time.Millisecond)
	wantMissing(t, s, "k")
}

func TestStore_Fetch_movesAPartitionWithTombstones(t *testing.T) {
	src, _ := newTestStore(t, Config{Partitions: 3})
	dst, clk := newTestStore(t, Config{Partitions: 3})
	for i := range 3000 {
		set(src, fmt.Sprint("k", i), fmt.Sprint("v", i), time.Duration(i+1)*time.Second)
	}
	exec(src, protocol.Request{Op: protocol.OpDelete, Keys: []string{"k1", "k2"}})
	for p := range src.Partitions() {
		cursor := uint64(0)
		for {
			es, next := src.Fetch(p, cursor, 4096)
			for i := range es {
				if _, err := dst.Apply(&es[i]); err != nil {
					t.Fatal(err)
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	// Stale copies of the deleted keys arrive: the moved tombstones win.
	if ok, _ := dst.Apply(&protocol.Entry{Key: "k1", Value: []byte("old"), TTL: 60000, Version: 1}); ok {
		t.Fatal("stale copy beat a moved tombstone")
	}
	for i := range 3000 {
		k := fmt.Sprint("k", i)
		if i == 1 || i == 2 {
			wantMissing(t, dst, k)
			continue
		}
		wantValue(t, dst, k, fmt.Sprint("v", i))
	}
	clk.Advance(1500 * time.Millisecond)
	wantMissing(t, dst, "k0") // 1s TTL moved as remaining time
	wantValue(t, dst, "k3", "v3")
}

func TestStore_Revert_undoesOnlyTheUnacknowledgedWrite(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	set(s, "k", "old", time.Minute)
	prev, had := s.Entry("k")
	w := set(s, "k", "new", time.Minute)
	if !s.Revert("k", w.Version, prev, had) {
		t.Fatal("revert refused")
	}
	if g := wantValue(t, s, "k", "old"); g.Version != prev.Version {
		t.Fatalf("version after revert %d; want %d", g.Version, prev.Version)
	}
	// A write that came after is not undone.
	w2 := set(s, "k", "newer", time.Minute)
	if s.Revert("k", w2.Version-1, prev, had) {
		t.Fatal("reverted a newer write")
	}
	wantValue(t, s, "k", "newer")
	// A key that did not exist is removed again.
	_, had = s.Entry("fresh")
	w3 := set(s, "fresh", "x", time.Minute)
	s.Revert("fresh", w3.Version, protocol.Entry{}, had)
	wantMissing(t, s, "fresh")
}

func TestStore_Fetch_batchesNeverPassTheirBudget(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	big := strings.Repeat("v", 600)
	for i := range 10 {
		set(s, fmt.Sprint("k", i), big, time.Minute)
	}
	seen, cursor := 0, uint64(0)
	for {
		es, next := s.Fetch(0, cursor, 1000)
		size := 0
		for _, e := range es {
			size += len(e.Key) + len(e.Value) + 32
		}
		if len(es) == 0 || (len(es) > 1 && size > 1000) {
			t.Fatalf("batch of %d entries, %d bytes; want 1 or more within 1000 bytes", len(es), size)
		}
		seen += len(es)
		if next == 0 {
			break
		}
		cursor = next
	}
	if seen != 10 {
		t.Fatalf("fetched %d entries; want 10", seen)
	}
}
