package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
)

// reply is what one HTTP request to a test app returned.
type reply struct {
	status int
	body   string
	cookie *http.Cookie // the Set-Cookie named cookieName, or nil
	err    string       // a transport error, for tryVisit's callers
}

// visit sends method path to the app at base, carrying the cookie if it is
// not nil, and returns the status, the body and the app's session cookie.
func visit(t *testing.T, base, method, path string, cookie *http.Cookie) reply {
	t.Helper()
	r := tryVisit(base, method, path, cookie)
	if r.err != "" {
		t.Fatalf("%s %s: %s", method, path, r.err)
	}
	return r
}

// tryVisit is visit for goroutines other than the test's: it reports a
// transport error in reply.err instead of failing the test.
func tryVisit(base, method, path string, cookie *http.Cookie) reply {
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		return reply{err: err.Error()}
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{err: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{err: "read body: " + err.Error()}
	}
	r := reply{status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			r.cookie = c
		}
	}
	return r
}

// wantReply fails the test unless r has the given status and body.
func wantReply(t *testing.T, step string, r reply, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("%s: got %d %q; want %d %q", step, r.status, r.body, status, body)
	}
}

// wantCookie fails the test unless r set a non-empty session cookie, and
// returns it.
func wantCookie(t *testing.T, step string, r reply) *http.Cookie {
	t.Helper()
	if r.cookie == nil || r.cookie.Value == "" {
		t.Fatalf("%s: got no session cookie (status %d, body %q); want one", step, r.status, r.body)
	}
	return r.cookie
}

// wantClearedCookie fails the test unless r told the browser to drop the
// session cookie.
func wantClearedCookie(t *testing.T, step string, r reply) {
	t.Helper()
	if r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Fatalf("%s: got cookie %v; want one with Max-Age<0 (deleted)", step, r.cookie)
	}
}

// inspector looks at keys on the server directly, as an operator would with
// redis-cli, to check what a session library left there.
type inspector struct {
	addr string
}

func (in inspector) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	c, err := redigo.Dial("tcp", in.addr)
	if err != nil {
		t.Fatalf("inspect %s: %v", in.addr, err)
	}
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		t.Fatalf("inspect %s: %s %v: %v", in.addr, cmd, args, err)
	}
	return v
}

// wantTTL fails the test unless key exists with a TTL in (0, max].
func (in inspector) wantTTL(t *testing.T, key string, maxMillis int64) {
	t.Helper()
	in.wantTTLIn(t, key, 1, maxMillis)
}

// wantTTLIn fails the test unless key exists with a TTL in [min, max].
func (in inspector) wantTTLIn(t *testing.T, key string, minMillis, maxMillis int64) {
	t.Helper()
	pttl, err := redigo.Int64(in.do(t, "PTTL", key), nil)
	if err != nil || pttl < minMillis || pttl > maxMillis {
		t.Fatalf("PTTL %s: got %d (%v); want in [%d, %d]", key, pttl, err, minMillis, maxMillis)
	}
}

// wantGone fails the test unless key does not exist.
func (in inspector) wantGone(t *testing.T, key string) {
	t.Helper()
	n, err := redigo.Int64(in.do(t, "EXISTS", key), nil)
	if err != nil || n != 0 {
		t.Fatalf("EXISTS %s: got %d (%v); want 0", key, n, err)
	}
}

// eventually polls cond until it holds, failing the test after five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 5s", what)
		}
		<-tick.C
	}
}
