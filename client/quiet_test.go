package client_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// A primary that leaves a read unanswered (stopped, or cut off without a
// reset) costs that read half an attempt before a backup answers; the
// reads after it, within an attempt's time, go to the backup first and do
// not each wait for the primary. Writes still go to the primary.
func TestClient_readsSkipAPrimaryThatLeftOneUnanswered(t *testing.T) {
	primary, _, primarySaw := stubNode(t, func(*protocol.Request) *protocol.Response { return nil })
	var info []byte
	backup, _, _ := stubNode(t, func(req *protocol.Request) *protocol.Response {
		switch {
		case req.Op == protocol.OpTable:
			return &protocol.Response{Table: 1, Value: info}
		case req.Op == protocol.OpGet && req.Flags&protocol.FlagReplicaRead != 0:
			return &protocol.Response{Table: 1, Value: []byte("coat of " + req.Key)}
		}
		return &protocol.Response{Table: 1, Code: protocol.CodeNotOwner, Msg: "not the primary"}
	})
	const partitions = 8
	ci := &protocol.ClusterInfo{Version: 1, Partitions: partitions, Replicas: 2,
		Members: []protocol.MemberInfo{{Name: "a", Addr: primary}, {Name: "b", Addr: backup}}}
	for range partitions {
		ci.Owners = append(ci.Owners, []uint16{0, 1}) // a is every partition's primary
	}
	var err error
	if info, err = protocol.EncodeClusterInfo(ci); err != nil {
		t.Fatal(err)
	}
	const attempt = 2 * time.Second
	c, err := client.New(client.Config{Addrs: []string{backup}, AttemptTimeout: attempt, RetryTimeout: attempt})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, key := range []string{"first", "second", "third"} {
		if got, err := c.Get(ctx, key); err != nil || string(got) != "coat of "+key {
			t.Fatalf("get %s = %q, %v; want the backup's copy", key, got, err)
		}
	}
	if saw := primarySaw(); !slices.Equal(saw, []string{"first"}) {
		t.Errorf("the silent primary was sent reads of %q; want only the first", saw)
	}
	// A write is the primary's alone: it times out there.
	if err := c.Set(ctx, "w", []byte("v"), time.Minute); err == nil {
		t.Error("set with a silent primary succeeded")
	}
	if saw := primarySaw(); !slices.Contains(saw, "w") {
		t.Errorf("the write was not sent to the primary: it saw %q", saw)
	}
}
