package resp

import (
	"context"
	"strings"
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
