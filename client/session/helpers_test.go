package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/nodetest"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/session"
	"github.com/cloakroom/cloakroom/node"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startNode starts a real single node on kernel-chosen loopback ports.
func startNode(t testing.TB, mutate ...func(*node.Config)) *node.Node {
	t.Helper()
	return nodetest.StartNode(t, mutate...)
}

// env is a real node, a client, a manager on a fake clock and a test app.
type env struct {
	node  *node.Node
	cl    *client.Client
	clock *fakeClock
	m     *session.Manager
	srv   *httptest.Server
	// hook, if set, runs inside the app's handler before it acts.
	hook func(r *http.Request)
}

func newEnv(t *testing.T, tls bool, mutate ...func(*session.Config)) *env {
	t.Helper()
	return newEnvOn(t, startNode(t), tls, mutate...)
}

// newEnvOn is newEnv on a node the test started.
func newEnvOn(t *testing.T, n *node.Node, tls bool, mutate ...func(*session.Config)) *env {
	t.Helper()
	e := &env{node: n, clock: newClock()}
	cl, err := client.New(client.Config{Addrs: []string{e.node.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	e.cl = cl
	cfg := session.Config{Client: cl, Secret: testSecret, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range mutate {
		f(&cfg)
	}
	if e.m, err = session.New(cfg); err != nil {
		t.Fatal(err)
	}
	h := e.m.Handler(http.HandlerFunc(e.app))
	if tls {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(e.srv.Close)
	return e
}

// app is the test application: /put?k=&v=, /get?k=, /pop?k=, /login?u=,
// /logout, /everywhere?u=, /remember, /count.
func (e *env) app(w http.ResponseWriter, r *http.Request) {
	if e.hook != nil {
		e.hook(r)
	}
	s := session.FromContext(r.Context())
	q := r.URL.Query()
	var err error
	switch r.URL.Path {
	case "/put":
		err = session.Put(s, q.Get("k"), q.Get("v"))
	case "/get":
		v, _ := session.Get[string](s, q.Get("k"))
		fmt.Fprint(w, v)
	case "/pop":
		v, _ := session.Pop[string](s, q.Get("k"))
		fmt.Fprint(w, v)
	case "/login":
		err = e.m.Login(r.Context(), q.Get("u"))
	case "/renew":
		err = e.m.Renew(r.Context())
	case "/logout":
		err = e.m.Logout(r.Context())
	case "/everywhere":
		_, err = e.m.LogoutEverywhere(r.Context(), q.Get("u"))
	case "/remember":
		s.SetRememberMe(true)
	case "/count":
		n, _ := session.Get[int](s, "n")
		err = session.Put(s, "n", n+1)
		fmt.Fprint(w, n+1)
	case "/list":
		var infos []session.SessionInfo
		if infos, err = e.m.ListSessions(r.Context(), s.UserID()); err == nil {
			err = json.NewEncoder(w).Encode(infos)
		}
	case "/whoami":
		fmt.Fprint(w, s.UserID())
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// browser is a minimal cookie holder, so tests see every Set-Cookie.
type browser struct {
	t       *testing.T
	e       *env
	cookies map[string]string
	last    []*http.Cookie // Set-Cookie of the last response
	ua      string
	header  map[string]string // extra request headers
}

func (e *env) browser(t *testing.T) *browser {
	return &browser{t: t, e: e, cookies: map[string]string{}, ua: "TestBrowser/1.0", header: map[string]string{}}
}

// do requests path and returns status and body, keeping cookies.
func (b *browser) do(path string) (int, string) {
	b.t.Helper()
	code, body, err := b.try(path)
	if err != nil {
		b.t.Fatalf("%s: %v", path, err)
	}
	return code, body
}

// try is do for goroutines other than the test's: it returns errors.
func (b *browser) try(path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.e.srv.URL+path, nil)
	req.Header.Set("User-Agent", b.ua)
	for k, v := range b.header {
		req.Header.Set(k, v)
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := b.e.srv.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last = resp.Cookies()
	for _, c := range b.last {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// get is do that must answer 200.
func (b *browser) get(path string) string {
	b.t.Helper()
	code, body := b.do(path)
	if code != http.StatusOK {
		b.t.Fatalf("%s: status %d (%s); want 200", path, code, body)
	}
	return body
}

// clone is another browser holding the same cookies (a stolen or shared
// cookie, or a second tab).
func (b *browser) clone() *browser {
	c := b.e.browser(b.t)
	c.ua = b.ua
	for k, v := range b.cookies {
		c.cookies[k] = v
	}
	return c
}

func q(s string) string { return url.QueryEscape(s) }
