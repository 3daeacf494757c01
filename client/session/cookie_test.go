package session_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client/session"
)

func sessionCookie(t *testing.T, b *browser) *http.Cookie {
	t.Helper()
	if len(b.last) != 1 {
		t.Fatalf("got Set-Cookie %v; want exactly one", b.last)
	}
	return b.last[0]
}

func TestCookie_attributes(t *testing.T) {
	cases := []struct {
		name       string
		tls        bool
		mode       session.SecureMode
		wantName   string
		wantSecure bool
	}{
		{"http auto", false, session.SecureAuto, "session", false},
		{"https auto", true, session.SecureAuto, "__Host-session", true},
		{"http always (TLS proxy)", false, session.SecureAlways, "__Host-session", true},
		{"https never (local dev)", true, session.SecureNever, "session", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tls, func(c *session.Config) { c.Secure = tc.mode })
			b := e.browser(t)
			b.get("/put?k=x&v=1")
			c := sessionCookie(t, b)
			if c.Name != tc.wantName {
				t.Errorf("name: got %q; want %q", c.Name, tc.wantName)
			}
			if c.Secure != tc.wantSecure {
				t.Errorf("Secure: got %v; want %v", c.Secure, tc.wantSecure)
			}
			if !c.HttpOnly {
				t.Error("HttpOnly: got false; want true")
			}
			if c.SameSite != http.SameSiteLaxMode {
				t.Errorf("SameSite: got %v; want Lax", c.SameSite)
			}
			if c.Path != "/" || c.Domain != "" {
				t.Errorf("Path, Domain: got %q, %q; want /, none", c.Path, c.Domain)
			}
			if c.MaxAge != 0 || !c.Expires.IsZero() {
				t.Errorf("MaxAge, Expires: got %d, %v; want a browser-session cookie", c.MaxAge, c.Expires)
			}
			if got := b.get("/get?k=x"); got != "1" {
				t.Errorf("reading back: got %q; want 1", got)
			}
		})
	}
}

func TestCookie_httpsIgnoresAnUnprefixedCookie(t *testing.T) {
	e := newEnv(t, true)
	b := e.browser(t)
	b.get("/put?k=x&v=1")
	tossed := e.browser(t)
	tossed.cookies["session"] = b.cookies["__Host-session"] // as planted over HTTP
	if got := tossed.get("/get?k=x"); got != "" {
		t.Fatalf("got %q through an unprefixed cookie over HTTPS; want nothing", got)
	}
}

func TestCookie_forwardedProtoOnlyWhenTrusted(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := newEnv(t, false, func(c *session.Config) { c.TrustForwardedProto = trust })
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/put?k=x&v=1", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Cookies()[0]
		if got.Secure != trust || strings.HasPrefix(got.Name, "__Host-") != trust {
			t.Errorf("trust=%v: got cookie %s Secure=%v; want Secure and prefix %v", trust, got.Name, got.Secure, trust)
		}
	}
}

func TestCookie_rememberMeIsPersistentAndOutlivesTheIdleTimeout(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	b.get("/remember")
	c := sessionCookie(t, b)
	if want := int((30 * 24 * time.Hour).Seconds()); c.MaxAge < want-5 || c.MaxAge > want {
		t.Fatalf("MaxAge: got %d; want about %d", c.MaxAge, want)
	}
	e.clock.Advance(2 * time.Hour) // past the 30m idle timeout
	if got := b.get("/whoami"); got != "alice" {
		t.Fatalf("remembered session after 2h idle is %q; want alice", got)
	}
	ttl, err := e.cl.TTL(t.Context(), keyOf(t, e, "alice"))
	if err != nil || ttl < 29*24*time.Hour {
		t.Fatalf("store TTL: got %v, %v; want about 30 days", ttl, err)
	}
}

func TestCookie_refusesSameSiteNoneWithoutSecure(t *testing.T) {
	_, err := session.New(session.Config{Client: nil, Secret: testSecret, SameSite: http.SameSiteNoneMode})
	if err == nil || !strings.Contains(err.Error(), "SameSite=None") {
		t.Fatalf("got %v; want SameSite=None refused", err)
	}
}
