package node_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
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
	for _, want := range []string{"\ncloakroom_resp_clients 1\n", "\ncloakroom_resp_refused_connections_total 1\n"} {
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
