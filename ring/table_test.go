package ring

import (
	"fmt"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i+1)
	}
	return out
}

func mustCompute(t *testing.T, members []string, partitions, replicas int) *Table {
	t.Helper()
	tb, err := Compute(members, partitions, replicas, 1)
	if err != nil {
		t.Fatalf("Compute(%v): %v", members, err)
	}
	return tb
}

func TestCompute_deterministicAndOrderFree(t *testing.T) {
	a := mustCompute(t, []string{"c", "a", "b"}, DefaultPartitions, 2)
	b := mustCompute(t, []string{"b", "c", "a"}, DefaultPartitions, 2)
	for p := range DefaultPartitions {
		if !slices.Equal(a.Holders(p), b.Holders(p)) {
			t.Fatalf("partition %d: %v vs %v", p, a.Holders(p), b.Holders(p))
		}
	}
}

func TestCompute_holdersAreDistinct(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 9} {
		for _, r := range []int{1, 2, 3} {
			tb := mustCompute(t, names(n), DefaultPartitions, r)
			want := min(n, r)
			for p := range DefaultPartitions {
				h := tb.Holders(p)
				if len(h) != want {
					t.Fatalf("n=%d r=%d p=%d: %d holders; want %d", n, r, p, len(h), want)
				}
				s := slices.Clone(h)
				slices.Sort(s)
				if len(slices.Compact(s)) != len(h) {
					t.Fatalf("n=%d r=%d p=%d: duplicate holders %v", n, r, p, h)
				}
			}
		}
	}
}

func TestCompute_backupIsPromotedWhenPrimaryLeaves(t *testing.T) {
	all := names(5)
	full := mustCompute(t, all, DefaultPartitions, 2)
	for _, gone := range all {
		rest := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == gone })
		after := mustCompute(t, rest, DefaultPartitions, 2)
		for p := range DefaultPartitions {
			if full.Primary(p) == gone && after.Primary(p) != full.Holders(p)[1] {
				t.Fatalf("%s left: partition %d went to %s; want its backup %s", gone, p, after.Primary(p), full.Holders(p)[1])
			}
		}
	}
}

func TestCompute_crashSpreadsLoad(t *testing.T) {
	all := names(5)
	full := mustCompute(t, all, DefaultPartitions, 2)
	for _, gone := range all {
		// The backups of one node's partitions are spread over every peer.
		backups := map[string]int{}
		for p := range DefaultPartitions {
			if full.Primary(p) == gone {
				backups[full.Holders(p)[1]]++
			}
		}
		if len(backups) != len(all)-1 {
			t.Errorf("%s's partitions are backed up on %d peers (%v); want all %d", gone, len(backups), backups, len(all)-1)
		}
		rest := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == gone })
		after := mustCompute(t, rest, DefaultPartitions, 2)
		avg := float64(DefaultPartitions) / float64(len(rest))
		for m, n := range after.PrimaryCounts() {
			if float64(n) > 1.3*avg {
				t.Errorf("after %s died, %s owns %d primaries; average %.1f, limit 1.3x", gone, m, n, avg)
			}
		}
	}
}

func TestCompute_refusesWhatTheLibraryWouldPanicOn(t *testing.T) {
	if _, err := Compute(names(10), 5, 2, 1); err == nil {
		t.Error("more members than partitions: no error")
	}
	if _, err := Compute(nil, 271, 2, 1); err == nil {
		t.Error("no members: no error")
	}
	if _, err := Compute([]string{"a", "a"}, 271, 2, 1); err == nil {
		t.Error("duplicate members: no error")
	}
	// Tight fits that a load factor of 1 would not distribute.
	for _, n := range []int{2, 3, 7, 100, 271} {
		if _, err := Compute(names(n), 271, 1, 1); err != nil {
			t.Errorf("%d members: %v", n, err)
		}
	}
}

func TestCompute_namesEndingInDigitsDoNotCollide(t *testing.T) {
	tb := mustCompute(t, []string{"member1", "member10", "member", "member0"}, DefaultPartitions, 1)
	for m, n := range tb.PrimaryCounts() {
		if n == 0 {
			t.Errorf("%s owns nothing", m)
		}
	}
	if len(tb.PrimaryCounts()) != 4 {
		t.Fatalf("primaries on %d members; want 4", len(tb.PrimaryCounts()))
	}
}

func BenchmarkCompute5(b *testing.B) {
	for b.Loop() {
		_, _ = Compute(names(5), DefaultPartitions, 2, 1)
	}
}
