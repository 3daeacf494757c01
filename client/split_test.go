package client_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node/store"
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

// A Delete's attempts that deleted keys and then failed (a node they were
// forwarded to was down) or went unanswered (the node applied it, the
// answer was lost) leave those keys deleted; the attempt that answers
// counts them, because every attempt carries the call's one delete token
// and a real store counts a key whose tombstone keeps it. Each key counts
// once, however many attempts deleted it. An Exists counts afresh.
func TestClient_DeleteCountsWhatAFailedAttemptDeleted(t *testing.T) {
	keys := []string{"a", "b", "c"}
	for _, tc := range []struct {
		op   protocol.Op
		raw  bool  // through Do, without a token of the caller's
		want []int // the count of each call, one after the other
	}{
		{protocol.OpDelete, false, []int{3, 0}}, // the second call finds nothing left to delete
		{protocol.OpDelete, true, []int{3, 0}},
		{protocol.OpExists, true, []int{3, 3}},
	} {
		t.Run(fmt.Sprint(tc.op, map[bool]string{true: "/Do"}[tc.raw]), func(t *testing.T) {
			st := store.New(store.Config{Partitions: 7})
			for _, k := range keys {
				var r protocol.Response
				if st.Exec(&protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte("v"), TTL: 60_000}, &r); r.Code != protocol.CodeOK {
					t.Fatal(r.Err())
				}
			}
			var mu sync.Mutex
			var tokens [][]byte // of each attempt
			addr := tableStub(t, func(req *protocol.Request) *protocol.Response {
				if req.Op != tc.op {
					return &protocol.Response{Code: protocol.CodeBadRequest, Msg: "unexpected " + req.Op.String()}
				}
				mu.Lock()
				defer mu.Unlock()
				tokens = append(tokens, slices.Clone(req.Value))
				resp := &protocol.Response{Table: 1}
				switch len(tokens) % 3 {
				case 1: // "a" applied, then a forward failed
					st.Exec(&protocol.Request{Op: req.Op, Keys: req.Keys[:1], Value: req.Value}, resp)
					resp.Code, resp.Msg = protocol.CodeUnavailable, "forward: n3 is down"
				case 2: // everything applied, the answer lost
					st.Exec(req, resp)
					return nil
				default:
					st.Exec(req, resp)
				}
				resp.Table = 1
				return resp
			})
			c, err := client.New(client.Config{Addrs: []string{addr}, DialTimeout: time.Second, AttemptTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			for call, want := range tc.want {
				var n int
				if !tc.raw {
					n, err = c.Delete(ctxT(t), keys...)
				} else {
					var resp *protocol.Response
					if resp, err = c.Do(ctxT(t), &protocol.Request{Op: tc.op, Keys: keys}); err == nil {
						n = int(resp.N)
					}
				}
				if err != nil {
					t.Fatalf("call %d: %v", call+1, err)
				}
				mu.Lock()
				attempts := tokens[call*3:]
				if n != want || len(attempts) != 3 {
					t.Errorf("call %d: count %d after %d attempts; want %d after 3", call+1, n, len(attempts), want)
				}
				if tc.op == protocol.OpDelete {
					same := len(attempts[0]) == protocol.DeleteTokenLen
					for _, tok := range attempts {
						same = same && bytes.Equal(tok, attempts[0])
					}
					if !same {
						t.Errorf("call %d: delete tokens %x; want one of %d bytes for every attempt", call+1, attempts, protocol.DeleteTokenLen)
					}
				}
				mu.Unlock()
			}
			if tc.op == protocol.OpDelete && bytes.Equal(tokens[0], tokens[3]) {
				t.Errorf("two calls sent the same delete token %x", tokens[0])
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
