package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

func newRouted(t *testing.T, seeds ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addrs: seeds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads keys 0..n-1 concurrently through c and returns what failed.
func readAll(ctx context.Context, c *client.Client, n int, deleted func(i int) bool) []error {
	var mu sync.Mutex
	var errs []error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				got, err := c.Get(ctx, sessionKey(i))
				var bad error
				switch {
				case deleted(i) && !errors.Is(err, client.ErrNotFound):
					bad = fmt.Errorf("deleted %s readable: %q, %v", sessionKey(i), got, err)
				case !deleted(i) && (err != nil || string(got) != sessionValue(i)):
					bad = fmt.Errorf("%s = %q, %v", sessionKey(i), got, err)
				}
				if bad != nil {
					mu.Lock()
					errs = append(errs, bad)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// loadSessions writes sessions 0..n-1 through c from workers goroutines
// and returns how many Sets failed.
func loadSessions(ctx context.Context, c *client.Client, n, workers int) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := c.Set(ctx, sessionKey(i), []byte(sessionValue(i)), time.Hour); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

func sessionKey(i int) string   { return fmt.Sprintf("session:%08d", i) }
func sessionValue(i int) string { return fmt.Sprintf("coat-%d-%0180d", i, i) }

// tables asks every running node for its view of the cluster.
func tables(ctx context.Context, t *testing.T, c *procCluster) map[string]*protocol.ClusterInfo {
	out := map[string]*protocol.ClusterInfo{}
	for _, p := range c.running() {
		r, err := c.direct(p.native).Do(ctx, &protocol.Request{Op: protocol.OpTable})
		if err != nil {
			continue
		}
		if ci, err := protocol.NewDecoder().DecodeClusterInfo(r.Value); err == nil {
			out[p.name] = ci
		}
	}
	return out
}

func memberNames(ci *protocol.ClusterInfo) []string {
	var out []string
	for _, m := range ci.Members {
		out = append(out, m.Name)
	}
	return out
}

// waitTablesAgree waits until every running node reports the same table
// version over the same members, members of them.
func waitTablesAgree(ctx context.Context, t *testing.T, c *procCluster, members int) {
	t.Helper()
	start := time.Now()
	eventuallyWithin(t, 15*time.Second, func() error { return tablesAgree(ctx, t, c, members) })
	t.Logf("tables agree after %v", time.Since(start).Round(time.Millisecond))
}

// tablesAgree reports nil once every running node reports the same table
// version over the same members, members of them.
func tablesAgree(ctx context.Context, t *testing.T, c *procCluster, members int) error {
	ts := tables(ctx, t, c)
	if len(ts) != len(c.running()) {
		return fmt.Errorf("%d of %d nodes answered", len(ts), len(c.running()))
	}
	var first *protocol.ClusterInfo
	for name, ci := range ts {
		if len(ci.Members) != members {
			return fmt.Errorf("%s sees members %v; want %d", name, memberNames(ci), members)
		}
		if first == nil {
			first = ci
		} else if ci.Version != first.Version || !slices.Equal(memberNames(ci), memberNames(first)) {
			return fmt.Errorf("tables disagree: %s has %d %v; another has %d %v", name, ci.Version, memberNames(ci), first.Version, memberNames(first))
		}
	}
	return nil
}

// TestCluster_processes_killOneLosesNothing is issue 3's acceptance: three
// processes with two copies of each session; 20,000 sessions written through
// a client that knows one seed are readable through every node; after kill
// -9 of one node all are read at once with none missing and no failed read;
// deletes made while the node is down stay deleted after it comes back.
func TestCluster_processes_killOneLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startProcCluster(t, 3, "--replicas", "2")
	waitTablesAgree(ctx, t, c, 3)
	cl := newRouted(t, c.procs[0].native)
	const n = 20_000
	if failed := loadSessions(ctx, cl, n, 50); failed > 0 {
		t.Fatalf("%d of %d sets failed", failed, n)
	}
	none := func(int) bool { return false }
	for _, p := range c.procs {
		if errs := readAll(ctx, c.direct(p.native), n, none); len(errs) > 0 {
			t.Fatalf("through %s: %d reads failed, first: %v", p.name, len(errs), errs[0])
		}
	}

	c.kill(1)
	killed := time.Now()
	if errs := readAll(ctx, cl, n, none); len(errs) > 0 {
		t.Fatalf("right after kill -9: %d of %d reads failed, first: %v", len(errs), n, errs[0])
	}
	t.Logf("read all %d sessions in %v after kill -9", n, time.Since(killed).Round(time.Millisecond))
	waitTablesAgree(ctx, t, c, 2)
	t.Logf("failure detected and table agreed %v after the kill", time.Since(killed).Round(time.Millisecond))

	deleted := func(i int) bool { return i%4 == 0 }
	for i := 0; i < n; i += 4 {
		if _, err := cl.Delete(ctx, sessionKey(i)); err != nil {
			t.Fatalf("delete %s while a node is down: %v", sessionKey(i), err)
		}
	}
	c.restart(1)
	waitTablesAgree(ctx, t, c, 3)
	c.waitReady()
	for _, p := range c.procs {
		if errs := readAll(ctx, c.direct(p.native), n, deleted); len(errs) > 0 {
			t.Fatalf("after restart, through %s: %d reads wrong, first: %v", p.name, len(errs), errs[0])
		}
	}
	if errs := readAll(ctx, cl, n, deleted); len(errs) > 0 {
		t.Fatalf("after restart, routed: %d reads wrong, first: %v", len(errs), errs[0])
	}
}
