package client_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// tableStub is a stubNode that owns every partition of a one-member
// table and answers the other requests with reply.
func tableStub(t *testing.T, reply func(*protocol.Request) *protocol.Response) string {
	t.Helper()
	var (
		mu   sync.Mutex
		self string
	)
	addr, _, _ := stubNode(t, func(req *protocol.Request) *protocol.Response {
		if req.Op != protocol.OpTable {
			return reply(req)
		}
		mu.Lock()
		ci := &protocol.ClusterInfo{Version: 1, Partitions: 7, Replicas: 1,
			Members: []protocol.MemberInfo{{Name: "stub", Addr: self}}}
		mu.Unlock()
		for range ci.Partitions {
			ci.Owners = append(ci.Owners, []uint16{0})
		}
		v, err := protocol.EncodeClusterInfo(ci)
		if err != nil {
			t.Error(err)
		}
		return &protocol.Response{Value: v, Table: ci.Version}
	})
	mu.Lock()
	self = addr
	mu.Unlock()
	return addr
}

// A Delete whose first attempt deleted some keys and then failed (a node
// it forwarded to was down) counts those keys too: the attempt that
// succeeds finds them gone.
func TestClient_DeleteCountsWhatAFailedAttemptDeleted(t *testing.T) {
	for _, tc := range []struct {
		op   protocol.Op
		want int
	}{
		{protocol.OpDelete, 3}, // 2 deleted, then failed; then the third
		{protocol.OpExists, 1}, // the last attempt's count: each counts afresh
	} {
		t.Run(tc.op.String(), func(t *testing.T) {
			var mu sync.Mutex
			attempts := 0
			addr := tableStub(t, func(req *protocol.Request) *protocol.Response {
				if req.Op != tc.op {
					return &protocol.Response{Code: protocol.CodeBadRequest, Msg: "unexpected " + req.Op.String()}
				}
				mu.Lock()
				defer mu.Unlock()
				attempts++
				if attempts == 1 {
					return &protocol.Response{Code: protocol.CodeUnavailable, Msg: "forward: n3 is down", N: 2, Table: 1}
				}
				return &protocol.Response{N: 1, Table: 1}
			})
			c, err := client.New(client.Config{Addrs: []string{addr}, DialTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			keys := []string{"a", "b", "c"}
			var n int
			if tc.op == protocol.OpDelete {
				n, err = c.Delete(ctxT(t), keys...)
			} else {
				var resp *protocol.Response
				if resp, err = c.Do(ctxT(t), &protocol.Request{Op: tc.op, Keys: keys}); err == nil {
					n = int(resp.N)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if n != tc.want || attempts != 2 {
				t.Fatalf("count %d after %d attempts, want %d after 2", n, attempts, tc.want)
			}
		})
	}
}
