package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	goredis "github.com/redis/go-redis/v9"
)

// The suites below drive real session managers over HTTP the way a web app
// does: log in, come back, renew, log out. Each runs against every target in
// compatTargets; the app dials the first node, and server-side checks dial
// the last, so on a cluster they also prove that any node sees the session.

const (
	sessionLifetime = time.Hour
	cookieName      = "session"
)

func TestSCS_redisstore_loginRenewLogout(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		pool := &redigo.Pool{
			MaxIdle: 4,
			Dial:    func() (redigo.Conn, error) { return redigo.Dial("tcp", addrs[0]) },
		}
		t.Cleanup(func() { pool.Close() })
		const prefix = "scs:redigo:"
		runSCSFlow(t, redisstore.NewWithPrefix(pool, prefix), prefix, inspector{addrs[len(addrs)-1]})
	})
}

func TestSCS_goredisstore_loginRenewLogout(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		for _, proto := range []int{3, 2} {
			t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
				client := goredis.NewClient(&goredis.Options{Addr: addrs[0], Protocol: proto})
				t.Cleanup(func() { client.Close() })
				prefix := fmt.Sprintf("scs:goredis%d:", proto)
				runSCSFlow(t, goredisstore.NewWithPrefix(client, prefix), prefix, inspector{addrs[len(addrs)-1]})
			})
		}
	})
}

// newSCSApp serves a tiny login app on top of sm.
func newSCSApp(t *testing.T, sm *scs.SessionManager) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sm.Put(r.Context(), "user", r.URL.Query().Get("user"))
		fmt.Fprintln(w, "welcome")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		user := sm.GetString(r.Context(), "user")
		if user == "" {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, user)
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "renewed")
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.Destroy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "bye")
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	return srv
}

// runSCSFlow logs two users in through scs backed by store, renews one
// token, logs that user out and checks the server side after each step.
func runSCSFlow(t *testing.T, store scs.Store, prefix string, server inspector) {
	sm := scs.New()
	sm.Store = store
	sm.Lifetime = sessionLifetime
	sm.Cookie.Name = cookieName
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
	}
	base := newSCSApp(t, sm).URL
	get := func(method, path string, c *http.Cookie) reply {
		t.Helper()
		return visit(t, base, method, path, c)
	}
	maxTTL := sessionLifetime.Milliseconds()

	wantReply(t, "anonymous whoami", get("GET", "/whoami", nil), 401, "anonymous")

	r := get("POST", "/login?user=alice", nil)
	wantReply(t, "login alice", r, 200, "welcome")
	alice := wantCookie(t, "login alice", r)
	server.wantTTL(t, prefix+alice.Value, maxTTL)
	wantReply(t, "whoami after login", get("GET", "/whoami", alice), 200, "alice")

	r = get("POST", "/login?user=bob", nil)
	bob := wantCookie(t, "login bob", r)
	if got := scsUsers(t, sm); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("sessions listed after two logins: got %q; want [alice bob]", got)
	}

	r = get("POST", "/renew", alice)
	wantReply(t, "renew", r, 200, "renewed")
	renewed := wantCookie(t, "renew", r)
	if renewed.Value == alice.Value {
		t.Fatalf("renew: got the same token %q; want a new one", renewed.Value)
	}
	wantReply(t, "whoami with renewed token", get("GET", "/whoami", renewed), 200, "alice")
	wantReply(t, "whoami with pre-renewal token", get("GET", "/whoami", alice), 401, "anonymous")
	server.wantGone(t, prefix+alice.Value)
	server.wantTTL(t, prefix+renewed.Value, maxTTL)

	r = get("POST", "/logout", renewed)
	wantReply(t, "logout", r, 200, "bye")
	wantClearedCookie(t, "logout", r)
	wantReply(t, "whoami after logout", get("GET", "/whoami", renewed), 401, "anonymous")
	server.wantGone(t, prefix+renewed.Value)

	wantReply(t, "other user after logout", get("GET", "/whoami", bob), 200, "bob")
	if got := scsUsers(t, sm); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("sessions listed after logout: got %q; want [bob]", got)
	}

	server.do(t, "PEXPIRE", prefix+bob.Value, 50)
	eventually(t, "bob's session expires 50ms after PEXPIRE", func() bool {
		return get("GET", "/whoami", bob).status == 401
	})
	server.wantGone(t, prefix+bob.Value)
}

// scsUsers lists the user of every stored session through the store's All
// (KEYS for redisstore, SCAN for goredisstore), sorted.
func scsUsers(t *testing.T, sm *scs.SessionManager) []string {
	t.Helper()
	var users []string
	err := sm.Iterate(context.Background(), func(ctx context.Context) error {
		users = append(users, sm.GetString(ctx, "user"))
		return nil
	})
	if err != nil {
		t.Fatalf("iterate sessions: %v", err)
	}
	slices.Sort(users)
	return users
}

func TestGorillaRedistore_loginSaveLogout(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		store, err := redistore.NewRediStore(4, "tcp", addrs[0], "", "", []byte("compat-suite-hash-key-0123456789"))
		if err != nil {
			t.Fatalf("NewRediStore: %v", err)
		}
		t.Cleanup(func() { store.Close() })
		const prefix = "gorilla:"
		store.SetKeyPrefix(prefix)
		store.SetMaxAge(int(sessionLifetime.Seconds()))
		runGorillaFlow(t, store, prefix, inspector{addrs[len(addrs)-1]})
	})
}

// newGorillaApp serves the login app on top of a gorilla/sessions store. The
// session ID is in the login reply so the test can find the key.
func newGorillaApp(t *testing.T, store sessions.Store) *httptest.Server {
	t.Helper()
	load := func(w http.ResponseWriter, r *http.Request) (*sessions.Session, bool) {
		s, err := store.Get(r, cookieName)
		if err != nil {
			http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
			return nil, false
		}
		return s, true
	}
	save := func(w http.ResponseWriter, r *http.Request, s *sessions.Session) bool {
		if err := s.Save(r, w); err != nil {
			http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
			return false
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := load(w, r); ok {
			s.Values["user"] = r.URL.Query().Get("user")
			s.Values["visits"] = 1
			if save(w, r, s) {
				fmt.Fprintln(w, s.ID)
			}
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := load(w, r); ok {
			if s.IsNew {
				http.Error(w, "anonymous", http.StatusUnauthorized)
				return
			}
			fmt.Fprintf(w, "%v %v\n", s.Values["user"], s.Values["visits"])
		}
	})
	mux.HandleFunc("POST /visit", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := load(w, r); ok {
			visits, _ := s.Values["visits"].(int)
			s.Values["visits"] = visits + 1
			if save(w, r, s) {
				fmt.Fprintln(w, s.ID)
			}
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := load(w, r); ok {
			s.Options.MaxAge = -1
			if save(w, r, s) {
				fmt.Fprintln(w, "bye")
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// runGorillaFlow logs in, loads, saves again and logs out through a
// gorilla/sessions store, checking the server side after each step.
func runGorillaFlow(t *testing.T, store sessions.Store, prefix string, server inspector) {
	base := newGorillaApp(t, store).URL
	get := func(method, path string, c *http.Cookie) reply {
		t.Helper()
		return visit(t, base, method, path, c)
	}
	maxTTL := sessionLifetime.Milliseconds()

	wantReply(t, "anonymous whoami", get("GET", "/whoami", nil), 401, "anonymous")

	r := get("POST", "/login?user=alice", nil)
	if r.status != 200 {
		t.Fatalf("login: got %d %q; want 200", r.status, r.body)
	}
	id := r.body
	cookie := wantCookie(t, "login", r)
	server.wantTTL(t, prefix+id, maxTTL)
	wantReply(t, "whoami after login", get("GET", "/whoami", cookie), 200, "alice 1")

	// Saving again renews the session: its TTL is set back to MaxAge. So
	// that a save which left the TTL alone cannot pass, the key is first
	// given a few seconds to live behind the store's back.
	server.do(t, "PEXPIRE", prefix+id, 5000)
	server.wantTTLIn(t, prefix+id, 1, 5000)
	r = get("POST", "/visit", cookie)
	wantReply(t, "save again", r, 200, id)
	cookie = wantCookie(t, "save again", r)
	wantReply(t, "whoami after second save", get("GET", "/whoami", cookie), 200, "alice 2")
	server.wantTTLIn(t, prefix+id, maxTTL-time.Minute.Milliseconds(), maxTTL)

	r = get("POST", "/logout", cookie)
	wantReply(t, "logout", r, 200, "bye")
	wantClearedCookie(t, "logout", r)
	server.wantGone(t, prefix+id)
	wantReply(t, "whoami with the logged-out cookie", get("GET", "/whoami", cookie), 401, "anonymous")
}
