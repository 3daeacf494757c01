package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// silentNode answers the hello on each connection and then reads requests
// without answering them, as a node cut off by a network partition would
// look. Each connection's end (how its read failed) is sent on ends.
func silentNode(t *testing.T) (addr string, ends <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan error, 8)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				fr := protocol.NewFrameReader(bufio.NewReader(nc), 1<<20)
				fw := protocol.NewFrameWriter(nc)
				dec := protocol.NewDecoder()
				for {
					frame, err := fr.Next()
					if err != nil {
						ch <- err
						return
					}
					var req protocol.Request
					if err := dec.DecodeRequest(frame, &req); err != nil {
						ch <- err
						return
					}
					if req.Op == protocol.OpHello {
						if err := fw.Write(&protocol.Response{ID: req.ID, Version: protocol.Version}); err != nil {
							ch <- err
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// silentClient returns a client of a fresh silentNode, and its ends.
func silentClient(t *testing.T) (*client.Client, <-chan error) {
	t.Helper()
	addr, ends := silentNode(t)
	c, err := client.New(client.Config{Addrs: []string{addr}, Direct: true, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, ends
}

// A request given up on after the connection stayed silent must never reach
// the node later: the client resets the connection rather than leave the
// request queued in it (across a partition TCP would deliver it on healing).
func TestClient_silentConnectionIsResetWhenAbandoned(t *testing.T) {
	c, ends := silentClient(t)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("set on a silent node = %v; want the deadline", err)
	}
	select {
	case err := <-ends:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the node saw the connection end with %v; want a reset", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned connection stayed open")
	}
}

// A request abandoned quickly (a caller's short deadline) on a healthy
// connection leaves the connection alone.
func TestClient_quickAbandonKeepsConnection(t *testing.T) {
	c, ends := silentClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("set = %v; want the deadline", err)
	}
	// Had the abandon reset the connection, its end would be a reset; a
	// connection left alone ends with the client's orderly close.
	c.Close()
	if err := <-ends; !errors.Is(err, io.EOF) {
		t.Fatalf("closing the client ended the connection with %v; want EOF", err)
	}
}
