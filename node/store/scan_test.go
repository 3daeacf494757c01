package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// A key whose match is costly counts as several examined: a pattern of a
// 1 KiB class against keys of 1 KiB (a millisecond a key) gets pages of
// one key or two, not of the 100 keys a cheap pattern gets, and paging
// still finds each match once.
func TestStore_Scan_costlyMatchesCountAsSeveralKeys(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	const keys = 60
	for i := range keys {
		last := "a"
		if i%10 == 0 {
			last = "b" // matches
		}
		set(s, fmt.Sprintf("%04d", i)+strings.Repeat("a", 1000)+last, "v", time.Minute)
	}
	pattern := "*[" + strings.Repeat("bc", 500) + "]"
	if _, steps := protocol.MatchGlobCost(pattern, strings.Repeat("a", 1005)); steps < 100*matchStepsPerKey {
		t.Fatalf("the pattern takes %d steps a key; the test needs a costly one", steps)
	}
	var want, found []string
	for i := range keys {
		if i%10 == 0 {
			want = append(want, fmt.Sprintf("%04d", i)+strings.Repeat("a", 1000)+"b")
		}
	}
	pages := 0
	for cursor := uint64(0); ; pages++ {
		r := exec(s, protocol.Request{Op: protocol.OpScan, Cursor: cursor, Count: 10, Pattern: pattern})
		found = append(found, r.Keys...)
		if r.Cursor == 0 {
			break
		}
		if r.N < 100 {
			t.Fatalf("page %d counted %d keys examined, under its bound of 100, yet stopped", pages, r.N)
		}
		cursor = r.Cursor
	}
	slices.Sort(found)
	if !slices.Equal(found, want) {
		t.Errorf("paging found %d keys %.20q; want each of the %d matching keys once", len(found), found, len(want))
	}
	if pages < keys/2 {
		t.Errorf("%d pages for %d costly keys; want at least %d (one or two keys each)", pages+1, keys, keys/2)
	}
}
