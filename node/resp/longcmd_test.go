package resp

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Commands too long for the event loop (maxLoopArgs) and MGETs whose
// values are too large for it (maxLoopReply) run on a goroutine: these
// tests check that they keep every other rule a command keeps there.

// A local MGET whose values pass maxReply is refused, also when deferred
// for maxLoopReply with a command pipelined behind it: it runs alone in
// chunks (runSpread), never built whole in a batch, where its reply had no
// bound.
func TestServer_DeferredLargeMGet_KeepsReplyLimit(t *testing.T) {
	ts := startServer(t)
	big := strings.Repeat("v", 1<<20)
	var r protocol.Response
	if ts.b.Do(context.Background(), &protocol.Request{Op: protocol.OpSet, Key: "{t}big", Value: []byte(big), TTL: 60_000}, &r); r.Code != protocol.CodeOK {
		t.Fatalf("set: %v", r.Err())
	}
	const n = 70 // 70 MiB of values, over maxReply (64 MiB)
	args := []string{"MGET"}
	for range n {
		args = append(args, "{t}big")
	}
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The MGET alone, then the same MGET with a GET pipelined behind it.
	for _, tail := range []string{"", resp("GET", "{t}other")} {
		if _, err := nc.Write([]byte(resp(args...) + tail)); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReaderSize(nc, 64<<10)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !strings.HasPrefix(line, "-ERR the reply would be over") {
			t.Errorf("MGET of %d MiB (pipelined behind it: %q): got %q; want the refusal", n, tail, line)
			return // the rest of the reply is 70 MiB: do not read it
		}
		if tail != "" {
			if line, _ := br.ReadString('\n'); line != "$-1\r\n" {
				t.Errorf("GET after the refused MGET: got %q", line)
			}
		}
	}
}

// longKeys returns n keys prefix0..prefix(n-1), each padded to size bytes.
func longKeys(prefix string, n, size int) []string {
	ks := make([]string, n)
	for i := range ks {
		k := prefix + itoa(i) + ":"
		ks[i] = k + strings.Repeat("k", max(0, size-len(k)))
	}
	return ks
}

// sendInPieces writes s in pieces of piece bytes, pause apart, so that the
// loop sees a long command partly arrived (and, past bigPending, in pend).
func sendInPieces(t *testing.T, c *rawConn, s string, piece int, pause time.Duration) {
	t.Helper()
	for len(s) > 0 {
		n := min(piece, len(s))
		c.send(s[:n])
		s = s[n:]
		time.Sleep(pause)
	}
}

// Long commands (more than maxLoopArgs) arriving in pieces through pend,
// back to back, with the pipeline behind them ending in QUIT: each runs
// once, in order, on the right bytes (MSET's values are read back by a
// long MGET), and QUIT's reply comes last before the close.
func TestServer_LongCommandsInPieces_PipelineAndQuit(t *testing.T) {
	ts := startServer(t)
	const n = 600
	keys := longKeys("{p}L", n, 150) // ~100 KB: past bigPending
	pairs := make([]string, 0, 2*n)
	var mgetWant strings.Builder
	mgetWant.WriteString("*" + itoa(n) + "\r\n")
	for i, k := range keys {
		v := value(40+i%50, byte(i))
		if i == 2 {
			v = value(300_000, 9) // a large value early: the rest arrives through pend
		}
		pairs = append(pairs, k, v)
		mgetWant.WriteString(bulk(v))
	}
	var in strings.Builder
	in.WriteString(resp(append([]string{"MSET"}, pairs...)...))
	in.WriteString(resp("GET", keys[7]))
	in.WriteString(resp(append([]string{"EXISTS"}, keys...)...))
	in.WriteString(resp(append([]string{"MGET"}, keys...)...))
	in.WriteString("EXISTS \"" + keys[3] + "\" '" + keys[4] + "'\r\n") // quoted inline: r.buf
	in.WriteString(resp(append([]string{"DEL"}, keys...)...))
	in.WriteString(resp("QUIT"))
	c := ts.dial(t)
	sendInPieces(t, c, in.String(), 4096, 200*time.Microsecond)
	for i, w := range []string{"+OK\r\n", bulk(pairs[15]), ":" + itoa(n) + "\r\n", mgetWant.String(), ":2\r\n", ":" + itoa(n) + "\r\n", "+OK\r\n"} {
		if got := c.reply(); got != w {
			t.Fatalf("reply %d: got %d bytes %.80q; want %d bytes %.80q", i, len(got), got, len(w), w)
		}
	}
	if !c.closed() {
		t.Error("not closed after QUIT")
	}
}

// A long command in MULTI is queued on the loop, and EXEC runs it; a long
// WATCH runs off the loop and guards EXEC; a long command of a wrong arity,
// or unknown, is answered in order.
func TestServer_LongCommands_MultiWatchArity(t *testing.T) {
	ts := startServer(t)
	const n = 600
	keys := longKeys("{m}k", n, 8)
	c := ts.dial(t)
	c.expect("+OK\r\n", "SET", keys[0], "x")
	var in strings.Builder
	in.WriteString(resp("MULTI"))
	in.WriteString(resp(append([]string{"EXISTS"}, keys...)...))
	in.WriteString(resp(append([]string{"DEL"}, keys...)...))
	in.WriteString(resp("EXEC"))
	in.WriteString(resp(append([]string{"GET"}, keys...)...))
	in.WriteString(resp(append([]string{"NOSUCH"}, keys...)...))
	in.WriteString(resp("PING"))
	c.send(in.String())
	for i, w := range []string{"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*2\r\n:1\r\n:1\r\n",
		"-ERR wrong number of arguments for 'get' command\r\n", "", "+PONG\r\n"} {
		got := c.reply()
		if w == "" {
			if !strings.HasPrefix(got, "-ERR unknown command 'NOSUCH'") {
				t.Errorf("reply %d: got %.80q; want unknown command", i, got)
			}
			continue
		}
		if got != w {
			t.Errorf("reply %d: got %.80q; want %q", i, got, w)
		}
	}
	// WATCH of many keys, then another client writes one of them.
	c.send(resp(append([]string{"WATCH"}, keys...)...) + resp("MULTI") + resp("SET", keys[1], "y"))
	for _, w := range []string{"+OK\r\n", "+OK\r\n", "+QUEUED\r\n"} {
		if got := c.reply(); got != w {
			t.Fatalf("got %q; want %q", got, w)
		}
	}
	ts.dial(t).expect("+OK\r\n", "SET", keys[n-1], "changed")
	c.expect("*-1\r\n", "EXEC")
	c.expect("$-1\r\n", "GET", keys[1])
}

// A client that hangs up while its long command runs: the command ends,
// its batch is released, and the server closes cleanly; other clients are
// served throughout (run with -race).
func TestServer_LongCommand_ClientGoneWhileItRuns(t *testing.T) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		cfg.EventLoops = 1
		b.hold = func(ctx context.Context, req *protocol.Request) {
			if len(req.Keys) == 0 || req.Keys[0] != "{g}k0:" {
				return
			}
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	keys := longKeys("{g}k", 700, 0)
	slow := ts.dial(t)
	slow.send(resp(append([]string{"EXISTS"}, keys...)...) + resp(append([]string{"EXISTS"}, keys...)...) + "PING\r\n")
	<-held
	slow.nc.Close()
	other := ts.dial(t)
	other.expect("+OK\r\n", "SET", "a", "b")
	waitFor(t, "the server to close the client that left", func() bool { return ts.srv.admitted.Load() == 1 })
	close(release)
	other.expect("$1\r\nb\r\n", "GET", "a")
	ts.mustClose(t, "after a client left while its long command ran")
}

// The same for an MGET of keys on another node, deferred because its keys
// are remote: it was batched with the GET behind it and answered whole
// past maxReply.
func TestServer_RemoteMGet_KeepsReplyLimit(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	big := strings.Repeat("v", 1<<20)
	var r protocol.Response
	if ts.b.Do(context.Background(), &protocol.Request{Op: protocol.OpSet, Key: "r:{t}big", Value: []byte(big), TTL: 60_000}, &r); r.Code != protocol.CodeOK {
		t.Fatalf("set: %v", r.Err())
	}
	args := []string{"MGET"}
	for range 70 {
		args = append(args, "r:{t}big")
	}
	c := ts.dial(t)
	c.send(resp(args...) + resp("GET", "r:{t}other"))
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "-ERR the reply would be over") {
		t.Errorf("remote MGET of 70 MiB with a GET behind it: got %q; want the refusal", line)
	}
}

// On the event loop a command of more than maxLoopArgs arguments is not
// run, whatever it is: not one queued in MULTI (queueing hashes every key
// and copies every argument: an EXISTS of a million keys of one hash tag
// held the loop about 0.45 s), nor one that otherwise runs on the loop
// (CONFIG GET of a million patterns took it 0.12 s).
func TestServer_LongCommands_NotRunOnTheLoop(t *testing.T) {
	ts := startServer(t)
	long := func(head ...string) [][]byte {
		args := make([][]byte, 0, maxLoopArgs+1)
		for _, h := range head {
			args = append(args, []byte(h))
		}
		for i := 0; len(args) <= maxLoopArgs; i++ {
			args = append(args, []byte("{a}k"+itoa(i)))
		}
		return args
	}
	for _, tc := range []struct {
		name  string
		multi bool
		args  [][]byte
	}{
		{"EXISTS", false, long("EXISTS")}, // the commit's case: deferred
		{"EXISTS in MULTI", true, long("EXISTS")},
		{"DEL in MULTI", true, long("DEL")},
		{"CONFIG GET", false, long("CONFIG", "GET")},
		{"COMMAND INFO", false, long("COMMAND", "INFO")},
	} {
		c := &conn{s: ts.srv, w: NewWriter(), authed: true, onLoop: true}
		c.resetTx()
		c.tx.active = tc.multi
		c.dispatch(ts.srv.ctx, tc.args)
		if !c.deferred || c.w.Buffered() != 0 {
			t.Errorf("%s of %d arguments on the loop: deferred %v, wrote %.60q; want deferred, nothing written",
				tc.name, len(tc.args), c.deferred, c.w.Bytes())
		}
	}
}

// RESP3, replies before and after a deferred MGET in one pass, the MGET
// over maxLoopReply in its second chunk (the first chunk's values already
// in the reply when it stops): each reply once, in order.
func TestServer_DeferredMGet_RESP3_SecondChunk_Order(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.cmd("HELLO", "3")
	c.reply()
	mid := strings.Repeat("m", 3000)
	big := strings.Repeat("b", 600_000)
	keys := make([]string, 0, 2*chunkKeys)
	var want strings.Builder
	want.WriteString("*" + itoa(2*chunkKeys) + "\r\n")
	for i := range 2 * chunkKeys {
		k := "c:" + itoa(i)
		keys = append(keys, k)
		switch {
		case i%3 == 0:
			want.WriteString("_\r\n") // absent
		case i == chunkKeys+1 || i == chunkKeys+2:
			c.expect("+OK\r\n", "SET", k, big) // 1.2 MB in the second chunk
			want.WriteString(bulk(big))
		default:
			c.expect("+OK\r\n", "SET", k, mid) // 0.5 MB in the first
			want.WriteString(bulk(mid))
		}
	}
	dos := ts.b.dos.Load()
	c.send(resp("GET", "c:1") + resp("ECHO", "before") + resp(append([]string{"MGET"}, keys...)...) + resp("GET", "c:1") + "PING\r\n")
	for i, w := range []string{bulk(mid), bulk("before"), want.String(), bulk(mid), "+PONG\r\n"} {
		if got := c.reply(); got != w {
			t.Fatalf("reply %d: got %d bytes %.60q; want %d bytes %.60q", i, len(got), got, len(w), w)
		}
	}
	if n := ts.b.dos.Load() - dos; n <= 2*chunkKeys+2+chunkKeys {
		t.Errorf("%d backend calls: the MGET did not stop in its second chunk and run again", n)
	}
}

// An MGET queued in MULTI keeps the same bound: EXEC answers it with the
// refusal, in its place, and the transaction's other replies as usual.
func TestServer_MGetInMulti_KeepsReplyLimit(t *testing.T) {
	ts := startServer(t)
	big := strings.Repeat("v", 1<<20)
	c := ts.dial(t)
	c.expect("+OK\r\n", "SET", "{t}big", big)
	args := []string{"MGET"}
	for range 70 { // 70 MiB of values, over maxReply (64 MiB)
		args = append(args, "{t}big")
	}
	c.expect("+OK\r\n", "MULTI")
	c.expect("+QUEUED\r\n", args...)
	c.expect("+QUEUED\r\n", "MGET", "{t}big", "{t}none")
	c.expect("*2\r\n-"+string(errReplyTooLarge)+"\r\n*2\r\n"+bulk(big)+"$-1\r\n", "EXEC")
}
