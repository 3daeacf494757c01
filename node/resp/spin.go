package resp

import (
	"sync/atomic"
	"time"
)

// DefaultIdleSpin is how long an event loop keeps polling for input after
// it has served some, unless Config.IdleSpin says otherwise.
const DefaultIdleSpin = 20 * time.Microsecond

// maxSpinBackoff bounds the backoff after spins that found nothing: a loop
// whose spins keep missing spins after one input in 2^maxSpinBackoff+1.
const maxSpinBackoff = 6

// spinner keeps one event loop awake for a moment after it has served a
// poll's input, polling its connections for more, before the loop goes
// back to gnet's poller.
//
// Why: gnet's poller, finding nothing to do, yields the loop's goroutine
// and then blocks in epoll_wait. On a locked thread the yield hands the
// thread's P to another thread and back, and blocking lets the CPU go
// idle. Under redis-benchmark -c 50 -P 1 the loop gave up its thread 0.4
// times a request; spinning, 0.02 times, and a client that sends one
// command at a time gets its reply in 23 µs instead of 39 µs, for the same
// CPU per request. A client's next command mostly arrives within a few
// microseconds of its reply: 99.5% of 20 µs spins found input
// (docs/benchmarks.md, "Idle spin").
//
// Spinning burns CPU when nothing comes, so it backs off: a spin that
// times out makes the loop let the next 2, 4, ... 64 inputs it serves go
// without a spin, and one that finds input resets that (a spin ended by a
// wake-up or Close does neither). A node serving sparse traffic therefore
// spins after at most one input in 65. Traffic whose commands arrive less
// than a spin apart keeps the loop polling between them; sleeping and
// waking for each cost about as much CPU (docs/benchmarks.md, "gap 30 µs").
// A loop does not spin after serving a pipeline (afterPoll.pipelined).
//
// The loop's own fields (backoff, skip) are touched only by the loop.
type spinner struct {
	limit   time.Duration // zero: never spin
	set     readySet      // the loop's connections, watched for input
	backoff uint8         // log2 of the inputs to skip after the last miss
	skip    int           // inputs left to skip

	// wakes counts wake-ups that goroutines (an offloaded command that is
	// done) have queued on the loop and it has not run yet: they wait
	// behind the spin in the loop's queue, where the connections'
	// readiness does not show them.
	wakes atomic.Int32
	// quit is set by Server.Close, whose stopping of the loops is a task
	// behind any spin too; it is never cleared.
	quit atomic.Bool

	spins    atomic.Int64 // spins begun, for tests
	spinning atomic.Bool  // a spin is under way, for tests
}

// want reports whether the loop should spin once it has served its current
// poll. The loop asks each time it serves a connection's input, until a
// spin is queued.
func (sp *spinner) want() bool {
	if sp.limit <= 0 || sp.quit.Load() {
		return false
	}
	if sp.skip > 0 {
		sp.skip--
		return false
	}
	return true
}

// spin polls the loop's connections until one has input, the loop has a
// wake-up or Close waiting, or the limit passes; it reports whether it
// ended early. Only input counts as a spin that paid: it resets the
// backoff, and a timeout extends it.
func (sp *spinner) spin() bool {
	sp.spins.Add(1)
	sp.spinning.Store(true)
	defer sp.spinning.Store(false)
	deadline := time.Now().Add(sp.limit)
	for {
		if sp.set.ready() {
			sp.backoff = 0
			return true
		}
		if sp.wakes.Load() > 0 || sp.quit.Load() {
			return true
		}
		if !time.Now().Before(deadline) {
			sp.backoff = min(sp.backoff+1, maxSpinBackoff)
			sp.skip = 1 << sp.backoff
			return false
		}
	}
}

// watch adds a new connection's descriptor to the set; if that fails the
// loop stops spinning, since its spins could no longer see all its input.
func (sp *spinner) watch(fd int) error {
	if sp.limit <= 0 {
		return nil
	}
	if err := sp.set.add(fd); err != nil {
		sp.stop()
		return err
	}
	return nil
}

// unwatch removes a closing connection's descriptor from the set.
func (sp *spinner) unwatch(fd int) {
	if sp.limit > 0 {
		sp.set.remove(fd)
	}
}

// stop turns spinning off for good and releases the set.
func (sp *spinner) stop() {
	sp.limit = 0
	sp.set.close()
}
