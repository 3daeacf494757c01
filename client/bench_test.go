package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/nodetest"
)

// BenchmarkClient_GetSet is the workload against one in-process
// node: 50 concurrent workers, 200-byte sessions, half gets, half sets.
func BenchmarkClient_GetSet(b *testing.B) {
	n := startNode(b)
	c := newClient(b, n.Addr())
	ctx := context.Background()
	val := make([]byte, 200)
	const keys = 100_000
	for i := range keys {
		if err := c.Set(ctx, fmt.Sprint("session:", i), val, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	workers(b, func(r *rand.Rand) {
		k := fmt.Sprint("session:", r.IntN(keys))
		var err error
		if r.IntN(2) == 0 {
			_, err = c.Get(ctx, k)
		} else {
			err = c.Set(ctx, k, val, time.Hour)
		}
		if err != nil {
			b.Fatal(err)
		}
	})
}

// workers times op from 50 workers (25 a CPU on this 2-CPU machine), each
// with a random source of its own.
func workers(b *testing.B, op func(r *rand.Rand)) {
	b.SetParallelism(25)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			op(r)
		}
	})
}

// BenchmarkClient_LoginLogout is sessions starting and ending against one
// in-process node, from 50 workers: a set, then a delete of one key.
func BenchmarkClient_LoginLogout(b *testing.B) {
	n := startNode(b)
	c := newClient(b, n.Addr())
	ctx := context.Background()
	val := make([]byte, 200)
	workers(b, func(r *rand.Rand) {
		k := fmt.Sprint("session:", r.Uint64())
		if err := c.Set(ctx, k, val, time.Hour); err != nil {
			b.Fatal(err)
		}
		if n, err := c.Delete(ctx, k); n != 1 || err != nil {
			b.Fatalf("delete: %d, %v", n, err)
		}
	})
}

// BenchmarkClient_cluster_Set writes 200-byte sessions to an in-process
// three-node cluster with two copies of each, from 50 workers.
func BenchmarkClient_cluster_Set(b *testing.B) {
	c := nodetest.Start(b, 3)
	cl := newClient(b, c.Node(0).Addr())
	ctx := context.Background()
	val := make([]byte, 200)
	if err := cl.Set(ctx, "warm", val, time.Hour); err != nil {
		b.Fatal(err)
	}
	workers(b, func(r *rand.Rand) {
		if err := cl.Set(ctx, fmt.Sprint("session:", r.IntN(100_000)), val, time.Hour); err != nil {
			b.Fatal(err)
		}
	})
}
