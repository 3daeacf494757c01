package integration

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
)

// A node that vanishes from the network without closing anything (a cable
// pulled, a host frozen) leaves the Go client with connections that never
// answer and dials that never complete. Reads of the sessions it was
// primary for must still be answered, by their backup, from the moment of
// the cut: within one attempt's timeout and a dial's, not only once the
// cluster has noticed (about 5 s).
func TestPartition_readsOfABlackHoledPrimaryAreServedByItsBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("three cloakroomd processes in network namespaces")
	}
	const isolated = 2 // n3
	lab := newNetLab(t, 3)
	lab.start(buildCloakroomd(t), "--replicas", "2", "--gossip-preset", "local")
	majority := lab.nodes[:isolated]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	labWait(ctx, t, "three nodes agree", 90*time.Second, func() error { return labAgree(ctx, lab.nodes) })

	var seeds []string
	for _, nd := range majority {
		seeds = append(seeds, nd.native())
	}
	cfg := client.Config{Addrs: seeds, DialTimeout: time.Second, AttemptTimeout: 2 * time.Second}
	// A read may wait out an attempt on the primary (half an attempt
	// timeout, or a dial to it) before its backup answers, and when the
	// table changes it may refresh it; it must not wait for the cluster to
	// notice.
	longest := cfg.AttemptTimeout + cfg.DialTimeout + time.Second
	routed, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routed.Close() })
	const keys = 300
	value := func(i int) []byte { return fmt.Appendf(nil, "session %d", i) }
	for i := range keys {
		if err := routed.Set(ctx, fmt.Sprintf("bh:%d", i), value(i), time.Hour); err != nil {
			t.Fatalf("seed bh:%d: %v", i, err)
		}
	}
	// Every key once, so that the client holds a connection to every node.
	for i := range keys {
		if _, err := routed.Get(ctx, fmt.Sprintf("bh:%d", i)); err != nil {
			t.Fatalf("read bh:%d before the cut: %v", i, err)
		}
	}

	lab.isolate(isolated)
	cutAt := time.Now()
	// A client made after the cut has no connection to n3: its reads
	// there wait on dials that never complete.
	fresh, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	var reads, slow, slowest atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopReaders := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopReaders) // if the test fails before it stops them
	for r := range 4 {
		c := []*client.Client{routed, fresh}[r%2]
		wg.Go(func() {
			for i := r; ; i = (i + 4) % keys {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("bh:%d", i)
				start := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
				got, err := c.Get(rctx, key)
				rcancel()
				reads.Add(1)
				took := time.Since(start)
				if took > time.Second {
					slow.Add(1)
				}
				for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
				}
				if err != nil || !bytes.Equal(got, value(i)) {
					mu.Lock()
					failures = append(failures[:min(len(failures), 1000)], fmt.Sprintf("%s at +%v: %q, %v", key,
						time.Since(cutAt).Round(time.Millisecond), got, err))
					mu.Unlock()
				}
			}
		})
	}
	detect := labWait(ctx, t, "the majority drops n3", time.Minute, func() error { return labMembersAre(ctx, majority, 2) })
	time.Sleep(2 * time.Second) // and reads go on once the tables have moved
	stopReaders()

	t.Logf("%d reads in the %v after the cut (the majority dropped n3 after %v); %d took over 1s, the slowest %v",
		reads.Load(), time.Since(cutAt).Round(time.Millisecond), detect.Round(time.Millisecond), slow.Load(),
		time.Duration(slowest.Load()).Round(time.Millisecond))
	if d := time.Duration(slowest.Load()); d > longest {
		t.Errorf("a read took %v; want at most %v", d, longest)
	}
	if len(failures) > 0 {
		t.Errorf("%d reads failed or were wrong, the first: %v", len(failures), failures[:min(len(failures), 10)])
	}
	if reads.Load() < 2*keys {
		t.Errorf("only %d reads of %d keys in the window; want at least twice as many", reads.Load(), keys)
	}
}
