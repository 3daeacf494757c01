package store

import (
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// gcBenchSessions is how many sessions BenchmarkStore_GCPauses holds.
const gcBenchSessions = 2_000_000

// BenchmarkStore_GCPauses holds two million 200-byte sessions (40-byte
// keys, each with a TTL) in one store and measures the garbage collector's
// stop-the-world pauses, from runtime/metrics, while four workers run a
// get/set/touch workload and GC cycles happen, many of them forced. It
// reports the pause p99 and maximum over the measured span, the p99 of the
// part of each pause spent waiting for running goroutines to stop (on a
// busy shared machine, mostly waiting for the OS to run our threads), and
// the number of GC cycles in it.
//
// The sessions=0 case runs the same workload on an empty store: the
// baseline of the machine and runtime, to compare against in the same run.
//
//	go test ./node/store -run '^$' -bench GCPauses -benchtime 5s -count 3
func BenchmarkStore_GCPauses(b *testing.B) {
	b.Run("sessions=0", func(b *testing.B) { benchGCPauses(b, 0) })
	b.Run("sessions=2M", func(b *testing.B) { benchGCPauses(b, gcBenchSessions) })
}

func benchGCPauses(b *testing.B, sessions int) {
	s := New(Config{})
	value := make([]byte, 200)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	var resp protocol.Response
	for i := range sessions {
		s.Exec(&protocol.Request{Op: protocol.OpSet, Key: gcBenchKey(i), Value: value, TTL: time.Hour.Milliseconds()}, &resp)
		if resp.Code != protocol.CodeOK {
			b.Fatalf("load session %d: %v", i, resp.Err())
		}
	}
	if st := s.Stats(); st.Keys != int64(sessions) {
		b.Fatalf("store holds %d sessions; want %d", st.Keys, sessions)
	}
	runtime.GC()
	before := readGCMetrics()

	// Background traffic and forced collections for as long as the
	// benchmark loop runs.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var resp protocol.Response
			for !stop.Load() {
				gcBenchOp(s, rng, value, &resp, sessions)
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			time.Sleep(20 * time.Millisecond) // paces forced GCs; not a test wait
			runtime.GC()
		}
	})

	rng := rand.New(rand.NewPCG(99, 1))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		gcBenchOp(s, rng, value, &resp, sessions)
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	runtime.GC()
	after := readGCMetrics()

	pauses := after.pauses.sub(before.pauses)
	b.ReportMetric(pauses.quantile(0.99)*1e3, "p99-gc-pause-ms")
	b.ReportMetric(pauses.quantile(1)*1e3, "max-gc-pause-ms")
	b.ReportMetric(after.stopping.sub(before.stopping).quantile(0.99)*1e3, "p99-gc-stopping-ms")
	b.ReportMetric(float64(after.cycles-before.cycles), "gc-cycles")
	b.ReportMetric(float64(after.heapLive)/(1<<20), "heap-live-MiB")
	b.ReportMetric(float64(s.Stats().UsedMemory())/(1<<20), "store-MiB")
	s.Flush()
}

// gcBenchOp runs one request of the workload: 45% get, 45% set, 10% touch,
// on a random one of sessions (or, for 0, of a small key space), with a
// fresh key string as a web server would have.
func gcBenchOp(s *Store, rng *rand.Rand, value []byte, resp *protocol.Response, sessions int) {
	req := protocol.Request{Key: gcBenchKey(rng.IntN(max(sessions, 1000))), TTL: time.Hour.Milliseconds()}
	switch n := rng.IntN(100); {
	case n < 45:
		req.Op = protocol.OpGet
	case n < 90:
		req.Op, req.Value = protocol.OpSet, value
	default:
		req.Op = protocol.OpTouch
	}
	s.Exec(&req, resp)
}

// gcBenchKey returns session i's key: "session:" and 32 hex digits.
func gcBenchKey(i int) string {
	var buf [40]byte
	b := append(buf[:0], "session:"...)
	for _, x := range [2]uint64{uint64(i) * 0x9e3779b97f4a7c15, uint64(i) ^ 0xbf58476d1ce4e5b9} {
		h := strconv.FormatUint(x|1<<63, 16) // 16 digits
		b = append(b, h...)
	}
	return string(b)
}

// gcMetrics is a snapshot of the runtime's GC metrics.
type gcMetrics struct {
	pauses   pauseHist // whole stop-the-world pauses
	stopping pauseHist // the stopping phase of each: waiting for goroutines to stop
	cycles   uint64
	heapLive uint64
}

// pauseHist is a histogram of pause durations in seconds.
type pauseHist struct {
	counts  []uint64
	buckets []float64 // len(counts)+1 boundaries
}

func readGCMetrics() gcMetrics {
	samples := []metrics.Sample{
		{Name: "/gc/pauses:seconds"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/sched/pauses/stopping/gc:seconds"},
	}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindBad {
		// The deprecated name may go away; this is the same histogram.
		samples[0].Name = "/sched/pauses/total/gc:seconds"
		metrics.Read(samples[:1])
	}
	h := samples[0].Value.Float64Histogram()
	st := samples[3].Value.Float64Histogram()
	return gcMetrics{
		pauses:   pauseHist{counts: append([]uint64(nil), h.Counts...), buckets: h.Buckets},
		stopping: pauseHist{counts: append([]uint64(nil), st.Counts...), buckets: st.Buckets},
		cycles:   samples[1].Value.Uint64(),
		heapLive: samples[2].Value.Uint64(),
	}
}

// sub returns the pauses in h that are not in earlier.
func (h pauseHist) sub(earlier pauseHist) pauseHist {
	d := pauseHist{counts: make([]uint64, len(h.counts)), buckets: h.buckets}
	for i := range h.counts {
		d.counts[i] = h.counts[i] - earlier.counts[i]
	}
	return d
}

// quantile returns the upper bound of the bucket holding quantile q of the
// pauses (an overestimate by at most the bucket width), or 0 if none.
func (h pauseHist) quantile(q float64) float64 {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			if hi := h.buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return h.buckets[i]
		}
	}
	return h.buckets[len(h.buckets)-1]
}
