package node_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
)

// The HTTP listener holds at most node.MaxHTTPConns connections: idle
// keep-alive connections cannot take every file descriptor the node has.
// One more waits until one of them closes.
func TestHTTP_boundsConnections(t *testing.T) {
	nd := nodetest.StartNode(t, func(c *node.Config) { c.HTTPAddr = "127.0.0.1:0" })
	addr := nd.HTTPAddr()
	get := func(conn net.Conn) error {
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n")); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range node.MaxHTTPConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		if err := get(c); err != nil { // answered, then kept alive
			t.Fatal(err)
		}
	}
	extra, err := net.Dial("tcp", addr) // the kernel accepts it; the node does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	answered := make(chan error, 1)
	go func() { answered <- get(extra) }()
	select {
	case err := <-answered:
		t.Fatalf("request %d answered (%v) while %d connections were open; want it to wait", node.MaxHTTPConns+1, err, node.MaxHTTPConns)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("request after a connection closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request not answered after a connection closed")
	}
}
