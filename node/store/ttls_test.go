package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// TestStore_ttls_everyPathTheModelSkips drives the paths the model test does
// not (PERSIST, KEEPTTL, a touch into the past, Apply and Revert over live
// keys and tombstones, DeleteMatch, atomic batches, eviction, DropPartition)
// and checks KeysWithTTL and the accounting after each.
func TestStore_ttls_everyPathTheModelSkips(t *testing.T) {
	s, clk := newTestStore(t, Config{Partitions: 2, TombstoneTTL: time.Second})
	want := func(what string, keys, ttls int64) {
		t.Helper()
		st := s.Stats()
		if st.Keys != keys || st.KeysWithTTL != ttls {
			t.Errorf("%s: %d keys, %d with a TTL; want %d, %d", what, st.Keys, st.KeysWithTTL, keys, ttls)
		}
		if err := checkAccounting(s); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	set(s, "a", "v", time.Hour)
	set(s, "b", "v", time.Hour)
	exec(s, protocol.Request{Op: protocol.OpSet, Key: "c", Value: []byte("v"), Flags: protocol.FlagNoTTL})
	want("sets", 3, 2)
	exec(s, protocol.Request{Op: protocol.OpTouch, Key: "a", Flags: protocol.FlagNoTTL})
	want("persist", 3, 1)
	exec(s, protocol.Request{Op: protocol.OpGetAndTouch, Key: "a", TTL: 5000, Flags: protocol.FlagAllowPast})
	want("getex ex", 3, 2)
	exec(s, protocol.Request{Op: protocol.OpSet, Key: "a", Value: []byte(strings.Repeat("x", 500)), Flags: protocol.FlagKeepTTL})
	want("keepttl, appended", 3, 2)
	exec(s, protocol.Request{Op: protocol.OpGetAndTouch, Key: "b", TTL: 0, Flags: protocol.FlagAllowPast})
	want("getex into the past", 2, 1)
	// Apply: live without a TTL over a live key with one; tombstone over
	// live; live over tombstone.
	e, _ := s.Entry("a")
	s.Apply(&protocol.Entry{Key: "a", Value: []byte("w"), TTL: -1, Version: e.Version + 1})
	want("apply without ttl", 2, 0)
	e, _ = s.Entry("c")
	s.Apply(&protocol.Entry{Key: "c", Tombstone: true, TTL: -1, Version: e.Version + 1})
	want("apply tombstone", 1, 0)
	e, _ = s.Entry("c")
	s.Apply(&protocol.Entry{Key: "c", Value: []byte("back"), TTL: 9000, Version: e.Version + 1})
	want("apply over tombstone", 2, 1)
	prev, had := s.Entry("c")
	w := exec(s, protocol.Request{Op: protocol.OpSet, Key: "c", Value: []byte("new"), Flags: protocol.FlagNoTTL})
	want("set over ttl", 2, 0)
	s.Revert("c", w.Version, prev, had)
	want("revert", 2, 1)
	// Atomic batch.
	r1 := &protocol.Request{Op: protocol.OpTouch, Key: "a", TTL: 1000}
	r2 := &protocol.Request{Op: protocol.OpGetAndTouch, Key: "a", Flags: protocol.FlagNoTTL}
	r3 := &protocol.Request{Op: protocol.OpTouch, Key: "a", TTL: 3000}
	if err := s.ExecAtomic([]*protocol.Request{r1, r2, r3}, []*protocol.Response{{}, {}, {}}); err != nil {
		t.Fatal(err)
	}
	want("atomic", 2, 2)
	for i := range 50 {
		set(s, fmt.Sprint("m", i), "v", time.Hour)
	}
	want("more", 52, 52)
	for pi := range 2 {
		exec(s, protocol.Request{Op: protocol.OpDeleteMatch, Partition: int32(pi), Pattern: "m*"})
	}
	want("deletematch", 2, 2)
	clk.Advance(10 * time.Second)
	s.ExpireCycle(0, time.Hour)
	s.ExpireCycle(0, time.Hour)
	get(s, "a")
	get(s, "c")
	want("expired", 0, 0)
	for i := range 50 {
		set(s, fmt.Sprint("m", i), "v", time.Hour)
	}
	s.DropPartition(0)
	s.DropPartition(1)
	want("dropped", 0, 0)
}
