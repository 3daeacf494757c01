package resp

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// holdLoops keeps every event loop of ts busy until the returned function
// is called, as a loop busy serving other clients would be. The server
// must have taken in a connection already (its loops are known by then).
func holdLoops(t *testing.T, ts *testServer) (release func()) {
	t.Helper()
	ts.srv.mu.Lock()
	var loops []gnet.EventLoop
	for l := range ts.srv.afters {
		loops = append(loops, l)
	}
	ts.srv.mu.Unlock()
	if len(loops) == 0 {
		t.Fatal("no event loop known yet")
	}
	held := make(chan struct{}, len(loops))
	done := make(chan struct{})
	for _, l := range loops {
		err := l.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			held <- struct{}{}
			<-done
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	for range loops {
		<-held
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// While the loops are busy the server accepts no more than maxEnrolling
// connections they have not taken in: the rest wait in the kernel's
// backlog, and are served once the loops are free.
func TestServer_acceptsNoFasterThanTheLoopsTakeConnectionsIn(t *testing.T) {
	ts := startServer(t)
	ts.dial(t).expect("+PONG\r\n", "ping")
	release := holdLoops(t, ts)
	defer release()

	const n = 3 * maxEnrolling
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = ts.dial(t) // completes in the kernel, accepted or not
	}
	// Let the accept loop take what it may.
	waitFor(t, "the accept loop to stop at its bound", func() bool {
		return ts.srv.admitted.Load() >= 1+maxEnrolling
	})
	time.Sleep(100 * time.Millisecond)
	if got := ts.srv.admitted.Load(); got != 1+maxEnrolling {
		t.Errorf("accepted %d connections while the loops were busy; want the one served before and %d more", got, maxEnrolling)
	}
	release()
	for _, c := range conns {
		c.expect("+PONG\r\n", "ping")
	}
}

// A client that sends a long pipeline and closes without reading has only
// its first part run: the loop sends the replies to the first flushEvery
// of it, which makes the closed socket fail, and stops at the next.
func TestServer_longPipelineOfAClosedClientIsMostlyNotRun(t *testing.T) {
	ts := startServer(t)
	ts.dial(t).expect("+PONG\r\n", "ping")
	release := holdLoops(t, ts)
	defer release()

	get := "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
	const size = 128 << 10
	pipeline := strings.Repeat(get, size/len(get))
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.(*net.TCPConn).SetWriteBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(pipeline)); err != nil { // into the kernel's buffers: the loops are held
		t.Fatalf("write: %v", err)
	}
	nc.Close()
	waitFor(t, "the connection to be accepted", func() bool { return ts.srv.admitted.Load() == 2 })
	before := ts.srv.doneCmds.Load()
	release()
	waitFor(t, "the closed client's connection to end", func() bool { return ts.srv.admitted.Load() == 1 })
	ran := ts.srv.doneCmds.Load() - before
	sent := int64(len(pipeline) / len(get))
	if limit := int64(2 * (flushEvery/len(get) + 1)); ran > limit {
		t.Errorf("ran %d of the %d commands a closed client sent; want at most %d (two passes)", ran, sent, limit)
	}
	if ran == 0 {
		t.Errorf("ran none of the closed client's commands; want its first pass")
	}
}

// The input all connections hold unrun is bounded (MaxWaitingInput): when
// a connection's unfinished command takes the total past it, the
// connection holding the most is closed, whichever grew last, and what it
// held is let go with it.
func TestServer_waitingInputIsBounded(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxWaitingInput = 1 << 20 })
	bystander := ts.dial(t)
	bystander.expect("+PONG\r\n", "ping")
	const size = 1_000_000
	head := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n" // a SET of a 1 MB value
	held := func() int64 { return ts.srv.waiting.Load() }

	hog := ts.dial(t) // parks most of a command and sends no more
	hog.send(head + strings.Repeat("x", 700_000))
	waitFor(t, "the first client's part to be held", func() bool { return held() == int64(len(head)+700_000) })
	c := ts.dial(t) // sends its command in two pieces, the first taking the total past the bound
	c.send(head + strings.Repeat("x", 400_000))
	// Closed with input unread, the hog's socket may be reset rather than ended.
	hog.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(hog.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the client holding the most still connected (%v) with %d bytes waiting in all; want it closed past %d", err, held(), 1<<20)
	}
	waitFor(t, "the closed client's part to be let go", func() bool { return held() == int64(len(head)+400_000) })
	c.send(strings.Repeat("x", size-400_000) + "\r\n")
	if got := c.reply(); got != "+OK\r\n" {
		t.Errorf("the second client's SET, completed: got %q; want +OK", got)
	}
	waitFor(t, "nothing to be held", func() bool { return held() == 0 })
	bystander.expect(":1\r\n", "exists", "k")
}
