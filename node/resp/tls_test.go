package resp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cloakroom/cloakroom/internal/testcert"
)

// tlsServer is a test server that also serves TLS clients, with a
// certificate for 127.0.0.1 from ca.
type tlsServer struct {
	*testServer
	tlsAddr string
	ca      *testcert.CA
}

// tlsOptions are startTLSServer's: mtls makes every TLS client present a
// certificate the test's CA signed; smallSend gives the node's side of
// each TLS connection a send buffer of a few KiB.
type tlsOptions struct{ mtls, smallSend bool }

// startTLSServer starts a server with a plain and a TLS listener.
func startTLSServer(t *testing.T, o tlsOptions, opts ...func(*Config, *storeBackend)) *tlsServer {
	t.Helper()
	ca := testcert.NewCA(t, "resp-test-ca")
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Pair(t, "node-a")}, MinVersion: tls.VersionTLS12}
	if o.mtls {
		cfg.ClientCAs, cfg.ClientAuth = ca.Pool(), tls.RequireAndVerifyClientCert
	}
	ts := startServer(t, opts...)
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.smallSend {
		ln = smallSendListener{ln}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.Serve(tls.NewListener(ln, cfg))
	}()
	t.Cleanup(func() {
		ts.srv.Close()
		<-done
	})
	return &tlsServer{testServer: ts, tlsAddr: ln.Addr().String(), ca: ca}
}

// smallSendListener's connections have a small send buffer.
type smallSendListener struct{ net.Listener }

func (l smallSendListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		err = nc.(*net.TCPConn).SetWriteBuffer(4 << 10)
	}
	return nc, err
}

// clientTLS is a client's TLS configuration trusting the server's CA, with
// a certificate of the CA's when cert is set.
func (ts *tlsServer) clientTLS(t *testing.T, cert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: ts.ca.Pool(), ServerName: "127.0.0.1"}
	if cert {
		cfg.Certificates = []tls.Certificate{ts.ca.Pair(t, "client")}
	}
	return cfg
}

// dialTLS is dial over TLS.
func (ts *tlsServer) dialTLS(t *testing.T, cert bool) *rawConn {
	t.Helper()
	d := &tls.Dialer{Config: ts.clientTLS(t, cert)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func TestTLS_goRedisSessionFlowAndPipeline(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{})
	for _, proto := range []int{2, 3} {
		rdb := goredis.NewClient(&goredis.Options{Addr: ts.tlsAddr, Protocol: proto, TLSConfig: ts.clientTLS(t, false)})
		t.Cleanup(func() { rdb.Close() })
		ctx := context.Background()
		if err := rdb.Set(ctx, "sess:1", "alice", time.Minute).Err(); err != nil {
			t.Fatalf("RESP%d SET over TLS: %v", proto, err)
		}
		if got, err := rdb.Get(ctx, "sess:1").Result(); err != nil || got != "alice" {
			t.Fatalf("RESP%d GET over TLS: %q, %v; want alice", proto, got, err)
		}
		// A pipeline larger than a TLS record and than the copy buffers,
		// with values large enough that its replies are too.
		big := strings.Repeat("v", 100<<10)
		pipe := rdb.Pipeline()
		for i := range 200 {
			pipe.Set(ctx, fmt.Sprint("k", i), big, 0)
			pipe.Get(ctx, fmt.Sprint("k", i))
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			t.Fatalf("RESP%d pipeline over TLS: %v", proto, err)
		}
		for i := 1; i < len(cmds); i += 2 {
			if v := cmds[i].(*goredis.StringCmd).Val(); v != big {
				t.Fatalf("RESP%d pipelined GET %d: %d bytes; want %d", proto, i/2, len(v), len(big))
			}
		}
	}
	// The key written over TLS is the same key for plain clients.
	c := ts.dial(t)
	c.expect("$5\r\nalice\r\n", "get", "sess:1")
}

func TestTLS_clientListShowsTheTLSClientsAddress(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{})
	c := ts.dialTLS(t, false)
	c.cmd("client", "info")
	info := c.reply()
	want := "addr=" + c.nc.LocalAddr().String() + " laddr=" + ts.tlsAddr + " "
	if !strings.Contains(info, want) {
		t.Errorf("CLIENT INFO over TLS: %q; want it to contain %q", info, want)
	}
}

func TestTLS_clientThatHangsUpIsClosedOnTheNode(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{})
	c := ts.dialTLS(t, false)
	c.expect("+PONG\r\n", "ping")
	if n := ts.srv.Clients(); n != 1 {
		t.Fatalf("Clients = %d; want 1", n)
	}
	c.nc.Close()
	waitFor(t, "the node to close a TLS client that hung up", func() bool { return ts.srv.Clients() == 0 })
}

func TestTLS_quitAndProtocolErrorsAreReadBeforeTheClose(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{})
	c := ts.dialTLS(t, false)
	c.expect("+OK\r\n", "quit")
	if !c.closed() {
		t.Error("after QUIT over TLS: the connection stayed open")
	}
	c = ts.dialTLS(t, false)
	c.send("*1\r\n$-5\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "-ERR Protocol error") {
		t.Errorf("malformed RESP over TLS: %q; want a protocol error", got)
	}
	if !c.closed() {
		t.Error("after a protocol error over TLS: the connection stayed open")
	}
}

func TestTLS_plainTextAndStalledHandshakesAreClosedAndHoldNoOneUp(t *testing.T) {
	const deadline = 2 * time.Second
	ts := startTLSServer(t, tlsOptions{}, func(cfg *Config, _ *storeBackend) { cfg.handshakeTimeout = deadline })
	// A Redis client that forgot TLS: its PING is no handshake.
	plain, err := net.Dial("tcp", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("PING\r\n"))
	plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(plain); err != nil || strings.Contains(string(b), "PONG") {
		t.Errorf("plain text on the TLS port: read %q, %v; want it closed unanswered", b, err)
	}
	// A TCP health check: connects and closes. Not a failed handshake.
	probe, err := net.Dial("tcp", ts.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	// Clients that connect and send nothing, more of them than the accept
	// loop has enrolling tokens: another is served while they wait, and
	// they are closed at the deadline.
	var stalled []net.Conn
	for range 70 {
		nc, err := net.Dial("tcp", ts.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		stalled = append(stalled, nc)
	}
	c := ts.dialTLS(t, false)
	c.expect("+PONG\r\n", "ping")
	last := stalled[len(stalled)-1]
	last.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := last.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("the last stalled client, read when another was served: %v; want it still waiting (a timeout), or the others waited for the stalled ones' deadline", err)
	}
	for _, nc := range stalled {
		nc.SetReadDeadline(time.Now().Add(deadline + 5*time.Second))
		if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("a client that never began its handshake: read %v; want EOF at the handshake deadline", err)
		}
	}
	// A client may see its close before the node has counted it.
	waitFor(t, "71 failed handshakes counted", func() bool { return ts.srv.TLSHandshakeFailures() >= 71 })
	waitFor(t, "the stalled clients and the probe to be counted out", func() bool { return ts.srv.admitted.Load() == 1 })
	if n := ts.srv.TLSHandshakeFailures(); n != 71 {
		t.Errorf("TLSHandshakeFailures = %d; want 71 (the plain-text client and the stalled ones, not the probe)", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A TLS client past MaxClients is closed before its handshake, with no
// plain-text error it could not read.
func TestTLS_pastMaxClientsClosedBeforeTheHandshake(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{}, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = 1 })
	ts.dialTLS(t, false).expect("+PONG\r\n", "ping")
	d := &tls.Dialer{Config: ts.clientTLS(t, false)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", ts.tlsAddr)
	if err == nil {
		nc.Close()
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a TLS client past the limit: %v; want the connection closed (EOF or reset) during its handshake", err)
	}
	if n := ts.srv.Refused(); n != 1 {
		t.Errorf("Refused = %d; want 1", n)
	}
}

// A TLS client that pipelines commands with large replies and never reads
// them is closed as a plain one is (TestServer_ClientThatNeverReadsIsClosed),
// and its copying goroutines end within tlsDrain though it still reads
// nothing: the server's Close, which waits for them, returns.
func TestTLS_clientThatNeverReadsIsClosed(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{smallSend: true})
	big := strings.Repeat("v", 1<<20)
	ts.dial(t).expect("+OK\r\n", "set", "big", big)
	// The node's side of the connection has a small send buffer, so that
	// what is under way when the node gives up does not fit in the
	// sockets' buffers: its copying goroutine must give up too.
	hog := ts.dialTLS(t, false)
	hog.expect("+PONG\r\n", "ping")
	open := ts.srv.Clients()
	cmd := strings.Repeat("*2\r\n$3\r\nget\r\n$3\r\nbig\r\n", 4*maxUnread>>20)
	if _, err := hog.nc.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to close the client that reads nothing", func() bool { return ts.srv.Clients() < open })
	ts.dialTLS(t, false).expect("$-1\r\n", "get", "nothing")
	ts.mustClose(t, "with a TLS client that reads nothing")
	hog.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, hog.nc); isTimeout(err) || n >= 4*maxUnread {
		t.Fatalf("the client read %d bytes, then %v; want fewer than every reply, then the close", n, err)
	}
}

func TestTLS_clusterModeNamesTLSAddressesToTLSClients(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{}, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	ts.b.topo.Store(&Topology{Epoch: 2, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{0, 8191}}, Primary: Peer{Name: "node-a", Addr: ts.addr}},
		{Slots: [][2]uint16{{8192, 16383}}, Primary: Peer{Name: "node-b", Addr: "10.0.0.2:6379"}},
	}})
	ts.b.tlsTopo.Store(&Topology{Epoch: 2, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{0, 8191}}, Primary: Peer{Name: "node-a", Addr: ts.tlsAddr}},
		{Slots: [][2]uint16{{8192, 16383}}, Primary: Peer{Name: "node-b", Addr: "10.0.0.2:6380"}},
	}})
	key := "k0"
	for i := 0; ringSlot(key) < 8192; i++ {
		key = fmt.Sprint("k", i)
	}
	moved := "-MOVED " + fmt.Sprint(ringSlot(key)) + " "
	ts.dial(t).expect(moved+"10.0.0.2:6379\r\n", "get", key)
	s := ts.dialTLS(t, false)
	s.expect(moved+"10.0.0.2:6380\r\n", "get", key)
	s.cmd("cluster", "slots")
	if got := s.reply(); !strings.Contains(got, ":6380\r\n") || strings.Contains(got, ":6379\r\n") {
		t.Errorf("CLUSTER SLOTS over TLS: %q; want the TLS ports only", got)
	}
	s.cmd("cluster", "nodes")
	if got := s.reply(); !strings.Contains(got, " 10.0.0.2:6380@0,node-b ") {
		t.Errorf("CLUSTER NODES over TLS: %q; want node-b at its TLS address", got)
	}
}

func TestTLS_closeEndsEveryTLSConnection(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{})
	var conns []*rawConn
	for range 5 {
		c := ts.dialTLS(t, false)
		c.expect("+PONG\r\n", "ping")
		conns = append(conns, c)
	}
	if n := ts.srv.TLSClients(); n != 5 {
		t.Errorf("TLSClients = %d; want 5", n)
	}
	ts.mustClose(t, "with TLS clients connected")
	if n := ts.srv.TLSClients(); n != 0 {
		t.Errorf("Close returned with %d TLS connections' copying goroutines running", n)
	}
	for _, c := range conns {
		if !c.closed() {
			t.Error("after Close: a TLS connection stayed open")
		}
	}
}

// Replies before a QUIT or a protocol error all reach a TLS client that
// reads them slowly, as they reach a plain one
// (TestServer_QuitAndProtocolErrors_sendEveryReplyFirst); and one still
// sending after a protocol error reads the reply and the error, not a
// reset. (On loopback the client's receive window takes the whole reply
// at once, so this does not reach copyOut's per-write deadline; a smaller
// window makes loopback's large segments stall instead.)
func TestTLS_everyReplyBeforeTheCloseArrives(t *testing.T) {
	ts := startTLSServer(t, tlsOptions{smallSend: true}, func(cfg *Config, _ *storeBackend) { cfg.tlsDrain = 500 * time.Millisecond })
	// Small enough for the socket pair to take at once, so that the loop
	// closes its end at once, and larger than the sockets' buffers take
	// unread, so that the rest goes at the client's pace.
	val := strings.Repeat("v", 160<<10)
	ts.dial(t).expect("+OK\r\n", "set", "val", val)
	reply := "$" + itoa(len(val)) + "\r\n" + val + "\r\n"
	for _, tc := range []struct{ name, last, want string }{
		{"QUIT", "QUIT\r\n", "+OK\r\n"},
		{"a protocol error", "*1\r\n$-1\r\n", "-ERR Protocol error"},
	} {
		c := ts.dialTLS(t, false)
		c.send("GET val\r\n" + tc.last)
		got := readSlowly(t, c)
		rest, ok := strings.CutPrefix(string(got), reply)
		if !ok || !strings.HasPrefix(rest, tc.want) {
			t.Fatalf("%s: got %d bytes (%.60q at the end); want the reply of %d bytes, then %q", tc.name, len(got), got[max(0, len(got)-60):], len(reply), tc.want)
		}
	}

	// A value over the limit, still being sent while the reply before it
	// goes out: the node reads and drops it, so that its close does not
	// reset the connection under the reply and the error.
	c := ts.dialTLS(t, false)
	c.send("GET val\r\n*2\r\n$3\r\nget\r\n$600000000\r\n")
	go func() {
		junk := []byte(strings.Repeat("x", 64<<10))
		for range 64 {
			if _, err := c.nc.Write(junk); err != nil {
				return
			}
		}
	}()
	got := readSlowly(t, c)
	if rest, ok := strings.CutPrefix(string(got), reply); !ok || !strings.HasPrefix(rest, "-ERR Protocol error: invalid bulk length") {
		t.Errorf("a client still sending after a protocol error: got %d bytes (%.60q at the end); want the reply, then the error", len(got), got[max(0, len(got)-60):])
	}
}

// readSlowly reads c until it ends, 8 KiB every 50 ms: about 1 s for the
// 160 KiB reply, twice the test's tlsDrain.
func readSlowly(t *testing.T, c *rawConn) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 8<<10)
	for {
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.br.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}
