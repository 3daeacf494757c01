package integration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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
// be readable afterwards, through every node, with its value. None fails:
// a SET the crash stops is tried again by the entry node until the
// cluster has noticed it (--resp-retry-window, 10 s), within the client's
// read timeout (set above the window: go-redis's default is 3 s).
func TestChurn_pipelinedRESPWritesThroughOneNode_killOne_losesNothing(t *testing.T) {
	ctx, c := threeNodes(t)

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
			rc := goredis.NewClient(&goredis.Options{Addr: entry, MaxRetries: -1, ReadTimeout: 20 * time.Second})
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
	m, err := metricsOf(c.procs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d SETs answered OK, %d answered with an error, in %d pipelines; %v attempts made again by the entry node",
		len(acked), failed.Load(), pipes.Load(), m["cloakroom_resp_retries_total"])
	if failed.Load() > 0 {
		t.Errorf("%d SETs answered with an error; want none, each tried again until the cluster noticed the crash", failed.Load())
	}
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

// TestChurn_RESPReadsThroughOneNode_killOne_noneFail: a Redis client that
// does not route by key reads sessions through one node, one GET at a time,
// in pipelines and with MGET, while the primary of a third of them is killed -9.
// Until the tables change, the entry node asks the backup instead (the
// primary refuses the connection), so no read fails and each sees the
// value, or the delete, acknowledged before the crash. While the tables
// change (milliseconds) a read may answer TRYAGAIN, and never a wrong
// value.
func TestChurn_RESPReadsThroughOneNode_killOne_noneFail(t *testing.T) {
	readsThroughFault(t, "killed -9", func(c *procCluster) { c.kill(2) })
}

// TestChurn_RESPReadsThroughOneNode_pauseOne_noneFail: as above, but the
// node is paused (SIGSTOP): its sockets stay open and nothing answers. A
// read waits for the primary for half the peer timeout (1 s) before the
// backup answers, within a Redis client's read timeout (go-redis: 3 s),
// until the entry node finds the primary silent (no heartbeat answered for
// 1.5 s); from then on, until the tables change, no read waits for it.
// (While they change, a request may wait for the paused node once more:
// keys are fetched from every member while the tables differ.)
func TestChurn_RESPReadsThroughOneNode_pauseOne_noneFail(t *testing.T) {
	readsThroughFault(t, "paused", func(c *procCluster) { c.pause(2) })
}

// TestChurn_RESPReadsThroughOneNode_threeCopies_killOne_noneFail: as
// above, with three copies of each session: the backup that answers for
// the killed primary fetches each key from the other backup first.
func TestChurn_RESPReadsThroughOneNode_threeCopies_killOne_noneFail(t *testing.T) {
	readsThroughFault(t, "killed -9", func(c *procCluster) { c.kill(2) }, "--replicas", "3")
}

// readsThroughFault runs the tests above: fault takes node 3 of three
// out while readers read written and deleted sessions through node 1.
// extra flags go to every node.
func readsThroughFault(t *testing.T, what string, fault func(c *procCluster), extra ...string) {
	ctx, c := threeNodes(t, extra...)
	entry := c.procs[0].resp // never taken out

	const (
		sessions  = 3000
		waitedFor = time.Second // half the peer timeout: what a read waits for a silent primary
	)
	want := func(i int) (string, error) { // every third session logged out
		if i%3 == 0 {
			return "", goredis.Nil
		}
		return fmt.Sprint("coat-", i), nil
	}
	rc := goredis.NewClient(&goredis.Options{Addr: entry})
	defer rc.Close()
	for i := range sessions {
		key := fmt.Sprint("sess:", i)
		if err := rc.Set(ctx, key, fmt.Sprint("coat-", i), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := want(i); err != nil {
			if n, err := rc.Del(ctx, key).Result(); n != 1 || err != nil {
				t.Fatalf("DEL %s = %d, %v", key, n, err)
			}
		}
	}

	var (
		faulted, agreed atomic.Int64 // unix nanoseconds
		silentAt        atomic.Int64 // when the entry node reported node 3 silent
		inWindow        atomic.Int64 // reads answered between faulted and agreed
		reads, bad      atomic.Int64
		slowest         atomic.Int64 // nanoseconds, one read or pipeline
		changedAt       atomic.Int64 // when a node first changed its table after the fault
		mu              sync.Mutex   // guards slow and retry
		slow            [][2]int64   // start and end of reads or pipelines that took waitedFor
		retry           []int64      // when reads answered TRYAGAIN, to be judged against changedAt
		stop            = make(chan struct{})
		wg              sync.WaitGroup
	)
	check := func(i int, got string, err error) {
		reads.Add(1)
		now := time.Now().UnixNano()
		if f, a := faulted.Load(), agreed.Load(); f != 0 && now > f && (a == 0 || now < a) {
			inWindow.Add(1)
		}
		switch wantVal, wantErr := want(i); {
		case got == wantVal && err == wantErr:
		case err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN"):
			mu.Lock() // judged at the end, against when the tables began to change
			retry = append(retry, now)
			mu.Unlock()
		default:
			if bad.Add(1) <= 5 {
				t.Errorf("GET sess:%d = %q, %v; want %q, %v", i, got, err, wantVal, wantErr)
			}
		}
	}
	reader := func(r, depth int, mget bool) { // depth 1: GET; else a pipeline of GETs, or MGET
		rc := goredis.NewClient(&goredis.Options{Addr: entry, MaxRetries: -1})
		defer rc.Close()
		for i := r * 100; ; i += depth {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			switch {
			case depth == 1:
				got, err := rc.Get(ctx, fmt.Sprint("sess:", i%sessions)).Result()
				check(i%sessions, got, err)
			case mget:
				keys := make([]string, depth)
				for j := range keys {
					keys[j] = fmt.Sprint("sess:", (i+j)%sessions)
				}
				vals, err := rc.MGet(ctx, keys...).Result()
				for j := range keys {
					switch {
					case err != nil:
						check((i+j)%sessions, "", err)
					case vals[j] == nil:
						check((i+j)%sessions, "", goredis.Nil)
					default:
						check((i+j)%sessions, fmt.Sprint(vals[j]), nil)
					}
				}
			default:
				pipe := rc.Pipeline()
				cmds := make([]*goredis.StringCmd, depth)
				for j := range cmds {
					cmds[j] = pipe.Get(ctx, fmt.Sprint("sess:", (i+j)%sessions))
				}
				_, _ = pipe.Exec(ctx) // each command reports its own error
				for j, cmd := range cmds {
					got, err := cmd.Result()
					check((i+j)%sessions, got, err)
				}
			}
			d := time.Since(start)
			if int64(d) > slowest.Load() {
				slowest.Store(int64(d)) // racy, but a near-max is enough
			}
			if d >= waitedFor {
				mu.Lock()
				slow = append(slow, [2]int64{start.UnixNano(), start.Add(d).UnixNano()})
				mu.Unlock()
			}
		}
	}
	// Enough readers that the paused case, a second per read of the
	// paused node's keys, still reads many sessions in the window.
	for r := range 16 {
		wg.Go(func() { reader(r, 1, false) })
	}
	wg.Go(func() { reader(16, 16, false) })
	wg.Go(func() { reader(17, 16, false) })
	wg.Go(func() { reader(18, 16, true) })
	eventuallyWithin(t, 30*time.Second, func() error {
		if n := reads.Load(); n < 2000 {
			return fmt.Errorf("%d reads answered", n)
		}
		return nil
	})
	faulted.Store(time.Now().UnixNano())
	fault(c)
	eventuallyWithin(t, 15*time.Second, func() error {
		m, err := metricsOf(c.procs[0])
		if err != nil {
			return err
		}
		if m["cloakroom_silent_members"] != 1 {
			return fmt.Errorf("node 1 reports %v silent members; want 1", m["cloakroom_silent_members"])
		}
		return nil
	})
	silentAt.Store(time.Now().UnixNano())
	waitTablesAgree(ctx, t, c, 2)
	agreed.Store(time.Now().UnixNano())
	from := reads.Load()
	eventuallyWithin(t, 30*time.Second, func() error {
		if n := reads.Load() - from; n < 2000 {
			return fmt.Errorf("%d reads answered since the tables agreed", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	changedAt.Store(min(firstTableChange(t, c, faulted.Load(), 2), agreed.Load()))
	// Before the first table change, no read or pipeline waits for node 3
	// more than once (half the peer timeout; it is skipped after that), and
	// from node 1 finding it silent on, not at all. One still running when
	// the tables changed counts the time it waited until then.
	for _, r := range slow {
		if d := time.Duration(min(r[1], changedAt.Load()) - r[0]); r[0] < changedAt.Load() && d >= 2*waitedFor {
			t.Errorf("a read or pipeline started %v after the fault waited %v before the tables changed: it waited for node 3 more than once",
				time.Duration(r[0]-faulted.Load()), d)
		}
	}
	if gap := time.Duration(changedAt.Load() - silentAt.Load()); gap < time.Second {
		t.Logf("only %v between node 3 reported silent and the first table change: reads in it not checked for waiting", gap)
	} else {
		waited := 0
		for _, r := range slow {
			if r[0] > silentAt.Load() && r[1] < changedAt.Load() {
				if waited++; waited <= 5 {
					t.Errorf("a read started %v after node 3 was reported silent, and done before the tables changed, took %v: it waited for node 3",
						time.Duration(r[0]-silentAt.Load()), time.Duration(r[1]-r[0]))
				}
			}
		}
	}
	// Before the first table change every read must succeed. While the
	// tables change, a read may answer TRYAGAIN (the nodes' tables differ
	// and cannot tell whose is newer; keys are fetched from every member).
	early := 0
	for _, at := range retry {
		if at < changedAt.Load() {
			early++
		}
	}
	if early > 0 {
		t.Errorf("%d reads answered TRYAGAIN before any table changed", early)
	}
	window := time.Duration(agreed.Load() - faulted.Load())
	t.Logf("node 3 %s: %d reads, %d of them in the %v before the tables agreed; %d wrong or failed otherwise, %d TRYAGAIN while the tables changed; slowest read or pipeline %v; silent after %v, first table change after %v",
		what, reads.Load(), inWindow.Load(), window.Round(time.Millisecond), bad.Load(), len(retry)-early, time.Duration(slowest.Load()).Round(time.Millisecond),
		time.Duration(silentAt.Load()-faulted.Load()).Round(time.Millisecond), time.Duration(changedAt.Load()-faulted.Load()).Round(time.Millisecond))
	if inWindow.Load() == 0 {
		t.Fatal("no read was answered between the fault and the tables agreeing: the window was not tested")
	}
	if bad.Load() > 0 {
		t.Errorf("%d of %d reads failed or saw the wrong value, other than TRYAGAIN while the tables changed", bad.Load(), reads.Load())
	}
}

// firstTableChange returns when the first running node of c logged a
// partition table of members members after since (unix nanoseconds), from
// the nodes' own log lines (polling the nodes would see it late), or
// math.MaxInt64 if none did.
func firstTableChange(t *testing.T, c *procCluster, since int64, members int) int64 {
	t.Helper()
	first := int64(0)
	for _, p := range c.running() {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if !strings.Contains(line, `msg="partition table changed"`) || !strings.Contains(line, fmt.Sprintf(" members=%d ", members)) {
				continue
			}
			stamp, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, stamp)
			if err != nil {
				t.Fatalf("%s: log line without a time: %q", p.name, line)
			}
			if ns := at.UnixNano(); ns > since && (first == 0 || ns < first) {
				first = ns
			}
		}
	}
	if first == 0 {
		return math.MaxInt64 // none logged (yet): the caller bounds it
	}
	return first
}
