package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Replies too large for a frame fail alone, at once, and the connection
// between the nodes, which other clients' requests share, stays up. Once,
// a forwarded SCAN with a large COUNT got a reply over the frame limit:
// the entry node's reader dropped the connection, failing the requests of
// others in flight on it (a DEL sent again then answered 0).
func TestCluster_repliesOverTheFrameLimit_failAlone(t *testing.T) {
	c := nodetest.Start(t, 2)
	ctx := ctxFor(t)
	entry := c.Node(0)
	tag, part := notPrimaryOf(entry, func(i int) string { return fmt.Sprint("{t", i, "}") })
	long := strings.Repeat("k", 900)
	for i := range 200 { // 180 KB of keys: over the 48 KiB a page holds
		if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: fmt.Sprint(tag, long, i), Value: []byte("v"), TTL: 60_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET: %v", r.Err())
		}
	}
	big := strings.Repeat("v", 1<<20-64)
	for _, k := range []string{"a", "b"} {
		if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: tag + k, Value: []byte(big), TTL: 60_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET %s: %v", tag+k, r.Err())
		}
	}

	scan := doOn(ctx, entry, &protocol.Request{Op: protocol.OpScan, Partition: int32(part), Count: 1 << 20})
	if scan.Code != protocol.CodeOK || len(scan.Keys) == 0 || scan.Cursor == 0 {
		t.Errorf("forwarded SCAN of a partition with 180 KB of keys: %v, %d keys, cursor %d; want a page and a cursor", scan.Err(), len(scan.Keys), scan.Cursor)
	}

	// An atomic step whose values read would not fit in a reply is refused
	// by the primary before anything in it runs, at once: the SET in it is
	// not done, and the caller may run its commands one by one (a
	// pipeline's group does).
	start := time.Now()
	resps := []*protocol.Response{{}, {}, {}}
	err := entry.DoAtomic(ctx, []*protocol.Request{
		{Op: protocol.OpGet, Key: tag + "a"}, {Op: protocol.OpGet, Key: tag + "b"},
		{Op: protocol.OpSet, Key: tag + "c", Value: []byte("c"), Flags: protocol.FlagNoTTL},
	}, resps)
	if !errors.Is(err, protocol.ErrTooLarge) || time.Since(start) > 5*time.Second {
		t.Fatalf("forwarded atomic GETs of two 1 MiB values and a SET: %v after %v; want TooLarge at once", err, time.Since(start))
	}
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: tag + "c"}); r.Code != protocol.CodeNotFound {
		t.Errorf("the refused step's SET: GET says %v; want NotFound (not run)", r.Err())
	}
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: tag + "a"}); r.Code != protocol.CodeOK || len(r.Value) != len(big) {
		t.Errorf("GET after: %v, %d bytes", r.Err(), len(r.Value))
	}
}

// A session store's save of a value up to the limit, in a transaction (SET
// and PEXPIREAT, as scs sends), goes through when forwarded: the batch
// carrying it is over one value's limit, but within a frame. It used to
// fail after the whole retry window.
func TestCluster_forwardedTransactionOfAValueAtTheLimit(t *testing.T) {
	c := nodetest.Start(t, 2)
	ctx := ctxFor(t)
	entry := c.Node(0)
	key, _ := notPrimaryOf(entry, func(i int) string { return fmt.Sprint("save:", i) })
	v := []byte(strings.Repeat("v", protocol.DefaultMaxValue))
	reqs := []*protocol.Request{
		{Op: protocol.OpSet, Key: key, Value: v, Flags: protocol.FlagNoTTL},
		{Op: protocol.OpTouch, Key: key, TTL: 60_000},
	}
	resps := []*protocol.Response{{}, {}}
	if err := entry.DoAtomic(ctx, reqs, resps); err != nil || resps[0].Code != protocol.CodeOK || resps[1].Code != protocol.CodeOK {
		t.Fatalf("forwarded SET+EXPIRE of a %d-byte value: %v, %v, %v", len(v), err, resps[0].Err(), resps[1].Err())
	}
	var got protocol.Response
	if entry.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: key}, &got); got.Code != protocol.CodeOK || len(got.Value) != len(v) {
		t.Fatalf("GET after: %v, %d bytes", got.Err(), len(got.Value))
	}
}

// notPrimaryOf returns the first of key(0), key(1), ... whose partition
// another node than n is primary of, and that partition.
func notPrimaryOf(n *node.Node, key func(int) string) (string, int) {
	ci := n.ClusterInfo()
	for i := 0; ; i++ {
		k := key(i)
		if p := ring.Partition(k, ci.Partitions); ci.Members[ci.Owners[p][0]].Name != n.Name() {
			return k, p
		}
	}
}
