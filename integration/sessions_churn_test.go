package integration

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	redigo "github.com/gomodule/redigo/redis"
)

// TestChurn_SCSSessionsThroughOneNode_killOne_noUserLoggedOut: a web app
// keeps its sessions with scs's redisstore (redigo: GET to load, MULTI /
// SET / PEXPIREAT / EXEC to save, DEL to destroy) on node 1 of three,
// whose users log in, come back, renew their token and log out, over and
// over, while node 3 is killed -9. No request may fail (the app answers
// 500 when the store does), no user may find themselves logged out before
// they log out, and every logout must be final. Until the cluster drops
// node 3 (seconds), writes on its keys wait in node 1
// (--resp-retry-window) instead of failing; redigo sets no read timeout,
// as most session stores' clients do not.
func TestChurn_SCSSessionsThroughOneNode_killOne_noUserLoggedOut(t *testing.T) {
	ctx, c := threeNodes(t)
	entry := c.procs[0].resp // never killed
	pool := &redigo.Pool{
		MaxIdle: 16,
		Dial:    func() (redigo.Conn, error) { return redigo.Dial("tcp", entry) },
	}
	t.Cleanup(func() { pool.Close() })
	sm := scs.New()
	sm.Store = redisstore.NewWithPrefix(pool, "churn:")
	sm.Lifetime = sessionLifetime
	sm.Cookie.Name = cookieName
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "session store: "+err.Error(), http.StatusInternalServerError)
	}
	base := newSCSApp(t, sm).URL

	const users = 8
	var (
		flows, slowest atomic.Int64 // whole flows done; the slowest request (ns)
		mu             sync.Mutex
		problems       []string
		stop           = make(chan struct{})
		wg             sync.WaitGroup
	)
	// However the test ends, the users stop, and what went wrong is told.
	var once sync.Once
	finish := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			for i, p := range problems {
				if i == 10 {
					t.Errorf("... and %d more", len(problems)-i)
					break
				}
				t.Error(p)
			}
		})
	}
	t.Cleanup(finish)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
	// step sends one request and checks its answer; false ends the flow.
	step := func(user, method, path string, cookie *http.Cookie, status int, body string) (reply, bool) {
		start := time.Now()
		r := tryVisit(base, method, path, cookie)
		if d := int64(time.Since(start)); d > slowest.Load() {
			slowest.Store(d) // racy, but a near-max is enough
		}
		if r.err != "" || r.status != status || strings.TrimSpace(r.body) != body {
			fail("%s: %s %s: %d %q %s; want %d %q", user, method, path, r.status, strings.TrimSpace(r.body), r.err, status, body)
			return r, false
		}
		return r, true
	}
	for u := range users {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("user%d-%d", u, n)
				r, ok := step(user, "POST", "/login?user="+user, nil, 200, "welcome")
				if !ok || r.cookie == nil {
					continue
				}
				if _, ok := step(user, "GET", "/whoami", r.cookie, 200, user); !ok {
					continue
				}
				old := r.cookie
				if r, ok = step(user, "POST", "/renew", old, 200, "renewed"); !ok || r.cookie == nil {
					continue
				}
				if _, ok := step(user, "GET", "/whoami", r.cookie, 200, user); !ok {
					continue
				}
				if _, ok := step(user, "GET", "/whoami", old, 401, "anonymous"); !ok {
					continue
				}
				if _, ok := step(user, "POST", "/logout", r.cookie, 200, "bye"); !ok {
					continue
				}
				if _, ok := step(user, "GET", "/whoami", r.cookie, 401, "anonymous"); ok {
					flows.Add(1)
				}
			}
		})
	}
	progress := func(n int64) {
		from := flows.Load()
		eventuallyWithin(t, 60*time.Second, func() error {
			if got := flows.Load() - from; got < n {
				return fmt.Errorf("%d of %d flows done", got, n)
			}
			return nil
		})
	}
	progress(50)
	before := flows.Load()
	c.kill(2)
	killed := time.Now()
	waitTablesAgree(ctx, t, c, 2)
	agreed := time.Since(killed)
	during := flows.Load() - before
	progress(50)
	finish()

	m, err := metricsOf(c.procs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d flows of seven requests (%d while the cluster noticed the crash, %v); slowest request %v; node 1 sent %v requests again",
		flows.Load(), during, agreed.Round(time.Millisecond), time.Duration(slowest.Load()).Round(time.Millisecond), m["cloakroom_resp_retries_total"])
	if m["cloakroom_resp_retries_total"] == 0 {
		t.Error("node 1 sent no request again: the crash did not touch the users' sessions, and the test proved nothing")
	}
}
