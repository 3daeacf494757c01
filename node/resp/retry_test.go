package resp

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/ring"
)

// failing starts a server whose "r:" keys live elsewhere and fail with
// CodeUnavailable n times, as while the cluster notices a lost node.
func failing(t *testing.T, n int32, window time.Duration) *testServer {
	return startServer(t, slowRemote(0), func(cfg *Config, b *storeBackend) {
		cfg.RetryWindow = window
		b.failures.Store(n)
	})
}

func TestRetry_WritesAndReads_succeedOnceTheClusterHasChanged(t *testing.T) {
	ts := failing(t, 3, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "r:a", "1", "ex", "60")
	ts.b.failures.Store(3)
	c.expect("$1\r\n1\r\n", "get", "r:a")
	ts.b.failures.Store(3)
	c.expect(":1\r\n", "expire", "r:a", "100")
	ts.b.failures.Store(3)
	c.expect("+OK\r\n", "mset", "r:b", "2", "r:c", "3")
	ts.b.failures.Store(3)
	c.expect("*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n", "mget", "r:a", "r:b", "r:c")
	c.expect("+OK\r\n", "multi") // as scs's redisstore saves a session
	c.expect("+QUEUED\r\n", "set", "r:d", "4")
	c.expect("+QUEUED\r\n", "pexpireat", "r:d", "99999999999999")
	ts.b.failures.Store(3)
	c.expect("*2\r\n+OK\r\n:1\r\n", "exec")
	if got := ts.srv.Retries(); got != 15 {
		t.Errorf("%d attempts made again; want 15, three for each command", got)
	}
}

// A scan of a partition still arriving on its new primary, or on a table
// that changed meanwhile, is refused Unavailable (node.execPrimary): SCAN
// and KEYS try it again, as a read, and the cursor carries on.
func TestRetry_ScanAndKeys_succeedOnceTheClusterHasChanged(t *testing.T) {
	ts := startServer(t, func(_ *Config, b *storeBackend) {
		b.remote = func(key string) bool { return key == "" } // a scan names a partition, no key
	})
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "v")
	ts.b.failures.Store(3)
	c.expect("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n", "scan", "0", "count", "1000")
	ts.b.failures.Store(3)
	c.expect("*1\r\n$1\r\nk\r\n", "keys", "*")
	if got := ts.srv.Retries(); got != 6 {
		t.Errorf("%d attempts made again; want 6, three for each command", got)
	}
}

func TestRetry_ConditionalWrites_answerAtOnce(t *testing.T) {
	ts := failing(t, 1000, 0)
	c := ts.dial(t)
	for _, args := range [][]string{
		{"set", "r:a", "1", "nx"},
		{"set", "r:a", "1", "get"},
		{"getdel", "r:a"},
		{"expire", "r:a", "10", "gt"},
	} {
		c.cmd(args...)
		if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
			t.Errorf("%q: got %q; want TRYAGAIN at once", args, got)
		}
	}
	if got := ts.srv.Retries(); got != 0 {
		t.Errorf("%d attempts made again; want none", got)
	}
}

func TestRetry_AWatchedTransaction_answersAtOnce(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "watch", "r:a")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "r:a", "1")
	ts.b.failures.Store(1000)
	c.cmd("exec")
	if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
		t.Errorf("EXEC of a watched key: got %q; want TRYAGAIN at once", got)
	}
	if got := ts.srv.Retries(); got != 0 {
		t.Errorf("%d attempts made again; want none", got)
	}
}

func TestRetry_PastTheWindow_answersTryAgain(t *testing.T) {
	// Waits of 20, 40 and 80 ms fit a 200 ms window, and the next (160)
	// does not: TRYAGAIN comes once they are made, at 140 ms and the
	// attempts' own time, or, if the attempts were slower than 60 ms in
	// all, after the first two waits and more than 60 ms, past 120 ms.
	// (A 150 ms window made the answer depend on whether the attempts
	// took 10 ms in all, which a loaded machine under -race passed.)
	ts := failing(t, 1000, 200*time.Millisecond)
	c := ts.dial(t)
	start := time.Now()
	c.cmd("set", "r:a", "1")
	if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
		t.Errorf("SET failing past the window: got %q; want TRYAGAIN", got)
	}
	if took := time.Since(start); took < 120*time.Millisecond {
		t.Errorf("TRYAGAIN after %v; want it after 120ms, the waits that fit the 200ms window", took)
	}
	if got := ts.srv.Retries(); got < 2 {
		t.Errorf("%d attempts made again in the window; want several", got)
	}
}

func TestRetry_Off_answersAtOnce(t *testing.T) {
	ts := failing(t, 1000, -1)
	c := ts.dial(t)
	c.cmd("set", "r:a", "1")
	if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
		t.Errorf("got %q; want TRYAGAIN", got)
	}
	if got := ts.srv.Retries(); got != 0 {
		t.Errorf("%d attempts made again; want none", got)
	}
}

// Pipelined commands alone in their partitions go to the backend together
// (DoAll); those that fail are tried again, each on its own.
func TestRetry_PipelinedWrites_eachSucceeds(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = "r:" + itoa(i)
	}
	ts.b.failures.Store(5)
	c.send(sets(keys...))
	for i := range 8 {
		if got := c.reply(); got != "+OK\r\n" {
			t.Errorf("SET %d: got %q", i, got)
		}
	}
	for i := range 8 {
		c.expect("$1\r\nv\r\n", "get", "r:"+itoa(i))
	}
}

// A client that gives up (its read timeout ran out) and hangs up is not
// retried for: its commands stop being tried within one wait, pipelined
// or not.
func TestRetry_ClientHungUp_stopsTrying(t *testing.T) {
	for name, in := range map[string]string{
		"one command": sets("r:a"),
		"a pipeline":  sets("r:a", "r:a", "r:b", "r:c"), // r:a's SETs on forks, the others together
	} {
		t.Run(name, func(t *testing.T) {
			ts := failing(t, 1<<30, time.Minute)
			c := ts.dial(t)
			c.send(in)
			waitFor(t, "a SET to be tried again", func() bool { return ts.srv.Retries() > 0 })
			c.nc.Close()
			last, stillAt := ts.srv.Retries(), time.Now()
			waitFor(t, "the retries to stop", func() bool {
				if n := ts.srv.Retries(); n != last {
					last, stillAt = n, time.Now()
					return false
				}
				return time.Since(stillAt) > 2*retryMost
			})
		})
	}
}

// A pipeline's commands share one window: failing throughout, it is
// answered once the window has passed, not once per failing command
// (SETs of one key run as one step, then each on its own; SETs of keys
// alone in their partitions run together).
func TestRetry_Pipeline_sharesOneWindow(t *testing.T) {
	const window = 500 * time.Millisecond
	ts := failing(t, 1<<30, window)
	c := ts.dial(t)
	start := time.Now()
	c.send(sets("r:a", "r:a", "r:a", "r:a", "r:a", "r:a", "r:b", "r:c"))
	for i := range 8 {
		if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
			t.Fatalf("SET %d failing past the window: got %q; want TRYAGAIN", i, got)
		}
	}
	if took := time.Since(start); took > 2*window {
		t.Errorf("eight failing pipelined SETs answered after %v; want about one window, %v", took, window)
	}
}

// A DEL of keys on several nodes deletes those it can at each attempt: its
// count adds them all up.
func TestRetry_DelOfKeysOnSeveralNodes_countsEveryKey(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "mset", "a", "1", "r:b", "2", "r:c", "3")
	ts.b.failures.Store(2)
	c.expect(":3\r\n", "del", "a", "r:b", "r:c", "nope")
	c.expect(":0\r\n", "exists", "a", "r:b", "r:c")
}

// DEL pipelined or in a transaction deletes each key with GETDEL's
// request; it only counts the key, so it waits for the cluster as DEL does.
func TestRetry_DelPipelinedOrInATransaction_succeeds(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "mset", "r:a", "1", "r:b", "2", "r:c", "3")
	ts.b.failures.Store(2)
	c.send("*2\r\n$3\r\ndel\r\n$3\r\nr:a\r\n*2\r\n$3\r\ndel\r\n$3\r\nr:b\r\n")
	for i := range 2 {
		if got := c.reply(); got != ":1\r\n" {
			t.Errorf("pipelined DEL %d: got %q; want :1", i, got)
		}
	}
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "r:c", "4")
	c.expect("+QUEUED\r\n", "del", "r:c")
	ts.b.failures.Store(2)
	c.expect("*2\r\n+OK\r\n:1\r\n", "exec")
	c.expect(":0\r\n", "exists", "r:a", "r:b", "r:c")
}

// A DEL whose attempt ran but whose answer was lost (a forward that timed
// out) is sent again, and the attempt that answers counts what the lost
// one deleted: alone, of keys on several nodes, pipelined and in a
// transaction. Each key counts once.
func TestRetry_DelWhoseAnswerWasLost_countsWhatItDeleted(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "mset", "a", "1", "r:b", "2", "r:c", "3", "r:d", "4", "r:e", "5", "r:f", "6")
	ts.b.lost.Store(1)
	c.expect(":1\r\n", "del", "r:b")
	ts.b.lost.Store(1)
	c.expect(":2\r\n", "del", "a", "r:c", "r:b", "nope")
	ts.b.lost.Store(2)
	c.send("*2\r\n$3\r\ndel\r\n$3\r\nr:d\r\n*2\r\n$3\r\ndel\r\n$3\r\nr:e\r\n")
	for i := range 2 {
		if got := c.reply(); got != ":1\r\n" {
			t.Errorf("pipelined DEL %d, its answer lost once: got %q; want :1", i, got)
		}
	}
	// Two DELs pipelined on one partition run as one atomic step; that
	// failing, each runs again alone, with its token.
	g1, g2 := "r:g", ""
	for i := 0; g2 == ""; i++ {
		if k := fmt.Sprint("r:g", i); !ts.srv.spreads(g1, k) {
			g2 = k
		}
	}
	c.expect("+OK\r\n", "mset", g1, "1", g2, "2")
	ts.b.lost.Store(1)
	c.send(fmt.Sprintf("*2\r\n$3\r\ndel\r\n$%d\r\n%s\r\n*2\r\n$3\r\ndel\r\n$%d\r\n%s\r\n", len(g1), g1, len(g2), g2))
	for i := range 2 {
		if got := c.reply(); got != ":1\r\n" {
			t.Errorf("DEL %d of a pipelined step whose answer was lost: got %q; want :1", i, got)
		}
	}
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "del", "r:f")
	ts.b.lost.Store(1)
	c.expect("*1\r\n:1\r\n", "exec")
	if n := ts.b.lost.Load(); n > 0 {
		t.Errorf("%d answers left to lose; the test lost fewer than it meant to", n)
	}
	c.expect(":0\r\n", "exists", "a", "r:b", "r:c", "r:d", "r:e", "r:f", g1, g2)
}

// A pipeline's commands on one partition run as one atomic step. When
// that step fails unavailable, its answer may only have been lost: a
// command whose answer depends on what it found (SET NX) is answered
// TRYAGAIN, as it would be alone, rather than run a second time and find
// its own write; the others run again.
func TestRetry_PipelinedStepWhoseAnswerWasLost_runsNoConditionalWriteTwice(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	ts.b.lost.Store(1)
	c.send("*4\r\n$3\r\nset\r\n$6\r\nr:{n}1\r\n$1\r\nv\r\n$2\r\nnx\r\n" +
		"*5\r\n$3\r\nset\r\n$6\r\nr:{n}2\r\n$1\r\nw\r\n$2\r\nex\r\n$2\r\n60\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
		t.Errorf("SET NX of a step whose answer was lost: got %q; want TRYAGAIN", got)
	}
	if got := c.reply(); got != "+OK\r\n" {
		t.Errorf("SET EX of that step: got %q; want +OK, run again", got)
	}
	c.expect("*2\r\n$1\r\nv\r\n$1\r\nw\r\n", "mget", "r:{n}1", "r:{n}2")
}

// Only the requests that failed are sent again: a key already written
// must not be written again, over what another client wrote since.
func TestRetry_MSetAcrossPartitions_sendsAgainOnlyWhatFailed(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	if !ts.srv.spreads("a", "r:b") {
		t.Fatal("a and r:b share a partition: pick other keys")
	}
	ts.b.dos.Store(0)
	ts.b.failures.Store(1)
	c.expect("+OK\r\n", "mset", "a", "1", "r:b", "2")
	if got := ts.b.dos.Load(); got != 3 {
		t.Errorf("%d requests sent; want 3: each key, then r:b again", got)
	}
	c.expect("*2\r\n$1\r\n1\r\n$1\r\n2\r\n", "mget", "a", "r:b")
}

// An MSET naming a key twice keeps the last value even when the first
// write of it fails and the last does not: the first is not sent again.
func TestRetry_MSetOfAKeyNamedTwice_keepsTheLastValue(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	if !ts.srv.spreads("x", "r:a") {
		t.Fatal("x and r:a share a partition: pick other keys")
	}
	ts.b.failures.Store(1) // the first write of r:a: the second goes in a later DoAll
	c.expect("+OK\r\n", "mset", "r:a", "1", "x", "0", "r:a", "2")
	c.expect("$1\r\n2\r\n", "get", "r:a")
}

// sets returns a pipeline of SETs of keys, in RESP.
func sets(keys ...string) string {
	var in strings.Builder
	for _, k := range keys {
		in.WriteString("*3\r\n$3\r\nset\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n$1\r\nv\r\n")
	}
	return in.String()
}

// spreads reports whether keys lie in more than one partition.
func (s *Server) spreads(keys ...string) bool {
	n := s.b.Partitions()
	for _, k := range keys[1:] {
		if ring.Partition(k, n) != ring.Partition(keys[0], n) {
			return true
		}
	}
	return false
}

// A write sent again expires when its first attempt would have: an
// absolute deadline that passes while the cluster changes is not moved.
func TestRetry_AbsoluteExpiry_staysWhereItWas(t *testing.T) {
	ts := failing(t, 0, 0)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "r:a", "1")
	at := strconv.FormatInt(time.Now().Add(150*time.Millisecond).UnixMilli(), 10)
	ts.b.failures.Store(4) // waits of 20, 40, 80 and 160 ms: past the deadline
	c.expect(":1\r\n", "pexpireat", "r:a", at)
	c.expect("$-1\r\n", "get", "r:a")

	deadline := time.Now().Add(150 * time.Millisecond)
	at = strconv.FormatInt(deadline.UnixMilli(), 10)
	ts.b.failures.Store(4)
	c.expect("+OK\r\n", "set", "r:b", "2", "pxat", at)
	// Answered after its deadline, the SET left the key a millisecond to
	// live (the store's clock ticks in milliseconds), not 150.
	time.Sleep(max(time.Until(deadline), 0) + 20*time.Millisecond)
	c.expect("$-1\r\n", "get", "r:b")
}
