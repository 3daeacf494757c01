package session_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client/session"
	"github.com/cloakroom/cloakroom/protocol"
)

// keyOf returns the single store key of user's sessions.
func keyOf(t *testing.T, e *env, user string) string {
	t.Helper()
	keys := allKeys(t, e)
	if len(keys) != 1 {
		t.Fatalf("store holds keys %v; want one (of %s)", keys, user)
	}
	return keys[0]
}

// allKeys lists every key in the node, partition by partition.
func allKeys(t *testing.T, e *env) []string {
	t.Helper()
	var keys []string
	for p := range e.node.Partitions() {
		var cursor uint64
		for {
			resp, err := e.cl.Do(context.Background(), &protocol.Request{Op: protocol.OpScan, Partition: int32(p), Cursor: cursor, Count: 1000})
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, resp.Keys...)
			if cursor = resp.Cursor; cursor == 0 {
				break
			}
		}
	}
	return keys
}

func TestIdleTimeout_slidesWithEachRequestAndEndsTheSession(t *testing.T) {
	e := newEnv(t, false, func(c *session.Config) { c.IdleTimeout = 30 * time.Minute })
	b := e.browser(t)
	b.get("/login?u=alice")
	for range 4 { // two hours of activity, 29 minutes apart
		e.clock.Advance(29 * time.Minute)
		if got := b.get("/whoami"); got != "alice" {
			t.Fatalf("active session after %v: got %q; want alice", 29*time.Minute, got)
		}
	}
	e.clock.Advance(30 * time.Minute)
	if got := b.get("/whoami"); got != "" {
		t.Fatalf("after 30m idle: got %q; want logged out", got)
	}
	if keys := allKeys(t, e); len(keys) != 0 {
		t.Fatalf("store still holds %v; want the expired session deleted", keys)
	}
}

func TestAbsoluteTimeout_endsAnActiveSession(t *testing.T) {
	e := newEnv(t, false, func(c *session.Config) { c.AbsoluteTimeout = 2 * time.Hour })
	b := e.browser(t)
	b.get("/login?u=alice")
	for range 7 {
		e.clock.Advance(15 * time.Minute)
		b.get("/whoami")
	}
	ttl, err := e.cl.TTL(t.Context(), keyOf(t, e, "alice"))
	if err != nil || ttl > 15*time.Minute+time.Second {
		t.Fatalf("store TTL 15m before the absolute end: got %v, %v; want at most 15m", ttl, err)
	}
	e.clock.Advance(15 * time.Minute)
	if got := b.get("/whoami"); got != "" {
		t.Fatalf("after the absolute timeout: got %q; want logged out", got)
	}
}

func TestStore_seesOnlyKeyedHashes(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser(t)
	b.get("/login?u=alice@example.com")
	cookie := b.cookies["session"]
	_, id, _ := strings.Cut(cookie, ".")
	for _, k := range allKeys(t, e) {
		if strings.Contains(k, id) || strings.Contains(k, "alice") {
			t.Fatalf("store key %q reveals the session ID or user", k)
		}
		v, _ := e.cl.Get(t.Context(), k)
		if strings.Contains(string(v), id) {
			t.Fatalf("stored value reveals the session ID")
		}
	}
}
