package node_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/protocol"
)

// A thousand GETs of one large value in one atomic step would copy it a
// thousand times (about 1 GB for a 1 MiB value) and then fail to fit in a
// reply: the step is refused before it copies anything.
func TestNode_Atomic_manyReadsOfALargeValueAreRefusedBeforeCopying(t *testing.T) {
	n := startLimited(t, func(*node.Config) {})
	ctx := context.Background()
	big := make([]byte, protocol.DefaultLimits().MaxValue)
	var resp protocol.Response
	if n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "{u}big", Value: big, TTL: 60000}, &resp); resp.Code != protocol.CodeOK {
		t.Fatalf("set: %v %s", resp.Code, resp.Msg)
	}
	reqs := make([]*protocol.Request, 1024)
	resps := make([]*protocol.Response, len(reqs))
	reqs[0] = &protocol.Request{Op: protocol.OpSet, Key: "{u}w", Value: []byte("x"), TTL: 60000}
	for i := 1; i < len(reqs); i++ {
		reqs[i] = &protocol.Request{Op: protocol.OpGet, Key: "{u}big"}
	}
	for i := range resps {
		resps[i] = new(protocol.Response)
	}
	batch, err := protocol.EncodeBatch(reqs)
	if err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = n.DoAtomic(ctx, reqs, resps)
	n.Do(ctx, &protocol.Request{Op: protocol.OpAtomic, Value: batch}, &resp) // as a peer sends it
	runtime.ReadMemStats(&after)

	if !errors.Is(err, protocol.ErrTooLarge) {
		t.Errorf("DoAtomic: %v; want ErrTooLarge", err)
	}
	if resp.Code != protocol.CodeTooLarge {
		t.Errorf("OpAtomic: %v %s; want TooLarge", resp.Code, resp.Msg)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("refusing two steps allocated %d MB; want under 64", got>>20)
	}
	if n.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: "{u}w"}, &resp); resp.Code != protocol.CodeNotFound {
		t.Errorf("the refused step's SET: %v; want it not run (NotFound)", resp.Code)
	}
	// However many requests a step built on its primary holds (a MULTI
	// may queue thousands), the bound stands.
	many := make([]*protocol.Request, 7000)
	for i := range many {
		many[i] = &protocol.Request{Op: protocol.OpGet, Key: "{u}big"}
	}
	manyResps := make([]*protocol.Response, len(many))
	for i := range manyResps {
		manyResps[i] = new(protocol.Response)
	}
	runtime.ReadMemStats(&before)
	err = n.DoAtomic(ctx, many, manyResps)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, protocol.ErrTooLarge) {
		t.Errorf("DoAtomic of 7,000 GETs: %v; want ErrTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("refusing 7,000 GETs allocated %d MB; want under 64", got>>20)
	}
	// As many reads as fit do run.
	if err := n.DoAtomic(ctx, reqs[:2], resps[:2]); err != nil || resps[1].Code != protocol.CodeOK || len(resps[1].Value) != len(big) {
		t.Fatalf("SET and one GET: %v, %v with %d bytes", err, resps[1].Code, len(resps[1].Value))
	}
}
