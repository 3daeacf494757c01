package resp

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
)

// benchConn is a connection without a socket: it measures parsing,
// dispatch and encoding of a fixed batch of commands, without the network.
func benchConn(b *testing.B) *conn {
	b.Helper()
	be := &storeBackend{st: store.New(store.Config{Partitions: 271}), name: "bench", limits: protocol.DefaultLimits()}
	s := NewServer(be, Config{})
	b.Cleanup(func() { s.Close() })
	c := &conn{s: s, id: 1, authed: true, onLoop: true, rd: NewReader(s.cfg.Limits), w: NewWriter()}
	return c
}

func benchCommands(b *testing.B, cmd string) {
	var sb strings.Builder
	for range 16 {
		sb.WriteString(cmd)
	}
	in := []byte(sb.String())
	c := benchConn(b)
	ctx := context.Background()
	set := protocol.Request{Op: protocol.OpSet, Key: "key:000000000042", Value: []byte("v"), Flags: protocol.FlagNoTTL}
	c.s.b.Do(ctx, &set, &protocol.Response{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		off := 0
		for range 16 {
			args, n, err := c.rd.Parse(in[off:])
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			off += n
			c.dispatch(ctx, args)
		}
		c.w.Reset()
	}
}

func BenchmarkServer_Set(b *testing.B) {
	benchCommands(b, "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$200\r\n"+strings.Repeat("v", 200)+"\r\n")
}

func BenchmarkServer_Get(b *testing.B) {
	benchCommands(b, "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n")
}

func BenchmarkServer_PingInline(b *testing.B) {
	benchCommands(b, "PING\r\n")
}

// BenchmarkServer_Connect50 opens 50 connections at once, as a client
// pool or redis-benchmark -c 50 does, and waits for a PING answered on
// each: the time a pool takes to be ready.
func BenchmarkServer_Connect50(b *testing.B) {
	ts := startServer(b)
	const n = 50
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		conns := make([]net.Conn, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = nc
				buf := make([]byte, 7)
				if _, err := nc.Write([]byte("PING\r\n")); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "+PONG\r\n" {
					errs <- fmt.Errorf("reply %q: %v", buf, err)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
