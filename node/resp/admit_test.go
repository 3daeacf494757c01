package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestServer_MaxClients_refusesPastTheLimitAndAdmitsAgainOnceOneLeaves(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = 3 })
	held := make([]*rawConn, 3)
	for i := range held {
		held[i] = ts.dial(t)
		held[i].expect("+PONG\r\n", "ping")
	}

	extra := ts.dial(t)
	if got := extra.reply(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("a client past the limit read %q", got)
	}
	if !extra.closed() {
		t.Error("a client past the limit was not closed after its error")
	}
	for _, c := range held {
		c.expect("+PONG\r\n", "ping") // the admitted ones lost nothing
	}
	if got := ts.srv.Refused(); got != 1 {
		t.Errorf("Refused() = %d; want 1", got)
	}
	info := held[0].info()
	for _, want := range []string{"maxclients:3\r\n", "rejected_connections:1\r\n", "connected_clients:3\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	held[0].expect("*2\r\n$10\r\nmaxclients\r\n$1\r\n3\r\n", "config", "get", "maxclients")

	held[2].nc.Close()
	waitFor(t, "the closed client to be let go", func() bool { return ts.srv.Clients() == 2 })
	again := ts.dial(t)
	again.expect("+PONG\r\n", "ping")
}

// A burst of connections is counted as it is accepted, not once each has
// reached its event loop: the loops register connections in batches, after
// the accept loop has taken more.
func TestServer_MaxClients_holdsForABurst(t *testing.T) {
	const limit, burst = 5, 40
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = limit })
	conns := make([]net.Conn, burst)
	for i := range conns {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		conns[i] = nc
	}
	waitFor(t, "every connection to be admitted or refused", func() bool {
		return int64(ts.srv.Clients())+ts.srv.Refused() == burst
	})
	if got := ts.srv.Clients(); got != limit {
		t.Fatalf("%d of %d connections admitted; want the limit, %d", got, burst, limit)
	}
	// The refused ones read the error and end of file; the others, nothing
	// until they send a command. None has sent anything, so no refusal is
	// cut short by a reset.
	admitted := 0
	for _, nc := range conns {
		nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		got, err := io.ReadAll(nc)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && len(got) == 0:
			admitted++
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := nc.Write([]byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 7)
			if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "+PONG\r\n" {
				t.Errorf("an admitted client's PING: %q, %v", buf, err)
			}
		case err == nil && string(got) == "-ERR max number of clients reached\r\n":
		default:
			t.Errorf("a client read %q, %v", got, err)
		}
	}
	if admitted != limit {
		t.Errorf("%d clients were served; want %d", admitted, limit)
	}
}

// In cluster mode Redis words the error as its cluster nodes do.
func TestServer_MaxClients_clusterModeWording(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients, cfg.ClusterMode = 1, true })
	ts.dial(t).expect("+PONG\r\n", "ping")
	if got := ts.dial(t).reply(); got != "-ERR max number of clients + cluster connections reached\r\n" {
		t.Errorf("a client past the limit read %q", got)
	}
}

func TestServer_MaxClients_noLimitWhenNegative(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = -1 })
	for range 20 {
		ts.dial(t).expect("+PONG\r\n", "ping")
	}
	if got := ts.srv.Refused(); got != 0 {
		t.Errorf("Refused() = %d with no limit", got)
	}
}

// info returns the server's INFO text.
func (c *rawConn) info() string {
	c.t.Helper()
	c.cmd("info")
	r := c.reply()
	if _, body, ok := strings.Cut(r, "\r\n"); ok {
		return body
	}
	return r
}
