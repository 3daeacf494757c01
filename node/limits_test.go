package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
)

func TestNode_MaxConns_closesConnectionsPastTheLimit(t *testing.T) {
	n := startLimited(t, func(cfg *node.Config) { cfg.MaxConns = 2 })
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		t.Cleanup(func() { c.Close() })
	}
	// The two held connections are accepted before the third is tried:
	// the node has read nothing from them, but a write to each succeeds.
	for _, c := range held {
		if _, err := c.Write([]byte{0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	third, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection past --max-conns was kept open")
	}
}

func TestNode_RESPMaxClients_refusesAndCountsInMetrics(t *testing.T) {
	n := startLimited(t, func(cfg *node.Config) {
		cfg.RESPAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.RESPMaxClients = 1
	})
	first, err := net.Dial("tcp", n.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, 7)
	if _, err := first.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(first, reply); err != nil || string(reply) != "+PONG\r\n" {
		t.Fatalf("first client: %q, %v", reply, err)
	}
	second, err := net.Dial("tcp", n.RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(second); err != nil || string(got) != "-ERR max number of clients reached\r\n" {
		t.Fatalf("second client read %q, %v; want the max clients error and end of file", got, err)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ncloakroom_resp_clients 1\n", "\ncloakroom_resp_refused_connections_total 1\n", "\ncloakroom_resp_retries_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}

// startLimited starts a lone node with only its native listener, as adjust
// changes it.
func startLimited(t *testing.T, adjust func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "limits"
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "", ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	adjust(&cfg)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// fillNative opens idle connections to the native listener at addr until
// one is refused, and returns the accepted ones. from is the local IP to
// dial from.
func fillNative(t *testing.T, addr, from string) []net.Conn {
	t.Helper()
	var held []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	for range 100 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			return held // closed at once: the node is at its limit
		}
		held = append(held, c)
	}
	t.Fatal("100 connections and none refused")
	return nil
}

// A client that opens connections until --max-conns must not cut a node off
// from its cluster: a member still connects, naming itself, from the
// address it gossips from; anyone else is refused.
func TestCluster_NodeAtMaxConns_stillTakesItsMembers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("dials from 127.0.0.2, which only Linux routes to loopback by default")
	}
	const maxConns = 6
	c := nodetest.Start(t, 2, func(_ int, cfg *node.Config) { cfg.MaxConns = maxConns })
	a := c.Node(0)
	// From an address no member gossips from, connections past the limit
	// are closed at once.
	held := fillNative(t, a.Addr(), "127.0.0.2")

	// From a member's address, a connection naming no member, or a
	// stranger, is refused with an error.
	for _, peer := range []string{"", "node-9"} {
		cl, err := client.New(client.Config{Addrs: []string{a.Addr()}, Direct: true, Peer: peer, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Set(ctxFor(t), "k", []byte("v"), time.Minute)
		cl.Close()
		if err == nil || !strings.Contains(err.Error(), "--max-conns") {
			t.Errorf("a client naming %q past the limit: %v; want refused, saying why", peer, err)
		}
	}

	// One from a member's address that never says hello is closed after
	// the peer timeout (2 s): it cannot hold the reserve.
	idle, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	idle.SetReadDeadline(start.Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("a silent connection past the limit was kept open for 10 s")
	} else if waited := time.Since(start); waited < time.Second {
		t.Errorf("a silent connection past the limit was closed after %v; want the peer timeout", waited)
	}

	// Nor can one that floods it with frames that are not a hello and
	// never reads its answers.
	flood, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	flood.(*net.TCPConn).SetReadBuffer(4096)
	flood.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for err == nil {
		_, err = flood.Write([]byte{0, 0, 0, 1, 0xc1}) // one byte of msgpack that is not a request
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("a connection past the limit flooding bad frames was kept open for 10 s")
	}

	// node-2 restarts: every connection it makes to node-1 is a new one,
	// past the limit (the room its old ones left is taken first).
	c.Crash(1)
	c.WaitAgreed(t, 1)
	nodetest.WaitFor(t, 10*time.Second, func() error { // node-2's old connections are gone
		if got := counter(t, a, "cloakroom_connections"); got != float64(len(held)) {
			return fmt.Errorf("%v native connections; want the %d held", got, len(held))
		}
		return nil
	})
	if more := fillNative(t, a.Addr(), "127.0.0.2"); len(held)+len(more) != maxConns {
		t.Fatalf("%d connections held; want --max-conns, %d", len(held)+len(more), maxConns)
	}
	c.Restart(1)
	c.WaitAgreed(t, 2)
	c.WaitReady(t)
	cl := nodetest.DirectClient(t, c.Node(1).Addr())
	for i := range 40 { // each written through node-2 and copied to node-1, or forwarded to it
		key := "member:" + strconv.Itoa(i)
		if err := cl.Set(ctxFor(t), key, []byte("v"), time.Minute); err != nil {
			t.Fatalf("SET %s through node-2: %v", key, err)
		}
		if n := copies(c, key); n != 2 {
			t.Fatalf("%s has %d copies; want 2", key, n)
		}
	}
	if got := counter(t, a, "cloakroom_member_reserve_connections"); got == 0 {
		t.Error("node-2's connections to node-1 were not taken from the reserve")
	}
}

// A TTL so large that the store's clock plus it would overflow is refused:
// it used to be answered OK and leave the key expired (SET) or deleted
// (TOUCH).
func TestNode_TTLOutOfRange_isRefusedAndChangesNothing(t *testing.T) {
	n := startLimited(t, func(*node.Config) {})
	ctx := context.Background()
	var resp protocol.Response
	if n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "k", Value: []byte("v"), TTL: 60000}, &resp); resp.Code != protocol.CodeOK {
		t.Fatalf("set: %v", resp.Code)
	}
	for _, req := range []protocol.Request{
		{Op: protocol.OpSet, Key: "k", Value: []byte("w"), TTL: math.MaxInt64},
		{Op: protocol.OpTouch, Key: "k", TTL: math.MaxInt64},
		{Op: protocol.OpGetAndTouch, Key: "k", TTL: math.MaxInt64},
		{Op: protocol.OpTouch, Key: "k", TTL: math.MinInt64, Flags: protocol.FlagAllowPast},
	} {
		if n.Do(ctx, &req, &resp); resp.Code != protocol.CodeBadRequest {
			t.Errorf("%s with ttl %d: %v %s; want BadRequest", req.Op, req.TTL, resp.Code, resp.Msg)
		}
	}
	if n.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: "k"}, &resp); resp.Code != protocol.CodeOK || string(resp.Value) != "v" || resp.TTL <= 0 {
		t.Errorf("after the refused requests: %v %q ttl %d; want v with its TTL", resp.Code, resp.Value, resp.TTL)
	}
}
