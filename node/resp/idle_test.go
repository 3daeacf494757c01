package resp

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestServer_IdleTimeout_closesIdleClientsOnly(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.IdleTimeout = timeout })
	idle, busy := ts.dial(t), ts.dial(t)
	idle.expect("+PONG\r\n", "ping")
	last := time.Now()
	type eof struct {
		after time.Duration // since the idle client's last command
		err   error
	}
	closed := make(chan eof, 1)
	go func() {
		idle.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(idle.br)
		closed <- eof{time.Since(last), err}
	}()

	// The busy client keeps sending for four timeouts; the idle one, after
	// its PING, nothing.
	for end := time.Now().Add(4 * timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		busy.expect("+PONG\r\n", "ping")
	}
	got := <-closed
	if got.err != nil {
		t.Fatalf("the idle client was not closed: %v", got.err)
	}
	if got.after < timeout {
		t.Errorf("the idle client was closed after %v, before the timeout", got.after)
	}
	busy.expect("+PONG\r\n", "ping")
	if got := ts.srv.IdleClosed(); got != 1 {
		t.Errorf("IdleClosed() = %d; want 1", got)
	}
}

// A command that runs longer than the timeout (here a GET of a key another
// node serves, slowly) leaves its connection open: the client is waiting,
// not idle.
func TestServer_IdleTimeout_notWhileACommandRuns(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		cfg.IdleTimeout = timeout
		b.remote = func(key string) bool { return key == "slow" }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			select {
			case <-time.After(5 * timeout):
			case <-ctx.Done():
			}
		}
	})
	c := ts.dial(t)
	c.expect("$-1\r\n", "get", "slow")
	c.expect("+PONG\r\n", "ping")
}

func TestServer_IdleTimeout_configGet(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.IdleTimeout = 90 * time.Second })
	ts.dial(t).expect("*2\r\n$7\r\ntimeout\r\n$2\r\n90\r\n", "config", "get", "timeout")
	startServer(t).dial(t).expect("*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n", "config", "get", "timeout")
}

// bigReply stores keys of 1 MiB values and returns an MGET of them all,
// and the length of its reply: far more than the sockets buffer.
func bigReply(t *testing.T, c *rawConn, keys int) (mget []string, size int) {
	t.Helper()
	v := strings.Repeat("v", 1<<20)
	mget = []string{"mget"}
	size = len("*" + itoa(keys) + "\r\n")
	for i := range keys {
		k := "big:" + itoa(i)
		c.expect("+OK\r\n", "set", k, v)
		mget = append(mget, k)
		size += len("$"+itoa(len(v))+"\r\n") + len(v) + 2
	}
	return mget, size
}

// A client reading a long reply slowly, for many timeouts, is not idle:
// Redis too counts each write to a client as its activity.
func TestServer_IdleTimeout_notWhileTheClientReadsAReply(t *testing.T) {
	const timeout = 400 * time.Millisecond
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.IdleTimeout = timeout })
	c := ts.dial(t)
	mget, size := bigReply(t, c, 40)
	// What the sockets hold once the node has handed them the last bytes
	// is out of its sight (and of Redis's): keep it small beside the
	// timeout, so that the client reads it well within one.
	if err := c.nc.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	c.cmd(mget...)
	start := time.Now()
	buf := make([]byte, 256<<10)
	read := 0
	for read < size {
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(c.br, buf[:min(len(buf), size-read)])
		read += n
		if err != nil {
			t.Fatalf("after %v and %d of %d bytes: %v; want the whole reply", time.Since(start), read, size, err)
		}
		time.Sleep(10 * time.Millisecond) // 160 reads: 1.6 s, four timeouts
	}
	if d := time.Since(start); d < 3*timeout {
		t.Fatalf("read the reply in %v: too fast to test the timeout", d)
	}
	c.expect("+PONG\r\n", "ping")
	if got := ts.srv.IdleClosed(); got != 0 {
		t.Errorf("IdleClosed() = %d; want 0", got)
	}
}

// A client that stops reading its replies is closed once the timeout
// passes without its unsent replies going down.
func TestServer_IdleTimeout_aClientThatStopsReading_isClosed(t *testing.T) {
	const timeout = 200 * time.Millisecond
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.IdleTimeout = timeout })
	c := ts.dial(t)
	mget, _ := bigReply(t, c, 40)
	c.cmd(mget...)
	waitFor(t, "a client that reads nothing to be closed", func() bool { return ts.srv.IdleClosed() > 0 })
}
