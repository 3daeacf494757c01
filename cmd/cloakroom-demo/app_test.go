package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/node/nodetest"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startDemo(t *testing.T) *httptest.Server {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := nodetest.StartNode(t)
	cl, err := client.New(client.Config{Addrs: []string{n.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	m, err := session.New(session.Config{Client: cl, Secret: []byte(strings.Repeat("k", 32)), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&app{m: m, log: quiet}).handler())
	t.Cleanup(srv.Close)
	return srv
}

type visitor struct {
	t   *testing.T
	srv *httptest.Server
	hc  *http.Client
}

func newVisitor(t *testing.T, srv *httptest.Server) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, srv: srv, hc: &http.Client{Jar: jar}}
}

func (v *visitor) do(method, path string, form url.Values) (int, string) {
	v.t.Helper()
	req, _ := http.NewRequestWithContext(v.t.Context(), method, v.srv.URL+path, strings.NewReader(form.Encode()))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (v *visitor) sessions() []session.SessionInfo {
	v.t.Helper()
	code, body := v.do("GET", "/sessions", nil)
	var infos []session.SessionInfo
	if err := json.Unmarshal([]byte(body), &infos); err != nil {
		v.t.Fatalf("/sessions: %v in %q", err, body)
	}
	if code != 200 {
		return nil
	}
	return infos
}

func TestDemo_loginCountLogoutEverywhere(t *testing.T) {
	srv := startDemo(t)
	a, b := newVisitor(t, srv), newVisitor(t, srv)
	if _, body := a.do("GET", "/", nil); !strings.Contains(body, "Not logged in") || !strings.Contains(body, `id="visits">1<`) {
		t.Fatalf("home: got %q; want not logged in, 1 visit", body)
	}
	for _, v := range []*visitor{a, b} {
		if code, body := v.do("POST", "/login", url.Values{"user": {"alice"}}); code != 200 || !strings.Contains(body, "Welcome, alice.") {
			t.Fatalf("login: got %d %q; want the home page with a welcome", code, body)
		}
	}
	if _, body := a.do("GET", "/", nil); !strings.Contains(body, `id="user">alice<`) || !strings.Contains(body, `id="visits">3<`) || strings.Contains(body, "Welcome") {
		t.Fatalf("home after login: got %q; want alice, 3 visits, no second welcome", body)
	}
	infos := a.sessions()
	if len(infos) != 2 || infos[0].Current == infos[1].Current {
		t.Fatalf("sessions: got %+v; want two, one current", infos)
	}
	a.do("POST", "/logout-everywhere", nil)
	if _, body := b.do("GET", "/", nil); !strings.Contains(body, "Not logged in") {
		t.Fatalf("other device after log out everywhere: got %q; want not logged in", body)
	}
	if code, _ := b.do("GET", "/sessions", nil); code != http.StatusUnauthorized {
		t.Fatalf("/sessions logged out: got %d; want 401", code)
	}
}

func TestDemo_logoutAndBadInput(t *testing.T) {
	srv := startDemo(t)
	v := newVisitor(t, srv)
	if code, _ := v.do("POST", "/login", url.Values{"user": {""}}); code != http.StatusBadRequest {
		t.Fatalf("empty user: got %d; want 400", code)
	}
	v.do("POST", "/login", url.Values{"user": {"<b>bob</b>"}})
	_, body := v.do("GET", "/", nil)
	if strings.Contains(body, "<b>bob</b>") || !strings.Contains(body, "&lt;b&gt;bob&lt;/b&gt;") {
		t.Fatalf("user name not escaped in %q", body)
	}
	v.do("POST", "/logout", nil)
	if _, body := v.do("GET", "/", nil); !strings.Contains(body, "Not logged in") {
		t.Fatalf("after logout: got %q; want not logged in", body)
	}
}

func TestDemo_refusesCrossSitePosts(t *testing.T) {
	srv := startDemo(t)
	req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader("user=mallory"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: got %d; want 403", resp.StatusCode)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"CLOAKROOM_DEMO_CLUSTER": "127.0.0.2:7400, 127.0.0.3:7400"}
	o, err := parseFlags([]string{"--listen", "127.0.0.1:0", "--insecure-cookies", "--secret", strings.Repeat("ab", 32)},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:0" || !o.insecureCookies || len(o.secret) != 32 || len(o.cluster) != 2 {
		t.Fatalf("got %+v; want the flags and environment applied", o)
	}
	if _, err := parseFlags([]string{"--secret", "zz"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("non-hex secret: got nil error")
	}
}
