package session_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// barrier blocks requests carrying X-Barrier, after their session loaded,
// until n of them have arrived.
func barrier(e *env, n int) {
	var mu sync.Mutex
	all := make(chan struct{})
	e.hook = func(r *http.Request) {
		if r.Header.Get("X-Barrier") == "" {
			return
		}
		mu.Lock()
		if n--; n == 0 {
			close(all)
		}
		mu.Unlock()
		<-all
	}
}

func TestSave_concurrentRequestsMergeTheirWrites(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	const n = 8
	barrier(e, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		c := b.clone()
		c.header["X-Barrier"] = "1"
		wg.Go(func() {
			code, body, err := c.try(fmt.Sprintf("/put?k=k%d&v=%d", i, i))
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("put k%d: status %d (%s)", i, code, body)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.hook = nil
	for i := range n {
		if got := b.get(fmt.Sprintf("/get?k=k%d", i)); got != fmt.Sprint(i) {
			t.Errorf("k%d: got %q; want %d", i, got, i)
		}
	}
}

func TestSave_aConflictingWriteToTheSameValueIsRefusedNotLost(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice")
	barrier(e, 2)
	codes := make(chan int, 2)
	var wg sync.WaitGroup
	for _, v := range []string{"red", "blue"} {
		c := b.clone()
		c.header["X-Barrier"] = "1"
		wg.Go(func() {
			code, _, _ := c.try("/put?k=colour&v=" + v)
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	var ok, conflict int
	for c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("got %d OK and %d Conflict; want one of each", ok, conflict)
	}
}

func TestSave_aRequestRunningDuringLogoutCannotBringTheSessionBack(t *testing.T) {
	for _, how := range []string{"/logout", "/everywhere?u=alice"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, false)
			b := e.browser(t)
			b.get("/login?u=alice")
			loaded, release := make(chan struct{}), make(chan struct{})
			e.hook = func(r *http.Request) {
				if r.Header.Get("X-Slow") != "" {
					close(loaded)
					<-release
				}
			}
			slow := b.clone()
			slow.header["X-Slow"] = "1"
			done := make(chan error, 1)
			go func() {
				_, _, err := slow.try("/put?k=late&v=write")
				done <- err
			}()
			<-loaded
			b.get(how)
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if keys := allKeys(t, e); len(keys) != 0 {
				t.Fatalf("store holds %v after logout; want nothing", keys)
			}
			if len(slow.last) != 1 || slow.last[0].MaxAge >= 0 {
				t.Fatalf("slow request's Set-Cookie: got %v; want the cookie expired", slow.last)
			}
		})
	}
}
