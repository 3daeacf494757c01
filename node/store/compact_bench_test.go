package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// BenchmarkPartition_reclaim renews the sessions of one partition of n
// sessions in turn, as a busy node does (every other pass grows them, so
// that renewals append and leave dead room), and reports the slowest
// writes: those that take dead room back. 3,700 sessions is a partition of
// a million-session node.
func BenchmarkPartition_reclaim(b *testing.B) {
	for _, n := range []int{370, 3700, 37000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := benchPartition(b, n)
			short, long := strings.Repeat("w", 200), strings.Repeat("w", 500)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("session:%08d", i)
			}
			hist := hdrhistogram.New(1, int64(time.Second), 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v := short
				if i/n%2 == 1 {
					v = long
				}
				start := time.Now()
				set(s, keys[i%n], v, time.Hour)
				_ = hist.RecordValue(time.Since(start).Nanoseconds())
				i++
			}
			b.ReportMetric(float64(hist.ValueAtQuantile(99.9))/1e3, "p99.9-µs")
			b.ReportMetric(float64(hist.Max())/1e3, "max-µs")
		})
	}
}
