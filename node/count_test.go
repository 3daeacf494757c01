package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
)

// TestCluster_countAddsUpEveryPrimarysKeysAndTTLs: a count through any
// node (DBSIZE, INFO keyspace) adds up each key once, though every key has
// two copies, and of them those with a TTL, which a TOUCH or a PERSIST
// changes on the primary and the backup alike.
func TestCluster_countAddsUpEveryPrimarysKeysAndTTLs(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	first := c.Node(0)
	const n = 300 // every third without a TTL
	for i := range n {
		req := &protocol.Request{Op: protocol.OpSet, Key: fmt.Sprint("s", i), Value: []byte("v"), TTL: time.Hour.Milliseconds()}
		if i%3 == 0 {
			req.TTL, req.Flags = 0, protocol.FlagNoTTL
		}
		if r := doOn(ctx, first, req); r.Code != protocol.CodeOK {
			t.Fatalf("set s%d: %v", i, r.Err())
		}
	}
	count := func(keys, ttls int64) {
		t.Helper()
		for _, nd := range c.Running() {
			r := doOn(ctx, nd, &protocol.Request{Op: protocol.OpCount})
			if r.Code != protocol.CodeOK || r.N != keys || r.TTLKeys != ttls {
				t.Errorf("count through %s: %d keys, %d with a TTL, %v; want %d, %d", nd.Name(), r.N, r.TTLKeys, r.Err(), keys, ttls)
			}
		}
	}
	count(n, 2*n/3)
	// A TTL given to s0 and taken from s1, and s2 deleted.
	doOn(ctx, first, &protocol.Request{Op: protocol.OpTouch, Key: "s0", TTL: time.Hour.Milliseconds()})
	doOn(ctx, first, &protocol.Request{Op: protocol.OpTouch, Key: "s1", Flags: protocol.FlagNoTTL})
	doOn(ctx, first, &protocol.Request{Op: protocol.OpDelete, Keys: []string{"s2"}})
	count(n-1, 2*n/3-1)
	var keys, ttls int
	for _, nd := range c.Running() {
		st := nd.Store().Stats()
		keys += int(st.Keys)
		ttls += int(st.KeysWithTTL)
	}
	if keys != 2*(n-1) || ttls != 2*(2*n/3-1) {
		t.Errorf("the stores hold %d keys, %d with a TTL; want two copies of each: %d, %d", keys, ttls, 2*(n-1), 2*(2*n/3-1))
	}
}
