package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// benchConfig is the workload of one bench run.
type benchConfig struct {
	target    string // "cloakroom" or "redis"
	redisAddr string
	conns     int // client connections per node (cloakroom target)

	workers   int
	duration  time.Duration // ignored when count > 0
	count     int64         // total operations; 0 means run for duration
	valueSize int
	keys      int
	keyPrefix string
	getPct    int // share of gets in percent; the rest are sets
	ttl       time.Duration
	preload   bool // write every key once before measuring
	loadOnly  bool // preload, report and stop
	progress  time.Duration
	jsonOut   bool
}

// workerStats are one worker's counters. Only its worker writes them; the
// progress line reads them atomically. Padding keeps workers off each
// other's cache lines.
type workerStats struct {
	ops    atomic.Int64
	errors atomic.Int64
	misses atomic.Int64
	_      [40]byte
}

// benchResult is what a run reports; its JSON form is for scripts.
type benchResult struct {
	Target    string  `json:"target"`
	Workers   int     `json:"workers"`
	ValueSize int     `json:"value_size"`
	Keys      int     `json:"keys"`
	GetPct    int     `json:"get_pct"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	Misses    int64   `json:"misses"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     int64   `json:"p50_us"`
	P99us     int64   `json:"p99_us"`
	P999us    int64   `json:"p999_us"`
	MaxUs     int64   `json:"max_us"`
	FirstErr  string  `json:"first_error,omitempty"`
	// Interrupted is set when the run was stopped (Ctrl-C) before its
	// duration or count: the figures cover the part that ran.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Latencies are recorded in microseconds, from 1µs to one minute, to three
// significant digits.
const histMaxUs = int64(time.Minute / time.Microsecond)

func cmdBench(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("bench")
	var cfg benchConfig
	var ratio string
	fs.StringVar(&cfg.target, "target", "cloakroom", "what to load: cloakroom (--addr) or redis (--redis-addr, via go-redis)")
	fs.StringVar(&cfg.redisAddr, "redis-addr", "127.0.0.1:6379", "redis-server address for --target redis")
	fs.IntVar(&cfg.conns, "conns", 0, "client connections per node for --target cloakroom (0: client default)")
	fs.IntVar(&cfg.workers, "workers", 50, "concurrent workers (and go-redis pool size)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to run, unless --count is set")
	fs.Int64Var(&cfg.count, "count", 0, "total operations to run (0: run for --duration)")
	fs.IntVar(&cfg.valueSize, "value-size", 200, "value size in bytes")
	fs.IntVar(&cfg.keys, "keys", 100_000, "key space: distinct session keys")
	fs.StringVar(&cfg.keyPrefix, "key-prefix", "session:", "key prefix, followed by 32 hex digits")
	fs.StringVar(&ratio, "ratio", "50:50", "get:set ratio")
	fs.DurationVar(&cfg.ttl, "ttl", 30*time.Minute, "time to live of every set")
	fs.BoolVar(&cfg.preload, "preload", true, "write every key once before measuring, so gets hit")
	fs.BoolVar(&cfg.loadOnly, "load-only", false, "only write every key once, report the load rate and stop")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "progress line interval on stderr (0: none)")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the result as one JSON object")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) > 0 {
		return e.usageError("bench", "unexpected arguments %q", pos)
	}
	if msg := cfg.check(ratio); msg != "" {
		return e.usageError("bench", "%s", msg)
	}
	var t benchTarget
	switch cfg.target {
	case "cloakroom":
		if t, err = newCloakroomTarget(e.addrs(), e.password, cfg.conns); err != nil {
			return e.fail("bench", err)
		}
	case "redis":
		t = newRedisTarget(cfg.redisAddr, cfg.workers)
	}
	defer t.close()
	res, err := runBench(ctx, cfg, t, e.stderr)
	if err != nil {
		return e.fail("bench", err)
	}
	if cfg.jsonOut {
		_ = json.NewEncoder(e.stdout).Encode(res)
	} else {
		res.print(e.stdout)
	}
	if res.Errors > 0 {
		fmt.Fprintf(e.stderr, "cloakctl bench: %d errors; first: %s\n", res.Errors, res.FirstErr)
		return exitFailure
	}
	return exitOK
}

// check validates cfg and parses the get:set ratio into it; it returns a
// message naming every problem, or "".
func (cfg *benchConfig) check(ratio string) string {
	var bad []string
	g, s, ok := strings.Cut(ratio, ":")
	gi, err1 := strconv.Atoi(g)
	si, err2 := strconv.Atoi(s)
	if !ok || err1 != nil || err2 != nil || gi < 0 || si < 0 || gi+si == 0 {
		bad = append(bad, fmt.Sprintf("--ratio %q: want GET:SET such as 50:50", ratio))
	} else {
		cfg.getPct = gi * 100 / (gi + si)
	}
	if cfg.target != "cloakroom" && cfg.target != "redis" {
		bad = append(bad, fmt.Sprintf("--target %q: want cloakroom or redis", cfg.target))
	}
	if cfg.workers < 1 {
		bad = append(bad, "--workers must be at least 1")
	}
	if cfg.count < 0 || (cfg.count == 0 && cfg.duration <= 0 && !cfg.loadOnly) {
		bad = append(bad, "need a positive --count or --duration")
	}
	if cfg.valueSize < 0 {
		bad = append(bad, "--value-size must not be negative")
	}
	if cfg.keys < 1 {
		bad = append(bad, "--keys must be at least 1")
	}
	if cfg.ttl <= 0 {
		bad = append(bad, "--ttl must be positive")
	}
	return strings.Join(bad, "; ")
}

// runBench runs cfg's workload against t and merges the workers' results.
func runBench(ctx context.Context, cfg benchConfig, t benchTarget, stderr io.Writer) (*benchResult, error) {
	keys := benchKeys(cfg.keyPrefix, cfg.keys)
	value := benchValue(cfg.valueSize)
	if cfg.preload || cfg.loadOnly {
		n, d, err := preload(ctx, cfg, t, keys, value)
		if err != nil {
			return nil, fmt.Errorf("preload: %w", err)
		}
		fmt.Fprintf(stderr, "loaded %d keys in %v (%.0f sets/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
		if cfg.loadOnly {
			return &benchResult{Target: t.describe(), Workers: cfg.workers, ValueSize: cfg.valueSize,
				Keys: cfg.keys, Ops: n, Seconds: d.Seconds(), OpsPerSec: float64(n) / d.Seconds()}, nil
		}
	}

	stats := make([]workerStats, cfg.workers)
	hists := make([]*hdrhistogram.Histogram, cfg.workers)
	firstErr := make([]error, cfg.workers)
	var remaining atomic.Int64
	remaining.Store(cfg.count)
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.workers {
		hists[w] = hdrhistogram.New(1, histMaxUs, 3)
		wg.Go(func() {
			st, h := &stats[w], hists[w]
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
			for ctx.Err() == nil && !stop.Load() {
				if cfg.count > 0 && remaining.Add(-1) < 0 {
					return
				}
				key := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				var err error
				if rng.IntN(100) < cfg.getPct {
					var hit bool
					hit, err = t.get(ctx, key)
					if err == nil && !hit {
						st.misses.Add(1)
					}
				} else {
					err = t.set(ctx, key, value, cfg.ttl)
				}
				_ = h.RecordValue(max(time.Since(t0).Microseconds(), 1))
				st.ops.Add(1)
				if err != nil && ctx.Err() == nil {
					st.errors.Add(1)
					if firstErr[w] == nil {
						firstErr[w] = err
					}
				}
			}
		})
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { progressLoop(cfg, stats, start, done, stderr) })
	if cfg.count == 0 {
		timer := time.NewTimer(cfg.duration)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		stop.Store(true)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	pwg.Wait()
	res := &benchResult{Target: t.describe(), Workers: cfg.workers, ValueSize: cfg.valueSize,
		Keys: cfg.keys, GetPct: cfg.getPct, Seconds: elapsed.Seconds(), Interrupted: ctx.Err() != nil}
	all := hdrhistogram.New(1, histMaxUs, 3)
	for w := range stats {
		res.Ops += stats[w].ops.Load()
		res.Errors += stats[w].errors.Load()
		res.Misses += stats[w].misses.Load()
		all.Merge(hists[w])
		if firstErr[w] != nil && res.FirstErr == "" {
			res.FirstErr = firstErr[w].Error()
		}
	}
	res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	res.P50us = all.ValueAtQuantile(50)
	res.P99us = all.ValueAtQuantile(99)
	res.P999us = all.ValueAtQuantile(99.9)
	res.MaxUs = all.Max()
	return res, nil
}

// preload writes every key once, spread over the workers, and returns how
// many it wrote and how long that took.
func preload(ctx context.Context, cfg benchConfig, t benchTarget, keys []string, value []byte) (int64, time.Duration, error) {
	const batch = 64
	var next, written atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				lo := int(next.Add(batch)) - batch
				if lo >= len(keys) {
					return
				}
				for _, k := range keys[lo:min(lo+batch, len(keys))] {
					if err := t.set(ctx, k, value, cfg.ttl); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					written.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return written.Load(), time.Since(start), firstErr
}

// progressLoop prints a live progress line until done is closed: on a
// terminal it rewrites one line, elsewhere it prints one line per interval.
func progressLoop(cfg benchConfig, stats []workerStats, start time.Time, done <-chan struct{}, w io.Writer) {
	if cfg.progress <= 0 {
		return
	}
	end := "\n"
	if isTerminal(w) {
		end = "\r"
	}
	tick := time.NewTicker(cfg.progress)
	defer tick.Stop()
	var lastOps int64
	last := start
	printed := false
	for {
		select {
		case <-done:
			if printed && end == "\r" {
				fmt.Fprintln(w)
			}
			return
		case now := <-tick.C:
			var ops, errs int64
			for i := range stats {
				ops += stats[i].ops.Load()
				errs += stats[i].errors.Load()
			}
			rate := float64(ops-lastOps) / now.Sub(last).Seconds()
			fmt.Fprintf(w, "[%5.1fs] %10d ops %10.0f ops/s %6d errors%s", now.Sub(start).Seconds(), ops, rate, errs, end)
			lastOps, last, printed = ops, now, true
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// print writes the human-readable report.
func (r *benchResult) print(w io.Writer) {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	fmt.Fprintf(w, "target    %s\n", r.Target)
	fmt.Fprintf(w, "workload  %d workers, %d-byte values, %d keys, get:set %d:%d\n",
		r.Workers, r.ValueSize, r.Keys, r.GetPct, 100-r.GetPct)
	fmt.Fprintf(w, "ops       %d in %.2fs: %.0f ops/s\n", r.Ops, r.Seconds, r.OpsPerSec)
	if r.Interrupted {
		fmt.Fprintln(w, "          (interrupted: figures cover the part that ran)")
	}
	fmt.Fprintf(w, "errors    %d (misses %d)\n", r.Errors, r.Misses)
	if r.P50us > 0 {
		fmt.Fprintf(w, "latency   p50 %v  p99 %v  p99.9 %v  max %v\n", us(r.P50us), us(r.P99us), us(r.P999us), us(r.MaxUs))
	}
}
