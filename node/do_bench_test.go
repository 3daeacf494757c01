package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
)

// benchDo measures Node.Do for one request on a lone node, the path a
// pipelined Redis GET or SET takes on the event loop, without the network.
func benchDo(b *testing.B, req protocol.Request) {
	n := nodetest.StartNode(b)
	ctx := context.Background()
	set := protocol.Request{Op: protocol.OpSet, Key: req.Key, Value: []byte(strings.Repeat("v", 200)), Flags: protocol.FlagNoTTL}
	var resp protocol.Response
	n.Do(ctx, &set, &resp)
	if resp.Code != protocol.CodeOK {
		b.Fatalf("set: %v", resp.Err())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n.Do(ctx, &req, &resp)
	}
	if resp.Code != protocol.CodeOK {
		b.Fatalf("%s: %v", req.Op, resp.Err())
	}
}

func BenchmarkNode_Do_get(b *testing.B) {
	benchDo(b, protocol.Request{Op: protocol.OpGet, Key: "key:000000000042"})
}

func BenchmarkNode_Do_set(b *testing.B) {
	benchDo(b, protocol.Request{Op: protocol.OpSet, Key: "key:000000000042", Value: []byte(strings.Repeat("v", 200)), Flags: protocol.FlagNoTTL})
}

// BenchmarkNode_Do_getParallel runs GETs from every CPU at once, each
// goroutine on its own key, as the RESP event loops do: it shows what the
// request path's shared state costs across CPUs.
func BenchmarkNode_Do_getParallel(b *testing.B) {
	n := nodetest.StartNode(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("key:%012d", next.Add(1))
		var resp protocol.Response
		n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte(strings.Repeat("v", 200)), Flags: protocol.FlagNoTTL}, &resp)
		req := protocol.Request{Op: protocol.OpGet, Key: key}
		for pb.Next() {
			n.Do(ctx, &req, &resp)
		}
	})
}
