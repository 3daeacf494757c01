package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cloakroom/cloakroom/ring"
)

// TestChurn_threeCopies_pauseABackup_writesDoNotWaitForIt: with
// --replicas 3 a write is acknowledged once one of its two backups has it.
// When one node is paused (SIGSTOP: its sockets stay open and nothing
// answers), writes of the partitions it is a backup of go on through
// another node at their usual pace, and none fails, until failure
// detection changes the tables: the primary does not wait the peer timeout
// (2 s) for the paused backup, and a write forwarded to the primary does
// not time out at the entry node meanwhile. Every acknowledged write is
// then read back through both running nodes.
func TestChurn_threeCopies_pauseABackup_writesDoNotWaitForIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cloakroomd processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startProcCluster(t, 3, "--replicas", "3", "--gossip-preset", "local")
	waitTablesAgree(ctx, t, c, 3)
	ci := tables(ctx, t, c)[c.procs[0].name]
	paused := c.procs[2].name
	// Three copies on three nodes: node 3 is a backup of every partition
	// it is not the primary of. Those are the writes that could wait for it.
	var keys []string
	for i := 0; len(keys) < 800; i++ {
		k := fmt.Sprint("coat:", i)
		if ci.Members[ci.Owners[ring.Partition(k, ci.Partitions)][0]].Name != paused {
			keys = append(keys, k)
		}
	}

	const (
		writers   = 8
		waitedFor = time.Second // half the peer timeout: far above a write's usual time
	)
	type write struct {
		start, end int64 // unix nanoseconds
		err        error
	}
	var (
		faulted atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex // guards log and last
		log     []write
		last    = map[string]string{} // the value of each key's last acknowledged write
	)
	for w := range writers {
		wg.Go(func() {
			// A read timeout longer than any wait, so a write that waits is
			// seen waiting, not failing at the client while it took effect.
			rc := goredis.NewClient(&goredis.Options{Addr: c.procs[0].resp, MaxRetries: -1, ReadTimeout: 20 * time.Second})
			defer rc.Close()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[(seq*writers+w)%len(keys)] // each key has one writer
				v := fmt.Sprint("coat-", seq)
				start := time.Now()
				err := rc.Set(ctx, k, v, time.Hour).Err()
				end := time.Now()
				mu.Lock()
				log = append(log, write{start.UnixNano(), end.UnixNano(), err})
				if err == nil {
					last[k] = v
				}
				mu.Unlock()
			}
		})
	}
	eventuallyWithin(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(log) < 1000 {
			return fmt.Errorf("%d writes answered", len(log))
		}
		return nil
	})
	faulted.Store(time.Now().UnixNano())
	c.pause(2)
	waitTablesAgree(ctx, t, c, 2)
	agreed := time.Now().UnixNano()
	time.Sleep(500 * time.Millisecond) // writes on the new tables too
	close(stop)
	wg.Wait()

	changed := min(firstTableChange(t, c, faulted.Load(), 2), agreed)
	var inWindow, slow, failed int
	var slowest time.Duration
	for _, w := range log {
		if w.start < faulted.Load() || w.start >= changed {
			continue // before the pause, or once the tables changed
		}
		// A write still running when the tables changed counts the time
		// it waited until then.
		d := time.Duration(min(w.end, changed) - w.start)
		slowest = max(slowest, d)
		if w.end < changed {
			inWindow++
		}
		switch {
		case w.err != nil && w.end < changed:
			if failed++; failed <= 5 {
				t.Errorf("a write started %v after the pause failed before the tables changed: %v", time.Duration(w.start-faulted.Load()), w.err)
			}
		case d >= waitedFor:
			if slow++; slow <= 5 {
				t.Errorf("a write started %v after the pause waited %v before the tables changed: it waited for the paused backup", time.Duration(w.start-faulted.Load()), d)
			}
		}
	}
	t.Logf("%d writes done in the %v between the pause and the first table change; %d failed, %d waited %v or more; slowest %v",
		inWindow, time.Duration(changed-faulted.Load()).Round(time.Millisecond), failed, slow, waitedFor, slowest.Round(time.Millisecond))
	if inWindow < writers {
		t.Fatalf("only %d writes were done between the pause and the first table change: the window was not tested", inWindow)
	}

	for _, p := range c.running() {
		rc := goredis.NewClient(&goredis.Options{Addr: p.resp})
		wrong := 0
		for k, want := range last {
			if got, err := rc.Get(ctx, k).Result(); got != want || err != nil {
				if wrong++; wrong <= 5 {
					t.Errorf("GET %s on %s = %q, %v; want %q, its last acknowledged value", k, p.name, got, err, want)
				}
			}
		}
		rc.Close()
	}
}
