package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Regression tests for bugs found in review. Each names what broke.

// A key longer than the entry header's 16-bit length field used to be
// stored with a truncated length: the entry overran its slot and overwrote
// its neighbours. Node requests are bounded by Limits first, but Apply (from
// peers) and direct callers are not.
func TestStore_keyLongerThanHeaderField_isRefusedAndNeighboursIntact(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	for _, k := range []string{"a", "b", "c"} {
		set(s, k, strings.Repeat(k, 100), time.Hour)
	}
	long := strings.Repeat("k", 1<<16+10)
	resp := set(s, long, "v", time.Hour)
	if !errors.Is(resp.Err(), protocol.ErrTooLarge) {
		t.Errorf("set with a %d-byte key: got %v; want ErrTooLarge", len(long), resp.Err())
	}
	if ok, err := s.Apply(&protocol.Entry{Key: long, Value: []byte("v"), TTL: 1000, Version: 1}); ok || err == nil {
		t.Errorf("Apply with a %d-byte key: got %v, %v; want false and an error", len(long), ok, err)
	}
	for _, k := range []string{"a", "b", "c"} {
		wantValue(t, s, k, strings.Repeat(k, 100))
	}
	if err := checkAccounting(s); err != nil {
		t.Error(err)
	}
}

// Deleted sessions used to keep their value's room for as long as their
// tombstone lived (an hour past their deadline), uncounted as dead, so
// compaction never gave it back: a logout-heavy workload held every deleted
// session's bytes.
func TestStore_Delete_givesTheValueRoomBack(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	var keys []string
	for i := range 200 {
		k := fmt.Sprint("sess:", i)
		keys = append(keys, k)
		set(s, k, strings.Repeat("v", 8<<10), time.Hour)
	}
	full := s.Stats().ArenaBytes
	if resp := exec(s, protocol.Request{Op: protocol.OpDelete, Keys: keys}); resp.N != 200 {
		t.Fatalf("delete: got %d deleted; want 200", resp.N)
	}
	if got := s.Stats().ArenaBytes; got > full/4 {
		t.Errorf("arena after deleting every session: got %d bytes; want at most a quarter of %d", got, full)
	}
	if st := s.Stats(); st.Tombstones != 200 || st.Keys != 0 {
		t.Errorf("got %d tombstones, %d keys; want 200, 0", st.Tombstones, st.Keys)
	}
	if err := checkAccounting(s); err != nil {
		t.Error(err)
	}
}

// An overwrite with a much smaller value used to stay in the big entry's
// room for good, and that room was never counted as dead.
func TestStore_Set_shrinkingValueGivesRoomBack(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	for i := range 100 {
		set(s, fmt.Sprint("sess:", i), strings.Repeat("v", 8<<10), time.Hour)
	}
	full := s.Stats().ArenaBytes
	for i := range 100 {
		set(s, fmt.Sprint("sess:", i), "small", time.Hour)
	}
	if got := s.Stats().ArenaBytes; got > full/4 {
		t.Errorf("arena after shrinking every value: got %d bytes; want at most a quarter of %d", got, full)
	}
	for i := range 100 {
		wantValue(t, s, fmt.Sprint("sess:", i), "small")
	}
	if err := checkAccounting(s); err != nil {
		t.Error(err)
	}
}
