package node_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
)

func TestNode_MaxConns_closesConnectionsPastTheLimit(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Name = "limits"
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "", ""
	cfg.MaxConns = 2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
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
