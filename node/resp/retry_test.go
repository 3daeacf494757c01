package resp

import (
	"strings"
	"testing"
	"time"
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
	ts := failing(t, 1000, 150*time.Millisecond)
	c := ts.dial(t)
	start := time.Now()
	c.cmd("set", "r:a", "1")
	if got := c.reply(); !strings.HasPrefix(got, "-TRYAGAIN ") {
		t.Errorf("SET failing past the window: got %q; want TRYAGAIN", got)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("TRYAGAIN after %v; want it after the window, 150ms, less the last wait", took)
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
	var in strings.Builder
	for i := range 8 {
		k := "r:" + itoa(i)
		in.WriteString("*3\r\n$3\r\nset\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n$1\r\nv\r\n")
	}
	ts.b.failures.Store(5)
	c.send(in.String())
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
// retried for: its command stops being tried within one wait.
func TestRetry_ClientHungUp_stopsTrying(t *testing.T) {
	ts := failing(t, 1<<30, time.Minute)
	c := ts.dial(t)
	c.cmd("set", "r:a", "1")
	waitFor(t, "the SET to be tried again", func() bool { return ts.srv.Retries() > 0 })
	c.nc.Close()
	last, stillAt := ts.srv.Retries(), time.Now()
	waitFor(t, "the retries to stop", func() bool {
		if n := ts.srv.Retries(); n != last {
			last, stillAt = n, time.Now()
			return false
		}
		return time.Since(stillAt) > 2*retryMost
	})
}
