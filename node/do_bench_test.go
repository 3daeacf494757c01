package node_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
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

// BenchmarkNode_Do_forwardedGet measures a GET that the entry node of an
// in-process 3-node cluster forwards to the key's primary over loopback:
// the path of every read a Redis client sends to a node that does not own
// it.
func BenchmarkNode_Do_forwardedGet(b *testing.B) {
	c := nodetest.Start(b, 3)
	entry := c.Node(0)
	ci := entry.ClusterInfo()
	key := ""
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("key:%012d", i)
		if held := ci.Owners[ring.Partition(k, ci.Partitions)]; !slices.ContainsFunc(held, func(m uint16) bool { return ci.Members[m].Name == entry.Name() }) {
			key = k
		}
	}
	ctx := context.Background()
	var resp protocol.Response
	entry.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte(strings.Repeat("v", 200)), Flags: protocol.FlagNoTTL}, &resp)
	if resp.Code != protocol.CodeOK {
		b.Fatalf("set: %v", resp.Err())
	}
	req := protocol.Request{Op: protocol.OpGet, Key: key}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		entry.Do(ctx, &req, &resp)
	}
	if resp.Code != protocol.CodeOK {
		b.Fatalf("get: %v", resp.Err())
	}
}
