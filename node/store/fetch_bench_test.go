package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchPartition fills one partition of a store with n sessions of 200
// bytes, as a partition of a million-session node holds about 3,700.
func benchPartition(b *testing.B, n int) *Store {
	b.Helper()
	s := New(Config{Partitions: 1})
	b.Cleanup(s.Flush)
	v := strings.Repeat("v", 200)
	for i := range n {
		set(s, fmt.Sprintf("session:%08d", i), v, time.Hour)
	}
	return s
}

func BenchmarkStore_Fetch_wholePartition(b *testing.B) {
	s := benchPartition(b, 4000)
	b.ReportAllocs()
	for b.Loop() {
		for cursor := uint64(0); ; {
			_, next := s.Fetch(0, cursor, 768<<10)
			if next == 0 {
				break
			}
			cursor = next
		}
	}
}

func BenchmarkStore_Digest(b *testing.B) {
	s := benchPartition(b, 4000)
	b.ReportAllocs()
	for b.Loop() {
		s.Digest(0)
	}
}

func BenchmarkStore_snapshot(b *testing.B) {
	s := benchPartition(b, 4000)
	b.ReportAllocs()
	for b.Loop() {
		s.snapshot(s.parts[0])
	}
}

// BenchmarkStore_Digest_cold digests the partitions of a million-session
// store in turn, so that (as on a node) the entries are not in the cache.
func BenchmarkStore_Digest_cold(b *testing.B) {
	s := New(Config{})
	b.Cleanup(s.Flush)
	v := strings.Repeat("v", 200)
	for i := range 1_000_000 {
		set(s, fmt.Sprintf("session:%08d", i), v, time.Hour)
	}
	b.ReportAllocs()
	pi := 0
	for b.Loop() {
		s.Digest(pi)
		pi = (pi + 1) % s.Partitions()
	}
}
