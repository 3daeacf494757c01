package resp

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestServer_Multi_ExecRunsAtomically(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "{s}a", "1")
	c.expect("+QUEUED\r\n", "pexpireat", "{s}a", "99999999999999")
	c.expect("+QUEUED\r\n", "get", "{s}a")
	c.expect("+QUEUED\r\n", "ping")
	c.expect("+QUEUED\r\n", "set", "{s}b", "x", "ex", "abc")
	c.expect("*5\r\n+OK\r\n:1\r\n$1\r\n1\r\n+PONG\r\n-ERR value is not an integer or out of range\r\n", "exec")
}

func TestServer_Multi_Errors(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "multi")
	c.expect("-ERR MULTI calls can not be nested\r\n", "multi")
	c.expect("-ERR WATCH inside MULTI is not allowed\r\n", "watch", "a")
	c.expect("-ERR unknown command 'foo', with args beginning with: \r\n", "foo")
	c.expect("+QUEUED\r\n", "set", "a", "b")
	c.expect("-EXECABORT Transaction discarded because of previous errors.\r\n", "exec")
	c.expect("$-1\r\n", "get", "a")

	c.expect("+OK\r\n", "multi")
	c.expect("-ERR wrong number of arguments for 'get' command\r\n", "get")
	c.expect("-EXECABORT Transaction discarded because of previous errors.\r\n", "exec")

	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "a", "1")
	c.expect("+OK\r\n", "discard")
	c.expect("$-1\r\n", "get", "a")
}

func TestServer_Multi_CrossSlot(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "a", "1")
	c.expect("-CROSSSLOT Keys in request don't hash to the same slot\r\n", "set", "b", "1") // slots 15495 and 3300
	c.expect("-EXECABORT Transaction discarded because of previous errors.\r\n", "exec")
	c.expect(":0\r\n", "exists", "a", "b")
}

func TestServer_Watch_AbortsOnChange(t *testing.T) {
	ts := startServer(t)
	c, other := ts.dial(t), ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "1")
	c.expect("+OK\r\n", "watch", "k")
	other.expect("+OK\r\n", "set", "k", "2")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "k", "3")
	c.expect("*-1\r\n", "exec")
	c.expect("$1\r\n2\r\n", "get", "k")

	// Unchanged: EXEC runs. A watched key that did not exist must stay absent.
	c.expect("+OK\r\n", "watch", "k", "{k}new")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "k", "4")
	c.expect("*1\r\n+OK\r\n", "exec")
	c.expect("+OK\r\n", "watch", "{k}new")
	other.expect("+OK\r\n", "set", "{k}new", "x")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "get", "k")
	c.expect("*-1\r\n", "exec")

	// UNWATCH forgets.
	c.expect("+OK\r\n", "watch", "k")
	other.expect("+OK\r\n", "set", "k", "5")
	c.expect("+OK\r\n", "unwatch")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "get", "k")
	c.expect("*1\r\n$1\r\n5\r\n", "exec")
}

// WATCH reads a key's version, not its value: watching a session of
// 1 MiB, again and again, copies none of it.
func TestServer_Watch_readsNoValue(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", strings.Repeat("v", 1<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 32 {
		c.expect("+OK\r\n", "watch", "k")
		c.expect("+OK\r\n", "unwatch")
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("32 WATCHes of a 1 MiB session allocated %d MiB; want well under 32", got>>20)
	}
	// And the version it read guards the transaction as before.
	c.expect("+OK\r\n", "watch", "k")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "k", "small")
	c.expect("*1\r\n+OK\r\n", "exec")
}

// Watched keys are bounded in bytes too: 1,024 keys of 1 KiB fill the
// bound, and one more is refused until UNWATCH.
func TestServer_Watch_keyBytesAreBounded(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	keys := []string{"watch"}
	for i := range maxWatchedBytes / 1024 {
		keys = append(keys, fmt.Sprintf("%01024d", i))
	}
	c.expect("+OK\r\n", keys...)
	c.expect("+OK\r\n", keys[:2]...) // already watched: no more bytes
	c.expect("-"+errTooManyWatched+"\r\n", "watch", "x")
	c.expect("+OK\r\n", "unwatch")
	c.expect("+OK\r\n", "watch", "x")
}

// A key watched again counts once, so a client that repeats WATCH does not
// grow its connection; distinct keys are bounded by maxWatched.
func TestServer_Watch_repeatsCountOnceAndDistinctKeysAreBounded(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	same := make([]string, 0, maxWatched+2)
	same = append(same, "watch")
	for range maxWatched + 1 {
		same = append(same, "k")
	}
	c.expect("+OK\r\n", same...) // one key, however often named
	c.expect("+OK\r\n", "unwatch")

	distinct := []string{"watch"}
	for i := range maxWatched + 1 {
		distinct = append(distinct, "k"+itoa(i))
	}
	c.expect("+OK\r\n", distinct[:maxWatched+1]...) // "watch" and as many keys as the bound
	c.expect("-"+errTooManyWatched+"\r\n", "watch", "one-more", "k1")
	c.expect("+OK\r\n", "unwatch")
	c.expect("+OK\r\n", distinct[:3]...)

	// A refused WATCH watches none of its keys, and UNWATCH forgets them
	// all: a key watched again afterwards is watched from then.
	other := ts.dial(t)
	c.expect("+OK\r\n", "unwatch")
	c.expect("-"+errTooManyWatched+"\r\n", distinct...)
	other.expect("+OK\r\n", "set", "k1", "changed")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "get", "k1")
	c.expect("*1\r\n$7\r\nchanged\r\n", "exec") // k1 was not watched
	c.expect("+OK\r\n", "watch", "k1")
	c.expect("+OK\r\n", "unwatch")
	c.expect("+OK\r\n", "watch", "k1")
	other.expect("+OK\r\n", "set", "k1", "again")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "get", "k1")
	c.expect("*-1\r\n", "exec")
}

// A transaction travels as one message, so its queue is bounded by what
// a message may carry: one client cannot grow the server's memory by
// queueing without end (5,000 SETs of 1 MiB took 5 GB), and a transaction
// that could not travel is refused when it is queued, not after EXEC
// waits. A session store's save of a value up to the limit fits.
func TestServer_Multi_QueueIsBounded(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	most := strings.Repeat("v", protocol.DefaultMaxValue)
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "{s}a", most)
	c.expect("+QUEUED\r\n", "pexpireat", "{s}a", "99999999999999")
	c.expect("*2\r\n+OK\r\n:1\r\n", "exec")

	part := strings.Repeat("v", protocol.DefaultMaxValue*6/10)
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "{s}b", part)
	c.cmd("set", "{s}c", part)
	if got := c.reply(); !strings.HasPrefix(got, "-ERR transaction too large") {
		t.Fatalf("a second SET of 60%% of the value limit in MULTI: %.120q; want the transaction refused", got)
	}
	c.expect("-EXECABORT Transaction discarded because of previous errors.\r\n", "exec")
	c.expect(":0\r\n", "exists", "{s}b", "{s}c")
	// A new transaction starts with an empty queue.
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "{s}b", part)
	c.expect("*1\r\n+OK\r\n", "exec")
}
