package integration

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
)

// concurrentUsers is how many users log in at once: enough for the pools to
// open several connections, each with its own MULTI/EXEC in flight.
const concurrentUsers = 32

func TestSCS_redisstore_concurrentLoginsKeepTheirOwnSessions(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		pool := &redigo.Pool{
			MaxIdle: concurrentUsers,
			Dial:    func() (redigo.Conn, error) { return redigo.Dial("tcp", addrs[0]) },
		}
		t.Cleanup(func() { pool.Close() })
		const prefix = "scs:redigo-many:"
		runConcurrentLogins(t, redisstore.NewWithPrefix(pool, prefix), prefix, inspector{addrs[len(addrs)-1]})
	})
}

func TestSCS_goredisstore_concurrentLoginsKeepTheirOwnSessions(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		client := goredis.NewClient(&goredis.Options{Addr: addrs[0], PoolSize: concurrentUsers})
		t.Cleanup(func() { client.Close() })
		const prefix = "scs:goredis-many:"
		runConcurrentLogins(t, goredisstore.NewWithPrefix(client, prefix), prefix, inspector{addrs[len(addrs)-1]})
	})
}

// runConcurrentLogins logs concurrentUsers users in at the same time, then
// checks that each cookie loads its own user and that every key has a TTL.
func runConcurrentLogins(t *testing.T, store scs.Store, prefix string, server inspector) {
	sm := scs.New()
	sm.Store = store
	sm.Lifetime = sessionLifetime
	sm.Cookie.Name = cookieName
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
	}
	base := newSCSApp(t, sm).URL

	type result struct {
		user   string
		cookie *http.Cookie
		err    string
	}
	results := make([]result, concurrentUsers)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			user := fmt.Sprintf("user%02d", i)
			r := tryVisit(base, "POST", "/login?user="+user, nil)
			if r.err != "" || r.status != 200 || r.cookie == nil {
				results[i] = result{user: user, err: fmt.Sprintf("login: %d %q %s", r.status, r.body, r.err)}
				return
			}
			w := tryVisit(base, "GET", "/whoami", r.cookie)
			if w.err != "" || w.status != 200 || w.body != user {
				results[i] = result{user: user, err: fmt.Sprintf("whoami: got %d %q %s; want 200 %q", w.status, w.body, w.err, user)}
				return
			}
			results[i] = result{user: user, cookie: r.cookie}
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.err != "" {
			t.Errorf("%s: %s", r.user, r.err)
		}
	}
	if t.Failed() {
		return
	}
	for _, r := range results {
		server.wantTTL(t, prefix+r.cookie.Value, sessionLifetime.Milliseconds())
	}
	if got := len(scsUsers(t, sm)); got != concurrentUsers {
		t.Errorf("sessions listed: got %d; want %d", got, concurrentUsers)
	}
}
