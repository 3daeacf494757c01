package resp

import (
	"context"
	"io"
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
