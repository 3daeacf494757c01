package session_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client/session"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/protocol"
)

func list(t *testing.T, b *browser) []session.SessionInfo {
	t.Helper()
	body := b.get("/list")
	var infos []session.SessionInfo
	if err := json.Unmarshal([]byte(body), &infos); err != nil {
		t.Fatalf("list: %v in %q", err, body)
	}
	return infos
}

// twoDevices logs alice in from a laptop and a phone, and bob from a third.
func twoDevices(t *testing.T, e *env) (laptop, phone, bob *browser) {
	laptop, phone, bob = e.browser(t), e.browser(t), e.browser(t)
	laptop.ua, phone.ua = "Laptop/1", "Phone/1"
	laptop.get("/login?u=alice")
	e.clock.Advance(time.Minute)
	phone.get("/login?u=alice")
	bob.get("/login?u=bob")
	return laptop, phone, bob
}

func TestListSessions_showsEveryDeviceOfTheUserAndMarksTheCurrentOne(t *testing.T) {
	e := newEnv(t, false)
	laptop, phone, _ := twoDevices(t, e)
	infos := list(t, laptop)
	if len(infos) != 2 {
		t.Fatalf("got %d sessions; want alice's 2: %+v", len(infos), infos)
	}
	if infos[0].UserAgent != "Phone/1" || infos[1].UserAgent != "Laptop/1" {
		t.Errorf("user agents, most recent first: got %q, %q; want Phone/1, Laptop/1", infos[0].UserAgent, infos[1].UserAgent)
	}
	if infos[0].Current || !infos[1].Current {
		t.Errorf("current: got %v, %v; want only the laptop's", infos[0].Current, infos[1].Current)
	}
	if infos[1].IPHint != "127.0.0.0/24" {
		t.Errorf("IP hint: got %q; want 127.0.0.0/24", infos[1].IPHint)
	}
	raw := laptop.get("/list")
	for _, c := range []string{laptop.cookies["session"], phone.cookies["session"]} {
		_, id, _ := strings.Cut(c, ".")
		if strings.Contains(raw, id) {
			t.Fatal("the session list reveals a session ID")
		}
	}
}

func TestListSessions_dropsExpiredSessions(t *testing.T) {
	e := newEnv(t, false)
	laptop, phone, _ := twoDevices(t, e)
	e.clock.Advance(29 * time.Minute) // the laptop's last request was 30 min ago
	if infos := list(t, phone); len(infos) != 1 || !infos[0].Current {
		t.Fatalf("got %+v; want only the phone", infos)
	}
	_ = laptop
}

func TestLogoutEverywhere_endsEverySessionOfTheUserAtOnce(t *testing.T) {
	e := newEnv(t, false)
	laptop, phone, bob := twoDevices(t, e)
	before := allKeys(t, e)
	laptop.get("/everywhere?u=alice")
	if len(laptop.last) != 1 || laptop.last[0].MaxAge >= 0 {
		t.Errorf("laptop Set-Cookie: got %v; want the cookie expired", laptop.last)
	}
	if got := phone.get("/whoami"); got != "" {
		t.Errorf("phone after log out everywhere: got %q; want logged out", got)
	}
	if got := laptop.get("/whoami"); got != "" {
		t.Errorf("laptop after log out everywhere: got %q; want logged out", got)
	}
	if got := bob.get("/whoami"); got != "bob" {
		t.Errorf("bob: got %q; want still bob", got)
	}
	after := allKeys(t, e)
	if len(after) != 1 {
		t.Errorf("store holds %v; want only bob's session", after)
	}
	// Each ended session's tombstone keeps the call's delete token, so
	// that an attempt sent again after a lost answer counts it.
	for _, k := range before {
		if slices.Contains(after, k) {
			continue
		}
		if x, ok := e.node.Store().Entry(k); !ok || !x.Tombstone || len(x.Value) != protocol.DeleteTokenLen {
			t.Errorf("entry of an ended session: %+v, %v; want a tombstone keeping a delete token", x, ok)
		}
	}
}

func TestRevokeSession_logsOutOneDevice(t *testing.T) {
	e := newEnv(t, false)
	laptop, phone, _ := twoDevices(t, e)
	var phoneHandle string
	for _, in := range list(t, laptop) {
		if !in.Current {
			phoneHandle = in.Handle
		}
	}
	ok, err := e.m.RevokeSession(t.Context(), "alice", phoneHandle)
	if !ok || err != nil {
		t.Fatalf("revoke: got %v, %v; want true, nil", ok, err)
	}
	if got := phone.get("/whoami"); got != "" {
		t.Errorf("phone: got %q; want logged out", got)
	}
	if got := laptop.get("/whoami"); got != "alice" {
		t.Errorf("laptop: got %q; want alice", got)
	}
	if ok, _ := e.m.RevokeSession(t.Context(), "bob", "not a handle"); ok {
		t.Error("revoking a malformed handle: got true; want false")
	}
}

func TestListSessions_usesThePartitionCountTheClusterReports(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Partitions = 64 })
	e := newEnvOn(t, n, false)
	laptop, phone, _ := twoDevices(t, e)
	if infos := list(t, laptop); len(infos) != 2 {
		t.Fatalf("got %d sessions on a 64-partition node; want 2", len(infos))
	}
	laptop.get("/everywhere?u=alice")
	if got := phone.get("/whoami"); got != "" {
		t.Fatalf("phone: got %q; want logged out", got)
	}
}

func TestListSessions_refusesAPartitionCountTheClusterDoesNotHave(t *testing.T) {
	e := newEnv(t, false, func(c *session.Config) { c.Partitions = 100 })
	if _, err := e.m.ListSessions(t.Context(), "alice"); !errors.Is(err, session.ErrPartitions) {
		t.Fatalf("got %v; want ErrPartitions", err)
	}
	if _, err := e.m.LogoutEverywhere(t.Context(), "alice"); !errors.Is(err, session.ErrPartitions) {
		t.Fatalf("got %v; want ErrPartitions", err)
	}
}
