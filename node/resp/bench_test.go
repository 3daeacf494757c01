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

// benchBatch measures a pipeline of 16 commands that may wait (keys
// served by another node, as in a cluster): batching, building each
// command's requests and replying, as the goroutine that runs the batch
// does, with the backend's work reduced to a local store. With spread
// keys the commands go through DoAll, with one key through DoAtomic.
func benchBatch(b *testing.B, cmd func(i int) string) {
	be := &storeBackend{st: store.New(store.Config{Partitions: 271}), name: "bench", limits: protocol.DefaultLimits(),
		remote: func(string) bool { return true }}
	s := NewServer(be, Config{})
	b.Cleanup(func() { s.Close() })
	c := &conn{s: s, id: 1, authed: true, onLoop: true, rd: NewReader(s.cfg.Limits), w: NewWriter()}
	var sb strings.Builder
	for i := range 16 {
		sb.WriteString(cmd(i))
	}
	in := []byte(sb.String())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		args, n, err := c.rd.Parse(in)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		batch, m := c.batch(args, in[n:])
		if n+m != len(in) || len(batch.cmds) != 16 {
			b.Fatalf("batched %d commands, %d of %d bytes", len(batch.cmds), n+m, len(in))
		}
		c.runBatch(ctx, batch.cmds)
		batch.release()
		c.onLoop = true
		c.w.Reset()
	}
}

func setCommand(key string) string {
	return fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$200\r\n%s\r\n", len(key), key, strings.Repeat("v", 200))
}

func BenchmarkServer_BatchSetOneKey(b *testing.B) {
	benchBatch(b, func(int) string { return setCommand("key:000000000042") })
}

func BenchmarkServer_BatchSetSpread(b *testing.B) {
	benchBatch(b, func(i int) string { return setCommand(fmt.Sprintf("key:%012d", i*7919)) })
}
