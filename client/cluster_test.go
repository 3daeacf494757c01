package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
)

func TestClient_cluster_routesLearnsAndFailsOver(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := newClient(t, c.Node(0).Addr()) // one seed is enough
	const n = 3000
	for i := range n {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte(fmt.Sprint("v", i)), time.Hour); err != nil {
			t.Fatalf("set s%d: %v", i, err)
		}
	}
	// Every node holds some primaries, so the client used all of them.
	for _, nd := range c.Running() {
		if nd.Store().Stats().Keys == 0 {
			t.Fatalf("%s stores nothing: the client did not route to it", nd.Name())
		}
	}
	c.Crash(1)
	// Read everything at once, before the cluster has noticed the crash:
	// reads of the dead node's partitions go to their backups.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := cl.Get(ctx, fmt.Sprint("s", i))
			if err != nil || string(got) != fmt.Sprint("v", i) {
				errs <- fmt.Errorf("get s%d right after the crash = %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Writes resume once a backup is promoted, within the retry budget.
	for i := range 200 {
		if err := cl.Set(ctx, fmt.Sprint("after", i), []byte("x"), time.Hour); err != nil {
			t.Fatalf("set after crash: %v", err)
		}
	}
	c.WaitAgreed(t, 2)
	if got, err := cl.Delete(ctx, "s1", "s2", "s3", "s4", "missing"); got != 4 || err != nil {
		t.Fatalf("delete across nodes = %d, %v; want 4", got, err)
	}
	if _, err := cl.Get(ctx, "s1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted s1: %v; want ErrNotFound", err)
	}
}

// TestClient_threeCopies_readsFailOverBeforeTheCrashIsNoticed: with three
// copies too, reads of a crashed primary's sessions go to a backup (which
// fetches the key from the other backup first) and are answered before
// failure detection changes the table, not retried until it has.
func TestClient_threeCopies_readsFailOverBeforeTheCrashIsNoticed(t *testing.T) {
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.GossipPreset, cfg.Replicas = "lan", 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := newClient(t, c.Node(0).Addr())
	const n = 300
	for i := range n {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte(fmt.Sprint("v", i)), time.Hour); err != nil {
			t.Fatalf("set s%d: %v", i, err)
		}
	}
	table := c.Node(0).TableVersion()
	c.Crash(1)
	for i := range n {
		if got, err := cl.Get(ctx, fmt.Sprint("s", i)); err != nil || string(got) != fmt.Sprint("v", i) {
			t.Fatalf("get s%d right after the crash = %q, %v", i, got, err)
		}
	}
	for _, nd := range c.Running() {
		if got := nd.TableVersion(); got != table {
			t.Fatalf("%s's table moved on (%d → %d) before the reads were answered: they waited for failure detection", nd.Name(), table, got)
		}
	}
}
