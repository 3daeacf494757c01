package client_test

import (
	"context"
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

// A Delete whose attempts deleted some keys and then failed (a node they
// were forwarded to was down) counts those keys too: the attempt that
// succeeds finds them gone.
func TestClient_DeleteCountsWhatAFailedAttemptDeleted(t *testing.T) {
	for _, tc := range []struct {
		op   protocol.Op
		want int
	}{
		{protocol.OpDelete, 4}, // 2 deleted, then failed; 1, failed; then the last
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
				switch attempts {
				case 1:
					return &protocol.Response{Code: protocol.CodeUnavailable, Msg: "forward: n3 is down", N: 2, Table: 1}
				case 2:
					return &protocol.Response{Code: protocol.CodeUnavailable, Msg: "forward: n3 is down", N: 1, Table: 1}
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
			if n != tc.want || attempts != 3 {
				t.Fatalf("count %d after %d attempts, want %d after 3", n, attempts, tc.want)
			}
		})
	}
}

// A multi-key Delete whose primary leaves an attempt unanswered (cut off,
// not yet noticed) tries again after AttemptTimeout, as single-key calls
// do, rather than wait for the caller's deadline.
func TestClient_DeleteOfASilentPrimary_triesAgainAfterTheAttemptTimeout(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	addr := tableStub(t, func(req *protocol.Request) *protocol.Response {
		mu.Lock()
		defer mu.Unlock()
		if attempts++; attempts == 1 {
			return nil // silent
		}
		return &protocol.Response{N: 2, Table: 1}
	})
	c, err := client.New(client.Config{Addrs: []string{addr}, DialTimeout: time.Second, AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
	defer cancel()
	n, err := c.Delete(ctx, "a", "b")
	mu.Lock()
	defer mu.Unlock()
	if err != nil || n != 2 || attempts != 2 {
		t.Fatalf("Delete: %d, %v after %d attempts; want 2 after 2", n, err, attempts)
	}
}
