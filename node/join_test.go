package node

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A member that has this node in its table forwards to it as soon as
// gossip tells it of the join, which can be before this node has a table
// of its own (the 3 → 5 churn test caught it: false "not found" for
// sessions that existed). A node still joining holds every partition on
// its provisional table and none of their data: a forwarded request must
// get NotOwner, which clients retry, and change nothing; so must a
// client's own.
func TestNode_joining_refusesForwardedRequestsAndChangesNothing(t *testing.T) {
	n := startTestNode(t, func(c *Config) { c.Join = []string{freeAddr(t)} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	batch, err := protocol.EncodeBatch([]*protocol.Request{{Op: protocol.OpSet, Key: "{s}a", Value: []byte("v"), TTL: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := protocol.FlagForwarded
	for _, req := range []*protocol.Request{
		{Op: protocol.OpGet, Key: "s1", Flags: fwd},
		{Op: protocol.OpGet, Key: "s1", Flags: fwd | protocol.FlagReplicaRead},
		{Op: protocol.OpTTL, Key: "s1", Flags: fwd},
		{Op: protocol.OpSet, Key: "s1", Value: []byte("v"), TTL: 60000, Flags: fwd},
		{Op: protocol.OpTouch, Key: "s1", TTL: 60000, Flags: fwd},
		{Op: protocol.OpGetAndTouch, Key: "s1", TTL: 60000, Flags: fwd},
		{Op: protocol.OpGetAndDelete, Key: "s1", Flags: fwd},
		{Op: protocol.OpDelete, Keys: []string{"s1", "s2"}, Flags: fwd},
		{Op: protocol.OpExists, Keys: []string{"s1"}, Flags: fwd},
		{Op: protocol.OpAtomic, Value: batch, Flags: fwd},
	} {
		var resp protocol.Response
		n.Do(ctx, req, &resp)
		if resp.Code != protocol.CodeNotOwner {
			t.Errorf("forwarded %s while joining: %v (%s); want NotOwner", req.Op, resp.Code, resp.Msg)
		}
	}
	// A client whose table already names this node is told the same, so
	// that even a conditional write is retried (Unavailable would leave
	// the client unsure whether it ran).
	var resp protocol.Response
	n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "s1", Value: []byte("v"), TTL: 60000, Flags: protocol.FlagIfAbsent}, &resp)
	if resp.Code != protocol.CodeNotOwner {
		t.Errorf("conditional set from a client while joining: %v (%s); want NotOwner", resp.Code, resp.Msg)
	}
	if st := n.store.Stats(); st.Keys != 0 {
		t.Errorf("the joining node's store holds %d keys; want none", st.Keys)
	}
	// Node-to-node reads still work: peers pull from a node that is joining.
	n.Do(ctx, &protocol.Request{Op: protocol.OpDigest, Partition: 0}, &resp)
	if resp.Code != protocol.CodeOK {
		t.Errorf("digest while joining: %v (%s); want OK", resp.Code, resp.Msg)
	}
}
