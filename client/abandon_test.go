package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// stubNode stands in for a node: it answers the hello on each connection,
// and each other request with what reply returns for it (nil: no answer).
// Each connection's end (how its read failed) is sent on ends; seen
// returns the keys of the requests received so far.
func stubNode(t *testing.T, reply func(*protocol.Request) *protocol.Response) (addr string, ends <-chan error, seen func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 64)
	var mu sync.Mutex // guards keys and conns
	var keys []string
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	serve := func(nc net.Conn) error {
		fr := protocol.NewFrameReader(bufio.NewReader(nc), 1<<20)
		fw := protocol.NewFrameWriter(nc)
		dec := protocol.NewDecoder()
		for {
			frame, err := fr.Next()
			if err != nil {
				return err
			}
			var req protocol.Request
			if err := dec.DecodeRequest(frame, &req); err != nil {
				return err
			}
			resp := &protocol.Response{Version: protocol.Version}
			if req.Op != protocol.OpHello {
				mu.Lock()
				keys = append(keys, req.Key)
				mu.Unlock()
				resp = reply(&req)
			}
			if resp == nil {
				continue
			}
			resp.ID = req.ID
			if err := fw.Write(resp); err != nil {
				return err
			}
		}
	}
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				select {
				case ch <- serve(nc):
				default: // nobody is listening for so many ends
				}
			})
		}
	})
	return ln.Addr().String(), ch, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(keys)
	}
}

// silentNode answers the hello on each connection and then reads requests
// without answering them, as a node cut off by a network partition would
// look.
func silentNode(t *testing.T) (addr string, ends <-chan error) {
	addr, ends, _ = stubNode(t, func(*protocol.Request) *protocol.Response { return nil })
	return addr, ends
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
