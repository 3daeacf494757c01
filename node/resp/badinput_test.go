package resp

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
)

func TestServer_ProtocolErrors_CloseOnlyThatConnection(t *testing.T) {
	ts := startServer(t)
	bystander := ts.dial(t)
	bystander.expect("+OK\r\n", "set", "keep", "v")
	cases := []struct{ name, in, want string }{
		{"negative bulk length", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk length not a number", "*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"absurd bulk length", "*1\r\n$999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"bulk over the value limit", "*2\r\n$3\r\nget\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"absurd multibulk length", "*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"multibulk length not a number", "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"missing dollar", "*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
		{"unbalanced quotes", "ping \"unterminated\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"bulk without CRLF", "*1\r\n$4\r\nPINGxx\r\n", "-ERR Protocol error: bulk string not terminated by CRLF\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tc.in)
			if got := c.reply(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			if !c.closed() {
				t.Errorf("connection still open after a protocol error; want closed")
			}
		})
	}
	bystander.expect("$1\r\nv\r\n", "get", "keep")
}

// An HTTP request to the Redis port (a web page can make a browser send
// one anywhere) closes the connection before anything in it runs, as in
// redis-server: its body would otherwise run as commands.
func TestServer_HTTPRequestClosesTheConnection(t *testing.T) {
	ts := startServer(t)
	bystander := ts.dial(t)
	bystander.expect("+OK\r\n", "set", "keep", "v")
	body := "SET crossproto pwned\r\n"
	cases := []struct{ name, in string }{
		{"POST", "POST / HTTP/1.1\r\nHost: node:6379\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\n" + body},
		{"GET with a Host header", "GET / HTTP/1.1\r\nHost: node:6379\r\n\r\n" + body},
		{"lower-case host header", "GET /x HTTP/1.0\r\nhost: node\r\n\r\n" + body},
		{"POST in RESP framing", "*3\r\n$4\r\npost\r\n$1\r\n/\r\n$8\r\nHTTP/1.1\r\n*3\r\n$3\r\nSET\r\n$10\r\ncrossproto\r\n$5\r\npwned\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(tc.in)
			if !c.closed() {
				t.Errorf("connection still open after an HTTP request; want closed")
			}
			bystander.expect("$-1\r\n", "get", "crossproto")
		})
	}
	bystander.expect("$1\r\nv\r\n", "get", "keep")
	// Inside a transaction too.
	c := ts.dial(t)
	c.expect("+OK\r\n", "multi")
	c.send("POST / HTTP/1.1\r\n")
	if !c.closed() {
		t.Errorf("connection still open after POST inside MULTI; want closed")
	}
}

func TestServer_Inline(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.send("PING\r\n")
	c.send("\r\n   \r\nping \"hello world\"\r\n")
	c.send("set 'a b' \"x\\x41\\n\"\r\nget \"a b\"\n")
	for _, want := range []string{"+PONG\r\n", "$11\r\nhello world\r\n", "+OK\r\n", "$3\r\nxA\n\r\n"} {
		if got := c.reply(); got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	}
}

func TestServer_HalfCommandStalls_OthersServed(t *testing.T) {
	ts := startServer(t)
	staller := ts.dial(t)
	staller.send("*3\r\n$3\r\nset\r\n$1\r\nk\r\n$100\r\nabc")
	other := ts.dial(t)
	other.expect("+OK\r\n", "set", "k2", "v")
	other.expect("$-1\r\n", "get", "k")
	// Finishing the command later works.
	staller.send(strings.Repeat("x", 97) + "\r\n")
	if got := staller.reply(); got != "+OK\r\n" {
		t.Errorf("got %q; want +OK", got)
	}
}

func TestServer_CloseWithStalledClient(t *testing.T) {
	ts := startServer(t)
	staller := ts.dial(t)
	staller.send("*2\r\n$3\r\nget\r\n$10\r\nab")
	other := ts.dial(t)
	other.expect("+PONG\r\n", "ping")
	ts.mustClose(t, "with a stalled client")
}

func TestServer_Pipelining(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString("*3\r\n$3\r\nset\r\n$" + itoa(len(itoa(i))) + "\r\n" + itoa(i) + "\r\n$1\r\nv\r\n")
	}
	c.send(sb.String())
	for range 1000 {
		if got := c.reply(); got != "+OK\r\n" {
			t.Fatalf("got %q; want +OK", got)
		}
	}
	c.expect(":1000\r\n", "dbsize")
}

func TestServer_ValueOverLimit(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.Limits = DefaultLimits(1 << 20) })
	c := ts.dial(t)
	c.cmd("set", "k", strings.Repeat("x", 1<<20+1))
	if got := c.reply(); !strings.HasPrefix(got, "-ERR Protocol error: invalid bulk length") {
		t.Errorf("got %q; want a protocol error", got)
	}
	d := ts.dial(t)
	d.expect("+OK\r\n", "set", "k", strings.Repeat("x", 1<<20))
	d.cmd("get", "k")
	if got := d.reply(); len(got) != 1<<20+len("$1048576\r\n\r\n") {
		t.Errorf("GET of a 1MiB value: got %d bytes", len(got))
	}
}

func TestReader_LargeBulkWaitsForInput(t *testing.T) {
	// A claimed 1 MiB argument that has not arrived allocates nothing; the
	// reader says how many bytes the command needs.
	in := []byte("*1\r\n$1048576\r\n" + strings.Repeat("x", 100))
	r := NewReader(DefaultLimits(1 << 20))
	var args [][]byte
	var n int
	var err error
	allocs := testing.AllocsPerRun(10, func() { args, n, err = r.Parse(in) })
	if args != nil || n != 0 || err != nil {
		t.Fatalf("got %d args, %d bytes, %v; want an incomplete command", len(args), n, err)
	}
	if want := len("*1\r\n$1048576\r\n") + 1048576 + 2; r.Need() != want {
		t.Errorf("Need: got %d; want %d", r.Need(), want)
	}
	if allocs > 0 || cap(r.buf) > 0 {
		t.Errorf("%v allocations, buffer of %d bytes for a command still arriving; want none", allocs, cap(r.buf))
	}
}

// dripParse feeds cmd to a reader in pieces of piece bytes, parsing only
// once Need bytes are there, as the event loop does; it returns the
// outcome and how many times Parse ran.
func dripParse(t *testing.T, cmd []byte, piece int) (args [][]byte, err error, parses int) {
	t.Helper()
	r := NewReader(DefaultLimits(1 << 20))
	for have := 0; have < len(cmd); {
		have = min(have+piece, len(cmd))
		if have < r.Need() {
			continue
		}
		parses++
		a, n, err := r.Parse(cmd[:have])
		if err != nil || n > 0 {
			if err == nil && n != len(cmd) {
				t.Fatalf("Parse took %d bytes of a %d-byte command", n, len(cmd))
			}
			return a, err, parses
		}
	}
	t.Fatalf("the whole command (%d bytes) is buffered, and the reader still wants %d", len(cmd), r.Need())
	return nil, nil, parses
}

// A command of megabytes sent in small pieces is parsed a few dozen times,
// not once per piece: a client dripping EXISTS with a million keys kept
// the event loop, and so every other client, busy for 10 s, when each
// piece's Parse started again from the command's first byte.
func TestReader_LargeCommandInSmallPiecesIsParsedFewTimes(t *testing.T) {
	const keys = 200000
	cmd := existsCommand(keys)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	args, err, parses := dripParse(t, cmd, 4096)
	runtime.ReadMemStats(&after)
	if err != nil || len(args) != keys+1 || string(args[keys]) != "k"+itoa(keys-1) {
		t.Fatalf("got %d args, %v; want EXISTS and %d keys", len(args), err, keys)
	}
	if pieces := (len(cmd) + 4095) / 4096; parses > 40 {
		t.Errorf("a %d-byte command in %d pieces was parsed %d times; want at most 40", len(cmd), pieces, parses)
	}
	// The arguments are collected once, when the command is whole.
	argsBytes := uint64(unsafe.Sizeof(args[0])) * (keys + 1)
	if got := after.TotalAlloc - before.TotalAlloc; got > 2*argsBytes {
		t.Errorf("parsing it allocated %d bytes; want at most %d, twice its %d arguments' slice", got, 2*argsBytes, keys+1)
	}

	// A framing error in such a command is still found, once it is all in.
	bad := []byte(strings.Replace(string(cmd), "$7\r\nk150000\r\n", "?7\r\nk150000\r\n", 1))
	if _, err, _ := dripParse(t, bad, 4096); err == nil || !strings.Contains(err.Error(), "expected '$', got '?'") {
		t.Errorf("a bad element in a large command: got %v; want a protocol error", err)
	}
}

// Each Parse of a large command that arrives in pieces goes on from the
// element the last one stopped in: every element is read once until the
// command is whole, and once more to collect the arguments. Parsed from
// its first byte each time, this one's elements were read 2.45 million
// times on the event loop (docs/benchmarks.md, "Commands of many keys off
// the loop").
func TestReader_LargeCommandInPiecesIsReadOnce(t *testing.T) {
	const keys = 200000
	cmd := existsCommand(keys)
	r := NewReader(DefaultLimits(1 << 20))
	parses := 0
	for have := 0; ; {
		have = min(have+4096, len(cmd))
		if have < r.Need() {
			continue
		}
		parses++
		args, n, err := r.Parse(cmd[:have])
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			if n != len(cmd) || len(args) != keys+1 || string(args[keys]) != "k"+itoa(keys-1) {
				t.Fatalf("took %d of %d bytes, %d args; want the whole command and %d args", n, len(cmd), len(args), keys+1)
			}
			break
		}
	}
	if most := 2*(keys+1) + parses; r.examined > most {
		t.Errorf("%d elements in %d parses: %d looked at; want at most %d", keys+1, parses, r.examined, most)
	}
}

func TestReader_Incomplete(t *testing.T) {
	cmd := "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nvalue\r\nPING\r\n"
	r := NewReader(DefaultLimits(1 << 20))
	for i := 0; i < len(cmd)-len("PING\r\n"); i++ {
		if args, n, err := r.Parse([]byte(cmd[:i])); args != nil || n != 0 || err != nil {
			t.Fatalf("%q: got %q, %d, %v; want incomplete", cmd[:i], args, n, err)
		}
		if r.Need() <= i {
			t.Fatalf("%q: Need %d; want more than the %d bytes given", cmd[:i], r.Need(), i)
		}
	}
	args, n, err := r.Parse([]byte(cmd))
	if err != nil || n != len(cmd)-len("PING\r\n") || len(args) != 3 || string(args[2]) != "value" {
		t.Fatalf("got %q, %d, %v; want SET k value", args, n, err)
	}
	args, n, err = r.Parse([]byte(cmd[n:]))
	if err != nil || n != len("PING\r\n") || len(args) != 1 || string(args[0]) != "PING" {
		t.Fatalf("got %q, %d, %v; want inline PING", args, n, err)
	}
}

func TestSplitArgs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"set a b", []string{"set", "a", "b"}, true},
		{`  "a b"  'c d' `, []string{"a b", "c d"}, true},
		{`"\x41\n\\"`, []string{"A\n\\"}, true},
		{`'it\'s'`, []string{"it's"}, true},
		{`"a"b`, nil, false},
		{`'a`, nil, false},
		{`""`, []string{""}, true},
	}
	for _, tc := range cases {
		got, ok := SplitArgs(tc.in)
		if ok != tc.ok || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("SplitArgs(%q): got %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestServer_LargeRepliesDoNotPinMemory(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	big := strings.Repeat("x", keepValue+1)
	c.expect("+OK\r\n", "set", "big", big)
	args := []string{"mget"}
	for range keepReqs / 2 {
		args = append(args, "big")
	}
	c.cmd(args...)
	if got := c.reply(); !strings.HasPrefix(got, "*"+itoa(keepReqs/2)+"\r\n$"+itoa(keepValue+1)+"\r\n") {
		t.Fatalf("MGET: got %.40q", got)
	}
	c.expect("+PONG\r\n", "ping")
	var conn *conn
	ts.srv.mu.Lock()
	for k := range ts.srv.conns {
		conn = k
	}
	ts.srv.mu.Unlock()
	// The connection is idle now; its buffers are settled. Its event loop
	// owns them: count them there.
	kept := 0
	counted := make(chan struct{})
	conn.gc.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		defer close(counted)
		for i := range conn.resps {
			kept += cap(conn.resps[i].Value)
		}
		kept += cap(conn.w.Bytes())
		return nil
	}))
	<-counted
	if kept > keepValue {
		t.Errorf("connection keeps %d bytes of reply buffers after MGET; want at most %d", kept, keepValue)
	}
}

// A client that pipelines commands with large replies and never reads them
// is disconnected once maxUnread bytes wait for it; other clients go on.
func TestServer_ClientThatNeverReadsIsClosed(t *testing.T) {
	ts := startServer(t)
	big := strings.Repeat("v", 1<<20)
	ts.dial(t).expect("+OK\r\n", "set", "big", big)
	hog := ts.dial(t)
	hog.expect("+PONG\r\n", "ping") // counted among the clients
	open := ts.srv.Clients()
	// Enough GETs for four times the limit; the server must not buffer
	// them all. Written from a goroutine: the writes block once the
	// server stops reading.
	sent := make(chan error, 1)
	go func() {
		cmd := "*2\r\n$3\r\nget\r\n$3\r\nbig\r\n"
		var err error
		for i := 0; i < 4*maxUnread>>20 && err == nil; i++ {
			_, err = hog.nc.Write([]byte(cmd))
		}
		sent <- err
	}()
	// Read nothing until the server gives up on the connection (reading
	// earlier, on a slow machine, would drain the replies as fast as the
	// server makes them): it then closes it, so reading what it had sent
	// ends at its close (a reset or EOF) well short of every reply.
	<-sent // an error: the server closed it while the GETs went out
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.Clients() >= open {
		if time.Now().After(deadline) {
			t.Fatalf("connection still open 10s after %d GETs of 1 MiB went unread", 4*maxUnread>>20)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hog.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, hog.nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %d bytes read", n)
	}
	if n >= 4*maxUnread {
		t.Fatalf("read %d bytes: every reply was buffered", n)
	}
	ts.dial(t).expect("$-1\r\n", "get", "nothing")
}

// Connections still being handed to the loops when the server closes are
// closed with it: Close returns, and no goroutine is left (TestMain).
func TestServer_CloseWhileConnectionsArrive(t *testing.T) {
	ts := startServer(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					continue // refused once the listener is closed
				}
				nc.Write([]byte("PING\r\n"))
				nc.Close()
			}
		}()
	}
	for ts.srv.totalConn.Load() < 50 { // connections are arriving
		time.Sleep(time.Millisecond)
	}
	ts.mustClose(t, "while connections arrived")
	close(stop)
	wg.Wait()
}

// Before AUTH a client can only be told NOAUTH, and may leave far less of
// that unread: 20 clients pipelining HELLO and reading nothing used to
// hold 2.2 GB of NOAUTH replies. One past maxUnreadUnauth is closed.
func TestServer_UnauthenticatedClientThatNeverReadsIsClosedEarly(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.Password = "pw" })
	// The kernel's buffers on both sides hold little of the replies: the
	// client's receive buffer is set before it connects, so its window
	// stays small.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hog := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	hog.expect("-NOAUTH Authentication required.\r\n", "get", "k") // counted among the clients
	open := ts.srv.Clients()
	// Each HELLO (9 bytes) is answered with a NOAUTH error of about 100
	// bytes: 300,000 of them make 30 MB of replies, far past the limit,
	// and less than 64 MiB (maxUnread).
	sent := make(chan error, 1)
	go func() {
		_, err := hog.nc.Write([]byte(strings.Repeat("HELLO 3\r\n", 300_000)))
		sent <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.Clients() >= open {
		if time.Now().After(deadline) {
			t.Fatal("an unauthenticated connection leaving 30 MB of replies unread is still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-sent
	hog.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := io.Copy(io.Discard, hog.nc); n >= 4*maxUnreadUnauth {
		t.Errorf("read %d bytes of replies; want the connection closed near %d", n, maxUnreadUnauth)
	}
	ts.dial(t).expect("-NOAUTH Authentication required.\r\n", "get", "k")
}

// BenchmarkReader_LargeCommandInPieces parses an EXISTS of 200,000 keys
// arriving in 4 KB pieces, as a connection's loop does (parsing again once
// Need bytes are buffered): the loop's parsing cost of such a command.
func BenchmarkReader_LargeCommandInPieces(b *testing.B) {
	cmd := existsCommand(200000)
	b.SetBytes(int64(len(cmd)))
	for b.Loop() {
		r := NewReader(DefaultLimits(1 << 20))
		for have := 0; ; {
			have = min(have+4096, len(cmd))
			if have < r.Need() {
				continue
			}
			if _, n, err := r.Parse(cmd[:have]); err != nil || n > 0 {
				break
			}
		}
	}
}

// existsCommand is EXISTS k0 ... k(keys-1), encoded.
func existsCommand(keys int) []byte {
	var b strings.Builder
	b.WriteString("*" + itoa(keys+1) + "\r\n$6\r\nEXISTS\r\n")
	for i := range keys {
		k := "k" + itoa(i)
		b.WriteString("$" + itoa(len(k)) + "\r\n" + k + "\r\n")
	}
	return []byte(b.String())
}
