package resp

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/protocol"
)

// mgetReply is the reply to MGET of keys, given which of them hold
// their own name as value.
func mgetReply(keys []string, held func(i int) bool) string {
	var sb strings.Builder
	sb.WriteString("*" + itoa(len(keys)) + "\r\n")
	for i, k := range keys {
		if held(i) {
			sb.WriteString("$" + itoa(len(k)) + "\r\n" + k + "\r\n")
		} else {
			sb.WriteString("$-1\r\n")
		}
	}
	return sb.String()
}

func TestSpread_MGetOfRemoteKeys_goesToTheBackendInChunks(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	c := ts.dial(t)
	keys := make([]string, 2*chunkKeys+88)
	for i := range keys {
		keys[i] = "r:" + itoa(i)
		if i%3 != 0 {
			c.expect("+OK\r\n", "set", keys[i], keys[i])
		}
	}
	alls := ts.b.alls.Load()
	c.expect(mgetReply(keys, func(i int) bool { return i%3 != 0 }), append([]string{"mget"}, keys...)...)
	if got := ts.b.alls.Load() - alls; got != 3 {
		t.Errorf("MGET of %d remote keys made %d DoAll calls; want 3 (one a chunk: the keys for each node go together)", len(keys), got)
	}
	if most := ts.b.allMost.Load(); most > chunkKeys {
		t.Errorf("a DoAll call got %d requests; want at most a chunk, %d", most, chunkKeys)
	}
}

func TestSpread_MSetOfRemoteKeys_keepsTheLastValueOfAKeyNamedTwice(t *testing.T) {
	ts := startServer(t, slowRemote(0), func(_ *Config, b *storeBackend) { b.backwards = true })
	c := ts.dial(t)
	args := []string{"mset"}
	for i := range chunkKeys + 10 {
		args = append(args, "r:"+itoa(i%7), "v"+itoa(i)) // every key several times in each chunk
	}
	args = append(args, "r:3", "last") // and once more in the last chunk
	c.expect("+OK\r\n", args...)
	want := map[string]string{} // as MSET sets them in order, the last wins
	for i := 1; i < len(args); i += 2 {
		want[args[i]] = args[i+1]
	}
	for k, v := range want {
		c.expect("$"+itoa(len(v))+"\r\n"+v+"\r\n", "get", k)
	}
}

// Every write of a key named twice runs, in order, so its error shows
// wherever the key lives.
func TestSpread_MSetOfAKeyNamedTwice_failsOnEitherValue(t *testing.T) {
	ts := startServer(t, slowRemote(0), func(_ *Config, b *storeBackend) { b.limits.MaxValue = 10 })
	c := ts.dial(t)
	long := strings.Repeat("v", 16)
	c.cmd("set", "l:k", long)
	want := c.reply()
	if !strings.HasPrefix(want, "-ERR ") {
		t.Fatalf("SET of a value over the limit: got %q; want an error", want)
	}
	for _, prefix := range []string{"l:", "r:"} {
		c.expect(want, "mset", prefix+"k", long, prefix+"k2", "x", prefix+"k", "y")
	}
}

func TestSpread_MSetInOnePartition_staysOneAtomicStep(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	c := ts.dial(t)
	args := []string{"mset"}
	for i := range 3 * chunkKeys {
		args = append(args, "{r:t}"+itoa(i), itoa(i))
	}
	c.expect("+OK\r\n", args...)
	if got := ts.b.atomics.Load(); got != 1 {
		t.Errorf("MSET of keys sharing a partition took %d atomic steps; want 1", got)
	}
	if got := ts.b.alls.Load(); got != 0 {
		t.Errorf("MSET of keys sharing a partition made %d DoAll calls; want 0", got)
	}
}

// A chunk that cannot run on the event loop, after chunks that could,
// sends the whole command to a goroutine before any chunk runs: the loop
// serves others while the remote keys wait, and the reply holds each value
// once.
func TestSpread_RemoteKeysAfterAChunkOfLocalOnes_leaveTheLoop(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, func(_ *Config, b *storeBackend) {
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	c := ts.dial(t)
	keys := make([]string, chunkKeys+5)
	for i := range keys {
		keys[i] = "l:" + itoa(i)
		if i >= chunkKeys {
			keys[i] = "r:" + itoa(i)
		}
	}
	for _, k := range keys[:chunkKeys] {
		c.expect("+OK\r\n", "set", k, k)
	}
	var in strings.Builder
	for _, args := range [][]string{append([]string{"mget"}, keys...), {"ping"}} {
		in.WriteString("*" + itoa(len(args)) + "\r\n")
		for _, a := range args {
			in.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
		}
	}
	c.send(in.String())
	other := ts.dial(t)
	other.expect("$3\r\nl:0\r\n", "get", "l:0")
	close(release)
	if got, want := c.reply(), mgetReply(keys, func(i int) bool { return i < chunkKeys }); got != want {
		t.Errorf("MGET of local then remote keys: got %d bytes %.80q...; want %d bytes", len(got), got, len(want))
	}
	if got := c.reply(); got != "+PONG\r\n" {
		t.Errorf("PING after it: got %q", got)
	}
}

func TestSpread_MSetOfLocalThenRemoteKeys_writesEachOnce(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	c := ts.dial(t)
	args := []string{"mset"}
	for i := range chunkKeys {
		args = append(args, "l:"+itoa(i), "v")
	}
	args = append(args, "r:0", "v")
	before := ts.b.dos.Load()
	c.expect("+OK\r\n", args...)
	if got := ts.b.dos.Load() - before; got != chunkKeys+1 {
		t.Errorf("MSET of %d keys made %d writes; want one each", chunkKeys+1, got)
	}
}

func TestSpread_AFailedKeyInALaterChunk_repliesOnlyItsError(t *testing.T) {
	ts := startServer(t, slowRemote(0), func(_ *Config, b *storeBackend) { b.limits.MaxKey = 200 })
	c := ts.dial(t)
	long := strings.Repeat("k", 300)
	c.cmd("mget", long)
	want := c.reply()
	if !strings.HasPrefix(want, "-ERR ") {
		t.Fatalf("MGET of a key over the limit: got %q; want an error", want)
	}
	for _, prefix := range []string{"l:", "r:"} {
		args := []string{"mget"}
		for i := range chunkKeys + 3 {
			args = append(args, prefix+itoa(i))
		}
		c.expect(want, append(args, long)...)
		c.expect("+PONG\r\n", "ping")
	}
}

// An MGET of many keys holds one chunk's requests and responses at a
// time: what it allocates a key is its key string and its share of the
// reply, not a request and a response (320 bytes) each.
func TestSpread_MGetOfManyKeys_allocatesLittleAKey(t *testing.T) {
	ts := startServer(t)
	c := &conn{s: ts.srv, w: NewWriter(), authed: true}
	c.resetTx()
	const n = 100_000
	args := make([][]byte, 1, n+1)
	args[0] = []byte("mget")
	for i := range n {
		args = append(args, []byte("key:"+itoa(i)))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.dispatch(context.Background(), args)
	runtime.ReadMemStats(&after)
	if !strings.HasPrefix(string(c.w.Bytes()), "*"+itoa(n)+"\r\n$-1\r\n") {
		t.Fatalf("MGET: got %.40q", c.w.Bytes())
	}
	if perKey := (after.TotalAlloc - before.TotalAlloc) / n; perKey > 100 {
		t.Errorf("MGET of %d keys allocated %d bytes a key; want at most 100", n, perKey)
	}
}

// An MGET whose reply would be over maxReply is answered with an error,
// and a local one stops copying values at the limit: 200 keys of a 1 MiB
// session (a 1.8 KB command) used to take 1 GB of the node's memory. One
// within the limit is answered whole.
func TestSpread_MGetOverTheReplyLimit_isRefused(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	big := strings.Repeat("v", 1<<20)
	for _, k := range []string{"big", "r:big"} {
		var resp protocol.Response
		if ts.b.Do(context.Background(), &protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte(big), TTL: 60_000}, &resp); resp.Code != protocol.CodeOK {
			t.Fatalf("set %s: %v", k, resp.Err())
		}
	}
	mget := func(key string, n int) ([]byte, uint64) {
		c := &conn{s: ts.srv, w: NewWriter(), authed: true}
		c.resetTx()
		args := [][]byte{[]byte("mget")}
		for range n {
			args = append(args, []byte(key))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c.dispatch(context.Background(), args)
		runtime.ReadMemStats(&after)
		return c.w.Bytes(), after.TotalAlloc - before.TotalAlloc
	}
	const refusal = "-ERR the reply would be over 67108864 bytes"
	reply, alloc := mget("big", 200)
	if !strings.HasPrefix(string(reply), refusal) {
		t.Errorf("local MGET of 200 MiB: got %.60q; want the refusal", reply)
	}
	if alloc > 3*maxReply {
		t.Errorf("local MGET of 200 MiB allocated %d MiB; want under %d", alloc>>20, 3*maxReply>>20)
	}
	if reply, _ := mget("r:big", 100); !strings.HasPrefix(string(reply), refusal) {
		t.Errorf("remote MGET of 100 MiB: got %.60q; want the refusal", reply)
	}
	reply, _ = mget("big", 60)
	if want := "*60\r\n$1048576\r\n" + big + "\r\n"; !strings.HasPrefix(string(reply), want) || len(reply) != 5+60*(len(big)+12) {
		t.Errorf("MGET of 60 MiB: got %d bytes, %.20q; want 60 values", len(reply), reply)
	}
}
