package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// What Kubernetes does to a StatefulSet's pods, done to processes: two of
// three lost at once, and a pod recreated under its name at a new address.

// httpGet returns node p's answer to GET path: its status and body.
func httpGet(p *proc, path string) (int, string, error) {
	resp, err := http.Get("http://" + p.http + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// TestCluster_twoOfThreeKilled_theLastRefusesUntilTheyRestart: with two of
// three nodes killed at once (two machines lost), the one left has no
// majority. It refuses sessions, never serving a stale one, and its
// /servingz and /readyz say "no quorum", while /healthz still answers: so
// under Kubernetes, whose readiness probe is /healthz
// (deploy/kubernetes), the StatefulSet recreates the lost pods. Restarted,
// empty, on their old addresses, they join it, and every session with a
// copy on the survivor is served again.
func TestCluster_twoOfThreeKilled_theLastRefusesUntilTheyRestart(t *testing.T) {
	ctx, c := threeNodes(t)
	cl := newRouted(t, c.procs[0].native)
	const n = 300
	if failed := loadSessions(ctx, cl, n, 10); failed > 0 {
		t.Fatalf("%d of %d sets failed", failed, n)
	}
	// The sessions the survivor holds a copy of, by the table they were
	// written under.
	ci := tables(ctx, t, c)[c.procs[0].name]
	if ci == nil {
		t.Fatalf("%s did not give its table", c.procs[0].name)
	}
	self := slices.IndexFunc(ci.Members, func(m protocol.MemberInfo) bool { return m.Name == c.procs[0].name })
	var kept []int
	for i := range n {
		if slices.Contains(ci.Owners[ring.Partition(sessionKey(i), ci.Partitions)], uint16(self)) {
			kept = append(kept, i)
		}
	}
	if len(kept) == 0 || len(kept) == n {
		t.Fatalf("the survivor holds %d of %d sessions; want some, not all", len(kept), n)
	}

	c.kill(1)
	c.kill(2)
	survivor := c.procs[0]
	eventuallyWithin(t, 20*time.Second, func() error {
		for _, path := range []string{"/servingz", "/readyz"} {
			code, body, err := httpGet(survivor, path)
			if err != nil || code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "no quorum") {
				return fmt.Errorf("%s: %d %q %v; want 503, no quorum", path, code, body, err)
			}
		}
		return nil
	})
	if code, body, err := httpGet(survivor, "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz on the survivor: %d %q %v; want 200", code, body, err)
	}
	alone := c.direct(survivor.native)
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := alone.Get(sctx, sessionKey(kept[0]))
	scancel()
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "no quorum") {
		t.Fatalf("a session read from the survivor alone: %v; want ErrUnavailable, no quorum, never the session", err)
	}

	for _, i := range []int{1, 2} {
		c.rejoin(i)
	}
	c.waitReady()
	for _, p := range c.procs {
		if code, body, err := httpGet(p, "/servingz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /servingz after the restarts: %d %q %v; want 200", p.name, code, body, err)
		}
	}
	for _, i := range kept {
		v, err := cl.Get(ctx, sessionKey(i))
		if err != nil || string(v) != sessionValue(i) {
			t.Fatalf("session %d, which the survivor held, after the restarts: %.40q, %v", i, v, err)
		}
	}
	t.Logf("%d of %d sessions had a copy on the survivor; all served after the restarts", len(kept), n)
}

// TestCluster_nodeBackUnderItsNameAtNewAddresses_losesNothing: as
// Kubernetes recreates a pod, a node comes back empty under its name but at
// new addresses, once after leaving gracefully and once after kill -9.
// Each time every session is read through every node (each forwarding to
// the node's new address), and the client that knew the old addresses
// reads and writes all of them too.
func TestCluster_nodeBackUnderItsNameAtNewAddresses_losesNothing(t *testing.T) {
	ctx, c := threeNodes(t)
	cl := newRouted(t, c.procs[0].native)
	const n = 3000
	if failed := loadSessions(ctx, cl, n, 20); failed > 0 {
		t.Fatalf("%d of %d sets failed", failed, n)
	}
	none := func(int) bool { return false }
	for _, step := range []struct {
		name string
		node int
		stop func(i int)
	}{
		{"SIGTERM", 2, func(i int) { c.stop(i, drainWait) }},
		{"kill -9", 1, c.kill},
	} {
		old := c.procs[step.node].native
		step.stop(step.node)
		start := time.Now()
		c.restartElsewhere(step.node)
		// Ready, on one table, and ready still on it. After kill -9 the
		// node comes back before the others declare its old address dead:
		// until then they refuse it as a conflicting address, so it loses
		// quorum (their tables are another member set), and it refuses
		// requests until they take it back and it has pulled its
		// partitions again.
		c.waitReady()
		waitTablesAgree(ctx, t, c, 3)
		c.waitReady()
		t.Logf("after %s, %s back at %s (was %s): every node ready and on one table %v later",
			step.name, c.procs[step.node].name, c.procs[step.node].native, old, time.Since(start).Round(time.Millisecond))
		for _, p := range c.procs {
			if errs := readAll(ctx, c.direct(p.native), n, none); len(errs) > 0 {
				t.Fatalf("after %s, through %s: %d of %d reads failed, first %v", step.name, p.name, len(errs), n, errs[0])
			}
		}
		if errs := readAll(ctx, cl, n, none); len(errs) > 0 {
			t.Fatalf("after %s, the first client: %d of %d reads failed, first %v", step.name, len(errs), n, errs[0])
		}
		if failed := loadSessions(ctx, cl, n, 20); failed > 0 {
			t.Fatalf("after %s, the first client: %d of %d sets failed", step.name, failed, n)
		}
	}
}
