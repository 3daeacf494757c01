//go:build unix

package resp

import (
	"net"
	"syscall"
	"testing"
)

// A node whose open-file limit is low keeps half of it for its peers and
// other clients, as Redis lowers maxclients to fit; with no limit of its
// own it reports the open-file limit as maxclients.
func TestServer_MaxClients_fitsTheOpenFileLimit(t *testing.T) {
	var was syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	if was.Cur < 1000 {
		t.Skipf("open-file limit %d is below the test's", was.Cur)
	}
	low := was
	low.Cur = 1000
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &was) })

	ts := startServer(t) // the default limit, 10000
	if got := ts.srv.cfg.MaxClients; got != 500 {
		t.Errorf("MaxClients with 1000 descriptors = %d; want 500", got)
	}
	ts.dial(t).expect("*2\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n", "config", "get", "maxclients")
	unlimited := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = -1 })
	unlimited.dial(t).expect("*2\r\n$10\r\nmaxclients\r\n$4\r\n1000\r\n", "config", "get", "maxclients")
	small := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = 20 })
	if got := small.srv.cfg.MaxClients; got != 20 {
		t.Errorf("MaxClients 20 with 1000 descriptors became %d", got)
	}
	// A TLS client takes three descriptors: a sixth of them.
	secure := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.TLS = true })
	if got := secure.srv.cfg.MaxClients; got != 166 {
		t.Errorf("MaxClients with 1000 descriptors and TLS = %d; want 166", got)
	}
}

// A connection the event loops never open (here its socket is closed
// before the hand-over, so gnet refuses it) is let go by its enrolment, or
// the count would creep up to the limit and refuse every client.
func TestServer_MaxClients_connectionNeverOpenedIsLetGo(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.MaxClients = 2 })
	ts.dial(t).expect("+PONG\r\n", "ping")
	s := ts.srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.enrolling <- struct{}{} // as Serve takes a token before it accepts
	if !s.admit() || !s.enroll(nc) {
		t.Fatal("the connection was not admitted")
	}
	waitFor(t, "the failed enrolment to let its connection go", func() bool { return s.admitted.Load() == 1 })
	ts.dial(t).expect("+PONG\r\n", "ping") // the second place is free
}
