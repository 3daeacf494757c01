package scsstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/nodetest"

	"github.com/alexedwards/scs/v2"
	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/scsstore"
	"github.com/cloakroom/cloakroom/protocol"
	"go.uber.org/goleak"
)

// scs.New starts a cleanup goroutine for its default in-memory store, which
// cannot be stopped without a data race (scs v2.9.0); it is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"))
}

func newStore(t *testing.T) (*scsstore.Store, *client.Client) {
	t.Helper()
	n := nodetest.StartNode(t)
	cl, err := client.New(client.Config{Addrs: []string{n.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	st, err := scsstore.New(scsstore.Config{Client: cl})
	if err != nil {
		t.Fatal(err)
	}
	return st, cl
}

func TestStore_findCommitDelete(t *testing.T) {
	st, _ := newStore(t)
	if _, found, err := st.Find("nope"); found || err != nil {
		t.Fatalf("find missing: got %v, %v; want false, nil", found, err)
	}
	if err := st.Commit("tok", []byte("data"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, found, err := st.Find("tok")
	if !found || err != nil || string(b) != "data" {
		t.Fatalf("find: got %q, %v, %v; want data", b, found, err)
	}
	if err := st.Delete("tok"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete("tok"); err != nil {
		t.Fatalf("deleting twice: got %v; want nil", err)
	}
	if _, found, _ := st.Find("tok"); found {
		t.Fatal("find after delete: got found; want not found")
	}
}

func TestStore_commitWithAPastExpiryDeletes(t *testing.T) {
	st, _ := newStore(t)
	st.Commit("tok", []byte("data"), time.Now().Add(time.Minute))
	if err := st.Commit("tok", []byte("data"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := st.Find("tok"); found {
		t.Fatal("got found; want an expired commit to delete")
	}
}

func TestStore_keysDoNotRevealTokens(t *testing.T) {
	st, cl := newStore(t)
	const token = "secret-token-value"
	st.Commit(token, []byte("d"), time.Now().Add(time.Minute))
	for p := range 271 {
		resp, err := cl.Do(t.Context(), &protocol.Request{Op: protocol.OpScan, Partition: int32(p), Count: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.Keys {
			if strings.Contains(k, token) {
				t.Fatalf("key %q contains the token", k)
			}
		}
	}
}

// TestStore_fullSCSFlow runs scs's own manager over the store: load, put,
// renew token, destroy and iterate.
func TestStore_fullSCSFlow(t *testing.T) {
	st, _ := newStore(t)
	sm := scs.New()
	sm.Store = st
	sm.Lifetime = time.Hour
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "user"))
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	get := func(path string) string {
		t.Helper()
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	token := func() string {
		for _, c := range jar.Cookies(mustURL(t, srv.URL)) {
			if c.Name == "session" {
				return c.Value
			}
		}
		return ""
	}

	get("/put?v=alice")
	if got := get("/get"); got != "alice" {
		t.Fatalf("get: got %q; want alice", got)
	}
	before := token()
	get("/renew")
	after := token()
	if after == before || after == "" {
		t.Fatalf("renew: token %q -> %q; want a new token", before, after)
	}
	if _, found, _ := st.Find(before); found {
		t.Fatal("old token still found after renew")
	}
	if got := get("/get"); got != "alice" {
		t.Fatalf("get after renew: got %q; want alice", got)
	}

	var seen []string
	err := sm.Iterate(context.Background(), func(ctx context.Context) error {
		seen = append(seen, sm.GetString(ctx, "user"))
		return nil
	})
	if err != nil || len(seen) != 1 || seen[0] != "alice" {
		t.Fatalf("iterate: got %v, %v; want [alice]", seen, err)
	}
	all, err := st.All()
	if _, ok := all[after]; err != nil || len(all) != 1 || !ok {
		t.Fatalf("all: got %d sessions, %v; want the renewed token only", len(all), err)
	}

	get("/destroy")
	if _, found, _ := st.Find(after); found {
		t.Fatal("token found after destroy")
	}
	if got := get("/get"); got != "" {
		t.Fatalf("get after destroy: got %q; want empty", got)
	}
	all, err = st.AllCtx(t.Context())
	if err != nil || len(all) != 0 {
		t.Fatalf("all after destroy: got %v, %v; want empty", all, err)
	}
}

func TestStore_allRefusesAWrongPartitionCount(t *testing.T) {
	_, cl := newStore(t)
	st, _ := scsstore.New(scsstore.Config{Client: cl, Partitions: 100})
	if _, err := st.All(); err == nil {
		t.Fatal("got nil; want an error for a partition count the cluster does not have")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
