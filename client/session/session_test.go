package session_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client/session"
)

func TestNew_refusesAShortSecretAndReportsEveryProblem(t *testing.T) {
	_, err := session.New(session.Config{Secret: []byte("short"), IdleTimeout: time.Hour, AbsoluteTimeout: time.Minute})
	if err == nil {
		t.Fatal("got nil error; want the config refused")
	}
	for _, want := range []string{"client: required", "secret: 5 bytes", "absolute timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestHandler_storesNothingUntilAValueIsPut(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/get?k=x")
	if len(b.last) != 0 {
		t.Fatalf("got Set-Cookie %v on a request that stored nothing; want none", b.last)
	}
	b.get("/put?k=x&v=coat")
	if len(b.cookies) != 1 {
		t.Fatalf("got cookies %v after a put; want one session cookie", b.cookies)
	}
	if got := b.get("/get?k=x"); got != "coat" {
		t.Fatalf("got %q; want coat", got)
	}
	if len(b.last) != 0 {
		t.Fatalf("got Set-Cookie %v on an unchanged session; want none", b.last)
	}
}

func TestPop_returnsAFlashOnce(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/put?k=flash&v=saved")
	if got := b.get("/pop?k=flash"); got != "saved" {
		t.Fatalf("first pop got %q; want saved", got)
	}
	if got := b.get("/pop?k=flash"); got != "" {
		t.Fatalf("second pop got %q; want empty", got)
	}
}

func TestHandler_countsVisitsWithTypedValues(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	for want := 1; want <= 3; want++ {
		if got := b.get("/count"); got != string(rune('0'+want)) {
			t.Fatalf("visit %d: got %q; want %d", want, got, want)
		}
	}
}

func TestHandler_strictModeNeverAdoptsAnUnissuedID(t *testing.T) {
	e := newEnv(t, false)
	planted := strings.Repeat("A", 43) // well-formed, never issued
	cases := map[string]string{"well-formed": planted, "malformed": "../../etc", "forged user tag": strings.Repeat("B", 22) + "." + planted}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			b := e.browser(t)
			b.cookies["session"] = v
			b.get("/put?k=x&v=1")
			got := b.cookies["session"]
			if got == "" || strings.Contains(got, planted) || got == v {
				t.Fatalf("got cookie %q; want a fresh server-issued ID", got)
			}
		})
	}
}

func TestHandler_expiresACookieThatNamesNoSession(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.cookies["session"] = strings.Repeat("A", 43)
	b.get("/get?k=x")
	if len(b.last) != 1 || b.last[0].MaxAge >= 0 {
		t.Fatalf("got Set-Cookie %v; want the stale cookie expired", b.last)
	}
}

func TestLogin_rotatesTheIDAndKeepsAnonymousValues(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/put?k=cart&v=socks")
	before := b.clone()
	b.get("/login?u=alice")
	if b.cookies["session"] == before.cookies["session"] {
		t.Fatal("got the same cookie after login; want a new ID")
	}
	if got := b.get("/whoami"); got != "alice" {
		t.Fatalf("whoami got %q; want alice", got)
	}
	if got := b.get("/get?k=cart"); got != "socks" {
		t.Fatalf("cart after login got %q; want socks", got)
	}
	if got := before.get("/whoami"); got != "" {
		t.Fatalf("old ID after login is %q; want no session", got)
	}
	if got := before.get("/get?k=cart"); got != "" {
		t.Fatalf("old ID still reads cart %q; want nothing", got)
	}
}

func TestLogin_asAnotherUserDropsThePreviousUsersValues(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	b.get("/put?k=secret&v=alices")
	b.get("/login?u=bob")
	if got := b.get("/get?k=secret"); got != "" {
		t.Fatalf("bob reads %q; want none of alice's values", got)
	}
}

func TestLogout_deletesServerSideAndExpiresTheCookie(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	stolen := b.clone()
	b.get("/logout")
	if len(b.last) != 1 || b.last[0].MaxAge >= 0 {
		t.Fatalf("got Set-Cookie %v; want the cookie expired", b.last)
	}
	if got := stolen.get("/whoami"); got != "" {
		t.Fatalf("a copy of the logged-out cookie is user %q; want none", got)
	}
}

func TestManager_needsTheMiddleware(t *testing.T) {
	e := newEnv(t, false)
	if err := e.m.Login(t.Context(), "alice"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("got %v; want ErrNoSession", err)
	}
}

func TestRenew_rotatesTheIDAndKeepsTheUser(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	old := b.clone()
	b.get("/renew")
	if b.cookies["session"] == old.cookies["session"] {
		t.Fatal("got the same cookie after renew; want a new ID")
	}
	if got := b.get("/whoami"); got != "alice" {
		t.Fatalf("after renew: got %q; want alice", got)
	}
	if got := old.get("/whoami"); got != "" {
		t.Fatalf("old ID after renew: got %q; want no session", got)
	}
}

func TestHandler_storeDownFailsClosedOnlyForSessionRequests(t *testing.T) {
	e := newEnv(t, false, func(c *session.Config) { c.StoreTimeout = 500 * time.Millisecond })
	b := e.browser(t)
	b.get("/login?u=alice")
	e.node.Close()
	if code, _ := b.do("/whoami"); code != 503 {
		t.Fatalf("with a session cookie and the store down: got %d; want 503", code)
	}
	if code, _ := e.browser(t).do("/whoami"); code != 200 {
		t.Fatalf("without a cookie and the store down: got %d; want 200", code)
	}
}
