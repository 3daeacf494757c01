package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, nodetest.LeakOptions()...) }

// startNode starts a single node on kernel-chosen loopback ports.
func startNode(t testing.TB, mutate ...func(*node.Config)) *node.Node {
	t.Helper()
	return nodetest.StartNode(t, mutate...)
}

func newClient(t testing.TB, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addrs: addrs})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClient_SetGetTouchDelete(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	if err := c.Set(ctx, "s1", []byte("coat"), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "s1")
	if err != nil || string(got) != "coat" {
		t.Fatalf("get = %q, %v; want coat", got, err)
	}
	ok, err := c.Touch(ctx, "s1", time.Hour)
	if !ok || err != nil {
		t.Fatalf("touch = %v, %v; want true", ok, err)
	}
	if ttl, _ := c.TTL(ctx, "s1"); ttl < 59*time.Minute {
		t.Fatalf("ttl after touch = %v; want about an hour", ttl)
	}
	if got, _ := c.Get(ctx, "s1"); string(got) != "coat" {
		t.Fatalf("value after touch = %q; want coat", got)
	}
	ok, err = c.Touch(ctx, "nope", time.Hour)
	if ok || err != nil {
		t.Fatalf("touch missing = %v, %v; want false, nil", ok, err)
	}
	c.Set(ctx, "s2", []byte("x"), time.Minute)
	n2, err := c.Delete(ctx, "s1", "s2", "s3")
	if n2 != 2 || err != nil {
		t.Fatalf("delete = %d, %v; want 2", n2, err)
	}
	if _, err := c.Get(ctx, "s1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get deleted = %v; want ErrNotFound", err)
	}
}

func TestClient_GetAndTouch(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	c.Set(ctx, "s", []byte("v"), time.Second)
	v, err := c.GetAndTouch(ctx, "s", time.Hour)
	if err != nil || string(v) != "v" {
		t.Fatalf("getandtouch = %q, %v", v, err)
	}
	if ttl, _ := c.TTL(ctx, "s"); ttl < 59*time.Minute {
		t.Fatalf("ttl = %v; want about an hour", ttl)
	}
	if _, err := c.GetAndTouch(ctx, "missing", time.Hour); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("getandtouch missing = %v; want ErrNotFound", err)
	}
}

func TestClient_expiresUnread(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.ExpiryInterval = 5 * time.Millisecond })
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	for i := range 100 {
		c.Set(ctx, fmt.Sprint("k", i), []byte("v"), 20*time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Store().Stats().Keys != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys still stored after their TTL", n.Store().Stats().Keys)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClient_AddAndCompareAndSwap(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	v1, err := c.Add(ctx, "s", []byte("mine"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx, "s", []byte("theirs"), time.Minute); !errors.Is(err, client.ErrExists) {
		t.Fatalf("second add = %v; want ErrExists", err)
	}
	it, err := c.GetItem(ctx, "s")
	if err != nil || it.Version != v1 || string(it.Value) != "mine" {
		t.Fatalf("getitem = %+v, %v", it, err)
	}
	v2, err := c.CompareAndSwap(ctx, "s", []byte("mine2"), time.Minute, v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("cas = %d, %v", v2, err)
	}
	if _, err := c.CompareAndSwap(ctx, "s", []byte("lost"), time.Minute, v1); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("stale cas = %v; want ErrConflict", err)
	}
}

func TestClient_badInputIsRefusedClearly(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"zero ttl", c.Set(ctx, "k", []byte("v"), 0), client.ErrBadRequest},
		{"empty key", c.Set(ctx, "", []byte("v"), time.Minute), client.ErrBadRequest},
		{"key too long", c.Set(ctx, string(bytes.Repeat([]byte("k"), 1025)), []byte("v"), time.Minute), client.ErrTooLarge},
		{"value too large", c.Set(ctx, "k", make([]byte, 1<<20+1), time.Minute), client.ErrTooLarge},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, tc.err, tc.want)
		}
	}
	if err := c.Set(ctx, "k", make([]byte, 1<<20), time.Minute); err != nil {
		t.Fatalf("value at the limit: %v", err)
	}
}

func TestClient_concurrentCallsShareConnections(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := c.Set(ctx, k, []byte(k), time.Minute); err != nil {
					errs <- err
					return
				}
				got, err := c.Get(ctx, k)
				if err != nil || string(got) != k {
					errs <- fmt.Errorf("get %s = %q, %v", k, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClient_contextDeadline(t *testing.T) {
	n := startNode(t)
	c := newClient(t, n.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("set with cancelled ctx = %v; want context.Canceled", err)
	}
}

func TestClient_nodeDownIsUnavailable(t *testing.T) {
	n := startNode(t)
	addr := n.Addr()
	c, err := client.New(client.Config{Addrs: []string{addr}, RetryTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := ctxT(t)
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if _, err := c.Get(ctx, "k"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("get from a stopped node = %v; want ErrUnavailable", err)
	}
}

func TestClient_ExchangeAll(t *testing.T) {
	n := startNode(t)
	c := nodetest.DirectClient(t, n.Addr())
	ctx := ctxT(t)
	if err := c.Set(ctx, "a", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	reqs := []*protocol.Request{
		{Op: protocol.OpGet, Key: "a"},
		{Op: protocol.OpSet, Key: "b", Value: []byte("2"), TTL: 60_000},
		{Op: protocol.OpGet, Key: "missing"},
		{Op: protocol.OpPing},
	}
	resps, errs := c.ExchangeAll(ctx, reqs)
	if errs != nil {
		t.Fatalf("ExchangeAll: %v", errs)
	}
	if len(resps) != len(reqs) {
		t.Fatalf("got %d responses for %d requests", len(resps), len(reqs))
	}
	if resps[0].Code != protocol.CodeOK || string(resps[0].Value) != "1" {
		t.Errorf("get a: %v %q; want ok, 1", resps[0].Err(), resps[0].Value)
	}
	if resps[1].Code != protocol.CodeOK {
		t.Errorf("set b: %v; want ok", resps[1].Err())
	}
	if resps[2].Code != protocol.CodeNotFound {
		t.Errorf("get missing: code %v; want not found", resps[2].Code)
	}
	if resps[3].Code != protocol.CodeOK {
		t.Errorf("ping: %v; want ok", resps[3].Err())
	}
	if got, err := c.Get(ctx, "b"); err != nil || string(got) != "2" {
		t.Errorf("b after ExchangeAll = %q, %v; want 2", got, err)
	}
	if reqs[0].ID != 0 {
		t.Errorf("ExchangeAll changed the caller's request (ID %d)", reqs[0].ID)
	}

	// A request over the limits is refused before anything is sent.
	big := make([]byte, protocol.DefaultMaxValue+1)
	_, errs = c.ExchangeAll(ctx, []*protocol.Request{{Op: protocol.OpSet, Key: "c", Value: big, TTL: 60_000}, {Op: protocol.OpSet, Key: "d", Value: []byte("x"), TTL: 60_000}})
	if len(errs) != 2 || !errors.Is(errs[0], client.ErrTooLarge) || !errors.Is(errs[1], client.ErrTooLarge) {
		t.Errorf("oversized request: %v; want ErrTooLarge for both", errs)
	}
	if _, err := c.Get(ctx, "d"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("d after a refused ExchangeAll: %v; want not found (nothing sent)", err)
	}

	// A node that is gone: no responses, an error for each.
	n.Close()
	resps, errs = c.ExchangeAll(ctx, reqs)
	for i := range reqs {
		if resps[i] != nil || errs == nil || errs[i] == nil {
			t.Errorf("request %d to a stopped node: %v; want no response and an error", i, resps[i])
		}
	}

	routed := newClient(t, "127.0.0.1:1")
	if _, errs := routed.ExchangeAll(ctx, reqs); errs == nil || !errors.Is(errs[0], client.ErrBadRequest) {
		t.Errorf("ExchangeAll on a routed client: %v; want ErrBadRequest", errs)
	}
}

// One request that gets no answer fails alone: the others were answered
// (and may have run), so they must report what the node said.
func TestClient_ExchangeAll_slowRequestFailsAlone(t *testing.T) {
	addr, _, seen := stubNode(t, func(req *protocol.Request) *protocol.Response {
		if req.Key == "slow" {
			return nil
		}
		return &protocol.Response{Value: []byte("answer:" + req.Key)}
	})
	c := nodetest.DirectClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	reqs := []*protocol.Request{
		{Op: protocol.OpGetAndDelete, Key: "a"},
		{Op: protocol.OpSet, Key: "slow", Value: []byte("x"), TTL: 60_000},
		{Op: protocol.OpGetAndDelete, Key: "b"},
	}
	resps, errs := c.ExchangeAll(ctx, reqs)
	for _, i := range []int{0, 2} {
		if resps[i] == nil || string(resps[i].Value) != "answer:"+reqs[i].Key || (errs != nil && errs[i] != nil) {
			t.Errorf("request %d (%s): got %v, %v; want the node's answer", i, reqs[i].Key, resps[i], errs)
		}
	}
	if resps[1] != nil || errs == nil || !errors.Is(errs[1], context.DeadlineExceeded) {
		t.Errorf("the unanswered request: got %v, %v; want no response and the deadline", resps[1], errs)
	}

	// With ctx already done nothing is sent.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, errs := c.ExchangeAll(done, []*protocol.Request{{Op: protocol.OpSet, Key: "late", Value: []byte("x"), TTL: 60_000}}); errs == nil || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("ExchangeAll with a cancelled context: %v; want context.Canceled", errs)
	}
	if _, errs := c.ExchangeAll(context.Background(), []*protocol.Request{{Op: protocol.OpPing}}); errs != nil {
		t.Fatalf("ping: %v", errs)
	}
	if got := seen(); slices.Contains(got, "late") {
		t.Errorf("the node received %v; want nothing sent with a cancelled context", got)
	}
}
