package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkStore_logout ends a random live session and starts a new one,
// over a store of n sessions of 200 bytes: the steady state of logins and
// logouts. Each delete leaves its session's room dead, which the writes
// take back (clean.go).
func BenchmarkStore_logout(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := New(Config{Partitions: 271})
			b.Cleanup(s.Flush)
			v := strings.Repeat("v", 200)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("session:%012d", i)
				set(s, keys[i], v, time.Hour)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			next := n
			hist := hdrhistogram.New(1, int64(time.Second), 3)
			b.ReportAllocs()
			for b.Loop() {
				i := rng.IntN(n)
				start := time.Now()
				if del(s, nil, keys[i]) != 1 {
					b.Fatalf("delete %s found nothing", keys[i])
				}
				_ = hist.RecordValue(time.Since(start).Nanoseconds())
				keys[i] = fmt.Sprintf("session:%012d", next)
				next++
				set(s, keys[i], v, time.Hour)
			}
			b.ReportMetric(float64(hist.ValueAtQuantile(50))/1e3, "del-p50-µs")
			b.ReportMetric(float64(hist.ValueAtQuantile(99.9))/1e3, "del-p99.9-µs")
		})
	}
}
