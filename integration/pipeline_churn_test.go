package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestChurn_pipelinedRESPWritesThroughOneNode_killOne_losesNothing: Redis
// clients that do not route by key pipeline SETs of keys spread over the
// cluster through one node, which sends each primary its share together
// (Node.DoAll). A node is killed -9 meanwhile. Every SET answered OK must
// be readable afterwards, through every node, with its value; SETs that
// failed (TRYAGAIN while the cluster noticed the crash) are the client's
// to retry.
func TestChurn_pipelinedRESPWritesThroughOneNode_killOne_losesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cloakroomd processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startProcCluster(t, 3, "--replicas", "2", "--gossip-preset", "local")
	waitTablesAgree(ctx, t, c, 3)

	const writers, depth = 4, 16
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // key → value answered OK
		failed   atomic.Int64          // SETs answered with an error
		pipes    atomic.Int64          // pipelines sent
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		entry    = c.procs[0].resp // never killed: it relays what it does not own
		pipeErrs = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			rc := goredis.NewClient(&goredis.Options{Addr: entry, MaxRetries: -1})
			defer rc.Close()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				pipe := rc.Pipeline()
				cmds := make([]*goredis.StatusCmd, depth)
				for i := range cmds {
					key := fmt.Sprintf("pipe:%d:%d:%d", w, seq, i)
					cmds[i] = pipe.Set(ctx, key, key+"="+strconv.Itoa(seq), time.Hour)
				}
				if _, err := pipe.Exec(ctx); err != nil && !isCommandError(cmds) {
					pipeErrs <- fmt.Errorf("writer %d pipeline %d: %w", w, seq, err)
					return
				}
				pipes.Add(1)
				mu.Lock()
				for _, cmd := range cmds {
					if cmd.Err() == nil && cmd.Val() == "OK" {
						key := cmd.Args()[1].(string)
						acked[key] = fmt.Sprint(cmd.Args()[2])
					} else {
						failed.Add(1)
					}
				}
				mu.Unlock()
			}
		})
	}
	progress := func(n int64) {
		from := pipes.Load()
		eventuallyWithin(t, 30*time.Second, func() error {
			select {
			case err := <-pipeErrs:
				t.Fatal(err)
			default:
			}
			if got := pipes.Load() - from; got < n {
				return fmt.Errorf("%d of %d pipelines answered", got, n)
			}
			return nil
		})
	}
	progress(200)
	c.kill(2)
	killed := time.Now()
	waitTablesAgree(ctx, t, c, 2)
	progress(200)
	close(stop)
	wg.Wait()
	t.Logf("tables agree on 2 members %v after kill -9", time.Since(killed).Round(time.Millisecond))
	t.Logf("fully replicated again %v after kill -9", waitFullyReplicated(t, c, killed))

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d SETs answered OK, %d answered with an error, in %d pipelines", len(acked), failed.Load(), pipes.Load())
	for _, p := range c.running() {
		rc := goredis.NewClient(&goredis.Options{Addr: p.resp})
		lost := 0
		for key, want := range acked {
			got, err := rc.Get(ctx, key).Result()
			if err != nil || got != want {
				if lost++; lost <= 5 {
					t.Errorf("via %s: GET %s = %q, %v; want %q (acknowledged)", p.name, key, got, err, want)
				}
			}
		}
		rc.Close()
		if lost > 0 {
			t.Errorf("via %s: %d of %d acknowledged SETs lost", p.name, lost, len(acked))
		}
	}
}

// isCommandError reports whether a pipeline's error is only some of its
// commands failing (each reports its own), not the connection.
func isCommandError(cmds []*goredis.StatusCmd) bool {
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			return true
		}
		if _, ok := cmd.Err().(goredis.Error); ok {
			return true
		}
	}
	return false
}
