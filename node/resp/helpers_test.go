package resp

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeBackend is a Backend over a local store, standing in for a node.
type storeBackend struct {
	st         *store.Store
	name       string
	topo       atomic.Pointer[Topology]
	tlsTopo    atomic.Pointer[Topology] // what TLS clients see
	allowFlush bool
	limits     protocol.Limits

	// remote, when set, names the keys served "elsewhere": Local says no,
	// and Do calls wait first, standing in for the network.
	remote func(key string) bool
	wait   func(ctx context.Context, req *protocol.Request)

	// hold, when set, is called at the start of every Do, local or not:
	// a test holds a call there to see what runs meanwhile.
	hold func(ctx context.Context, req *protocol.Request)

	// failures is how many more Do and DoAtomic calls on remote keys fail
	// with CodeUnavailable, as while the cluster notices a lost node.
	failures atomic.Int32

	// lost is how many more Do and DoAtomic calls on remote keys (each
	// key, for a DEL of several) run and then fail with CodeUnavailable,
	// as a forward whose answer did not come in time.
	lost atomic.Int32

	// backwards makes DoAll run its requests one at a time, last first:
	// DoAll may run them in any order, and this order shows a caller that
	// relies on theirs.
	backwards bool

	dos     atomic.Int32 // Do calls, including DoAll's
	atomics atomic.Int32 // DoAtomic calls
	alls    atomic.Int32 // DoAll calls
	allMost atomic.Int32 // the most requests in one DoAll call
}

func (b *storeBackend) Do(ctx context.Context, req *protocol.Request, resp *protocol.Response) {
	b.dos.Add(1)
	if b.hold != nil {
		b.hold(ctx, req)
	}
	if b.remote != nil && b.remote(req.Key) && b.wait != nil {
		b.wait(ctx, req)
	}
	if req.Op == protocol.OpDelete && b.remote != nil {
		b.deleteEach(req, resp)
		return
	}
	defer b.loses(req.Key, resp)
	if b.fails(req.Key) {
		*resp = protocol.Response{}
		resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "forward: node-b is unreachable"))
		return
	}
	if req.Op == protocol.OpFlush && !b.allowFlush {
		resp.SetErr(protocol.Errorf(protocol.CodeDisabled, "flush is disabled"))
		return
	}
	if err := b.limits.Check(req); err != nil {
		*resp = protocol.Response{}
		resp.SetErr(err)
		return
	}
	b.st.Exec(req, resp)
}

func (b *storeBackend) DoAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) error {
	b.atomics.Add(1)
	if b.remote != nil && len(reqs) > 0 && b.remote(reqs[0].Key) && b.wait != nil {
		b.wait(ctx, reqs[0])
	}
	if len(reqs) > 0 && b.fails(reqs[0].Key) {
		return protocol.Errorf(protocol.CodeUnavailable, "forward: node-b is unreachable")
	}
	err := b.st.ExecAtomic(reqs, resps)
	var lost protocol.Response
	if err == nil && len(reqs) > 0 && b.loses(reqs[0].Key, &lost) {
		return lost.Err()
	}
	return err
}

// deleteEach deletes req's keys as a node does those on several nodes:
// each owner's, even if another's fails; the response counts what was
// deleted, with the error of a key that failed.
func (b *storeBackend) deleteEach(req *protocol.Request, resp *protocol.Response) {
	*resp = protocol.Response{}
	failed := false
	for _, k := range req.Keys {
		if b.fails(k) {
			failed = true
			continue
		}
		var r protocol.Response
		b.st.Exec(&protocol.Request{Op: protocol.OpDelete, Keys: []string{k}, Value: req.Value}, &r)
		if b.loses(k, &r) {
			failed = true
			continue
		}
		resp.N += r.N
	}
	if failed {
		resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "forward: node-b is unreachable"))
	}
}

// loses reports whether the answer of a call on key that ran is lost,
// using up one of lost; if so it makes resp say so.
func (b *storeBackend) loses(key string, resp *protocol.Response) bool {
	if b.remote == nil || !b.remote(key) || b.lost.Add(-1) < 0 {
		return false
	}
	*resp = protocol.Response{}
	resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "forward: node-b did not answer in time"))
	return true
}

// fails reports whether a call on key fails, using up one of failures.
func (b *storeBackend) fails(key string) bool {
	return b.remote != nil && b.remote(key) && b.failures.Add(-1) >= 0
}

func (b *storeBackend) DoAll(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) {
	b.alls.Add(1)
	for n := int32(len(reqs)); ; {
		if most := b.allMost.Load(); n <= most || b.allMost.CompareAndSwap(most, n) {
			break
		}
	}
	if b.backwards {
		for i := len(reqs) - 1; i >= 0; i-- {
			b.Do(ctx, reqs[i], resps[i])
		}
		return
	}
	var wg sync.WaitGroup
	for i := range reqs { // at once, as a node sends them to other nodes
		wg.Go(func() { b.Do(ctx, reqs[i], resps[i]) })
	}
	wg.Wait()
}

func (b *storeBackend) Partitions() int { return b.st.Partitions() }
func (b *storeBackend) Name() string    { return b.name }
func (b *storeBackend) Topology(tls bool) *Topology {
	if tls {
		return b.tlsTopo.Load()
	}
	return b.topo.Load()
}
func (b *storeBackend) Local(req *protocol.Request) bool {
	return b.remote == nil || (req.Key != "" && !b.remote(req.Key))
}

var _ Backend = (*storeBackend)(nil)

// testServer is a Server on a loopback port with a fresh store.
type testServer struct {
	srv  *Server
	b    *storeBackend
	addr string
}

// startServer starts a server; opts adjust the config and backend.
func startServer(t testing.TB, opts ...func(*Config, *storeBackend)) *testServer {
	t.Helper()
	b := &storeBackend{st: store.New(store.Config{Partitions: 271}), name: "node-a", allowFlush: true, limits: protocol.DefaultLimits()}
	cfg := Config{}
	for _, o := range opts {
		o(&cfg, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if b.topo.Load() == nil {
		b.topo.Store(&Topology{Epoch: 1, Settled: true, Shards: []Shard{{Slots: [][2]uint16{{0, ring.SlotCount - 1}}, Primary: Peer{Name: b.name, Addr: ln.Addr().String()}}}})
	}
	srv := NewServer(b, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
		b.st.Flush()
	})
	return &testServer{srv: srv, b: b, addr: ln.Addr().String()}
}

// mustClose closes the server and fails the test if Close does not return
// within 5 s; while names the situation, for the message.
func (ts *testServer) mustClose(t *testing.T, while string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		ts.srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return " + while)
	}
}

// rawConn speaks bytes to the server, for exact-reply tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// cmd sends args as a RESP array.
func (c *rawConn) cmd(args ...string) {
	c.t.Helper()
	var sb strings.Builder
	sb.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		sb.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	c.send(sb.String())
}

func itoa(n int) string { return strconv.Itoa(n) }

// reply reads one whole reply and returns its raw bytes.
func (c *rawConn) reply() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sb strings.Builder
	if err := readReply(c.br, &sb); err != nil {
		c.t.Fatalf("read reply: %v (so far %.200q)", err, sb.String())
	}
	return sb.String()
}

// expect sends args and checks the raw reply.
func (c *rawConn) expect(want string, args ...string) {
	c.t.Helper()
	c.cmd(args...)
	if got := c.reply(); got != want {
		c.t.Errorf("%q: got %q; want %q", args, got, want)
	}
}

// closed reports whether the server closed the connection (after any
// pending bytes).
func (c *rawConn) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c.br)
	return err == nil
}

func readReply(br *bufio.Reader, sb *strings.Builder) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	sb.WriteString(line)
	n, _ := parseInt([]byte(strings.TrimRight(line[1:], "\r\n")))
	switch line[0] {
	case '$', '=':
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		sb.Write(buf)
	case '*', '~', '>':
		for i := int64(0); i < n; i++ {
			if err := readReply(br, sb); err != nil {
				return err
			}
		}
	case '%':
		for i := int64(0); i < 2*n; i++ {
			if err := readReply(br, sb); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitFor polls cond for up to 10 s; what names the condition.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
