package resp

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
)

// benchConn is a connection whose input is a fixed batch of commands, read
// again and again, and whose replies are discarded: it measures parsing,
// dispatch and encoding without the network.
func benchConn(b *testing.B, batch string) (*conn, *bytes.Reader) {
	b.Helper()
	be := &storeBackend{st: store.New(store.Config{Partitions: 271}), name: "bench", limits: protocol.DefaultLimits()}
	s := NewServer(be, Config{})
	b.Cleanup(func() { s.Close() })
	cli, srv := net.Pipe()
	b.Cleanup(func() { cli.Close(); srv.Close() })
	c := s.newConn(srv)
	in := bytes.NewReader([]byte(batch))
	c.rd = NewReader(bufio.NewReaderSize(in, bufSize), s.cfg.Limits)
	c.w = NewWriter(bufio.NewWriterSize(io.Discard, bufSize))
	return c, in
}

func benchCommands(b *testing.B, cmd string) {
	var sb strings.Builder
	for range 16 {
		sb.WriteString(cmd)
	}
	c, in := benchConn(b, sb.String())
	ctx := context.Background()
	set := protocol.Request{Op: protocol.OpSet, Key: "key:000000000042", Value: []byte("v"), Flags: protocol.FlagNoTTL}
	c.s.b.Do(ctx, &set, &protocol.Response{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		in.Seek(0, io.SeekStart)
		c.rd.br.Reset(in)
		for range 16 {
			args, err := c.rd.ReadCommand()
			if err != nil {
				b.Fatal(err)
			}
			c.dispatch(ctx, args)
		}
		c.w.Flush()
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
