package resp

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloakroom/cloakroom/protocol"
)

// socketPair returns two connected ends of a stream socket pair.
func socketPair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newTestSpinner(t *testing.T, limit time.Duration) *spinner {
	t.Helper()
	set, err := newReadySet()
	if err != nil {
		t.Fatal(err)
	}
	sp := &spinner{limit: limit, set: set}
	t.Cleanup(sp.stop)
	return sp
}

func TestSpinner_endsOnInputAndBacksOffAfterMisses(t *testing.T) {
	sp := newTestSpinner(t, 50*time.Microsecond)
	mine, peer := socketPair(t)
	if err := sp.watch(int(mine.Fd())); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if sp.spin() {
		t.Fatal("spin found work on a silent connection")
	}
	if d := time.Since(start); d < sp.limit {
		t.Fatalf("spin gave up after %v; want at least the limit %v", d, sp.limit)
	}
	// One miss: skip the next two polls, then spin again.
	for i, want := range []bool{false, false, true} {
		if got := sp.want(); got != want {
			t.Fatalf("want() #%d after one miss = %v; want %v", i, got, want)
		}
	}
	for range 10 { // misses keep doubling the skip, up to 64 polls
		sp.spin()
		for sp.skip > 0 {
			sp.want()
		}
	}
	if got := 1 << sp.backoff; got != 1<<maxSpinBackoff {
		t.Fatalf("after 11 misses the loop skips %d polls; want %d", got, 1<<maxSpinBackoff)
	}

	if _, err := peer.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if !sp.spin() {
		t.Fatal("spin missed input waiting on a watched connection")
	}
	if sp.backoff != 0 || !sp.want() {
		t.Fatalf("a spin that found input left backoff %d", sp.backoff)
	}
	// Asking does not consume: the input is still there for gnet's poller.
	if !sp.set.ready() {
		t.Fatal("input no longer ready after the spin saw it")
	}

	buf := make([]byte, 16)
	mine.Read(buf)
	sp.unwatch(int(mine.Fd()))
	peer.Write([]byte("PING\r\n"))
	if sp.set.ready() {
		t.Fatal("an unwatched connection still ends spins")
	}
}

func TestSpinner_endsForWakeUpsAndQuitWithoutResettingTheBackoff(t *testing.T) {
	const limit = 10 * time.Second
	sp := newTestSpinner(t, limit)
	sp.backoff = 3
	start := time.Now()
	sp.wakes.Add(1)
	if !sp.spin() {
		t.Fatal("spin ran to its limit with a wake-up waiting")
	}
	sp.wakes.Add(-1)
	sp.quit.Store(true)
	if !sp.spin() {
		t.Fatal("spin ran to its limit with Close waiting")
	}
	if d := time.Since(start); d >= limit {
		t.Fatalf("spins took %v", d)
	}
	if sp.backoff != 3 {
		t.Fatalf("backoff %d after spins ended by a wake-up and Close; want 3: only input shows spinning pays", sp.backoff)
	}
	if sp.want() {
		t.Fatal("a loop that is stopping still wants to spin")
	}
}

func TestServer_IdleSpin_NeedsASpareP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := startServer(t)
	ts.dial(t).expect("+PONG\r\n", "ping")
	for _, a := range ts.afterPolls() {
		if a.spin.limit != 0 {
			t.Fatalf("with GOMAXPROCS 1 and one loop, the loop spins for %v", a.spin.limit)
		}
	}
}

func TestServer_IdleSpin_LoopMadeWhileClosingDoesNotSpin(t *testing.T) {
	ts := startServer(t)
	ts.dial(t).expect("+PONG\r\n", "ping")
	ts.mustClose(t, "")
	ts.srv.mu.Lock()
	a := ts.srv.newAfterPoll(nil)
	ts.srv.mu.Unlock()
	t.Cleanup(a.spin.stop)
	if a.spin.want() || !a.spin.quit.Load() {
		t.Fatal("a loop's first connection, opened while the server closed, lets the loop spin")
	}
}

// A loop spins after lone commands, not after a pipeline: a pipelining
// client reads a burst of replies before it sends again.
func TestServer_IdleSpin_NotAfterPipelines(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	start := func(t *testing.T) (*testServer, *rawConn) {
		ts := startServer(t, func(cfg *Config, _ *storeBackend) {
			cfg.IdleSpin = time.Hour
			cfg.EventLoops = 1 // and GOMAXPROCS 2 or more: a P to spare
		})
		return ts, ts.dial(t)
	}
	t.Run("lone", func(t *testing.T) {
		ts, c := start(t)
		c.expect("+PONG\r\n", "ping")
		ts.waitForSpin(t)
	})
	t.Run("pipeline", func(t *testing.T) {
		ts, c := start(t)
		c.send("PING\r\nPING\r\n")
		for range 2 {
			if got := c.reply(); got != "+PONG\r\n" {
				t.Fatalf("got %q", got)
			}
		}
		// The task that sent those replies decides on its spin before the
		// loop reads more: a lone PING now ends any spin after the
		// pipeline, then starts one of its own.
		c.expect("+PONG\r\n", "ping")
		if n := ts.waitForSpin(t).spin.spins.Load(); n != 1 {
			t.Errorf("%d spins, counting the last PING's; want that one alone", n)
		}
	})
}

// afterPolls returns the server's loops' afterPoll.
func (ts *testServer) afterPolls() []*afterPoll {
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	var out []*afterPoll
	for _, a := range ts.srv.afters {
		out = append(out, a)
	}
	return out
}

// waitForSpin waits until one of the server's loops spins and returns it.
func (ts *testServer) waitForSpin(t *testing.T) *afterPoll {
	t.Helper()
	var spinning *afterPoll
	waitFor(t, "an event loop to spin", func() bool {
		for _, a := range ts.afterPolls() {
			if a.spin.spinning.Load() {
				spinning = a
				return true
			}
		}
		return false
	})
	return spinning
}

// A command run off the loop wakes the loop when it is done; a loop that
// spins in the meantime must end its spin for it, or the reply would wait
// for the whole spin (here an hour). Close must not wait for a spin either.
func TestServer_IdleSpin_EndsForOffloadedCommandAndClose(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		cfg.IdleSpin = time.Hour
		cfg.EventLoops = 1 // and GOMAXPROCS 2 or more: a P to spare
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	c := ts.dial(t)
	c.expect("+PONG\r\n", "ping") // the loop now spins, for an hour
	c.cmd("get", "r:x")
	<-entered
	ts.waitForSpin(t)
	close(release)
	if got := c.reply(); got != "$-1\r\n" {
		t.Fatalf("got %q; want a null", got)
	}
	c.expect("+PONG\r\n", "ping")
	ts.waitForSpin(t)
	ts.mustClose(t, "while its event loop spun")
}
