package store

import (
	"errors"
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
