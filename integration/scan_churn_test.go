package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	goredis "github.com/redis/go-redis/v9"
)

// scanPager pages one SCAN MATCH pattern COUNT count through whichever
// node each call names, keeping every key returned and how often.
type scanPager struct {
	t       *testing.T
	ctx     context.Context
	pattern string
	count   int64
	cursor  uint64
	pages   int
	done    bool           // the cursor came back 0
	seen    map[string]int // key → times returned
}

// page asks via for the next page; a SCAN that fails (after the node's and
// go-redis's retries) fails the test.
func (s *scanPager) page(via *proc, rdb *goredis.Client) {
	s.t.Helper()
	if s.done {
		return
	}
	keys, next, err := rdb.Scan(s.ctx, s.cursor, s.pattern, s.count).Result()
	if err != nil {
		s.t.Fatalf("SCAN %d (page %d) through %s: %v", s.cursor, s.pages+1, via.name, err)
	}
	s.pages++
	for _, k := range keys {
		s.seen[k]++
	}
	s.cursor, s.done = next, next == 0
}

// pageUntil pages through via until n distinct keys have been seen or the
// scan ends.
func (s *scanPager) pageUntil(n int, via *proc, rdb *goredis.Client) {
	s.t.Helper()
	for !s.done && len(s.seen) < n {
		s.page(via, rdb)
	}
}

// pageWhile waits until began reports nil (the change has reached the
// nodes), then pages through each of vias in turn, at most one page every
// 10 ms, as a client working through the keys it gets, until settled
// reports nil (checked at most every 50 ms). Once n distinct keys have
// been seen it stops paging, so that some of the scan is left for after,
// and waits for settled. It returns how many pages it made before the
// change settled.
func (s *scanPager) pageWhile(began, settled func() error, n int, vias []*proc, rdbs []*goredis.Client) int {
	s.t.Helper()
	eventuallyWithin(s.t, 15*time.Second, began)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	pages, last := 0, time.Time{}
	for !s.done && len(s.seen) < n {
		if time.Since(last) >= 50*time.Millisecond {
			if settled() == nil {
				return pages
			}
			last = time.Now()
		}
		i := pages % len(vias)
		s.page(vias[i], rdbs[i])
		pages++
		<-tick.C
	}
	eventuallyWithin(s.t, drainWait, settled)
	return pages
}

// sees returns a condition that holds once p's partition table has
// members members: a membership change has reached p.
func sees(ctx context.Context, c *procCluster, p *proc, members int) func() error {
	cl := c.direct(p.native)
	return func() error {
		r, err := cl.Do(ctx, &protocol.Request{Op: protocol.OpTable})
		if err != nil {
			return fmt.Errorf("%s's table: %v", p.name, err)
		}
		ci, err := protocol.NewDecoder().DecodeClusterInfo(r.Value)
		if err != nil {
			return fmt.Errorf("%s's table: %v", p.name, err)
		}
		if len(ci.Members) != members {
			return fmt.Errorf("%s's table has members %v; want %d", p.name, memberNames(ci), members)
		}
		return nil
	}
}

// respClient returns a go-redis client of p's RESP listener, closed when
// the test ends. Its read timeout covers the node's retry window.
func respClient(t *testing.T, p *proc) *goredis.Client {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: p.resp, ReadTimeout: 15 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestRESP_Scan_cursorSurvivesJoinAndLeave is issue 5's "SCAN with
// MATCH/COUNT (cluster-wide, a cursor that survives membership changes
// without skipping live keys)". Three nodes with two copies of each key
// hold 2,000 keys, 200 of them deleted, and 200 keys the pattern does not
// match. One SCAN MATCH scan:* COUNT 10 pages through the second node;
// after 600 keys a fourth node joins, and paging goes on through the
// second node while the cluster moves partitions to it and after; after
// 1,300 keys the third node leaves (SIGTERM), and paging goes on through
// the second and the new node in turn while it hands its partitions off,
// then through the new node alone. The cursor names a partition and a
// position in it (node/resp/generic.go), so any node may continue it.
// Every live key is returned, a deleted or unmatched one never; a key
// returned twice is allowed, as Redis allows.
//
// --transfer-rate 64KiB makes each move take a second or so, and pages
// are paced, so that they land on partitions still arriving.
func TestRESP_Scan_cursorSurvivesJoinAndLeave(t *testing.T) {
	ctx, c := threeNodes(t, "--transfer-rate", "64KiB")
	n2 := c.procs[1]
	rdb2 := respClient(t, n2)

	const n = 2000
	live := map[string]bool{}
	value := strings.Repeat("v", 100)
	if _, err := rdb2.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range n {
			k := fmt.Sprintf("scan:%05d", i)
			p.Set(ctx, k, value, time.Hour)
			live[k] = true
		}
		for i := range 200 {
			p.Set(ctx, fmt.Sprintf("other:%05d", i), value, time.Hour)
		}
		return nil
	}); err != nil {
		t.Fatalf("write %d keys through %s: %v", n+200, n2.name, err)
	}
	for i := 0; i < n; i += 10 {
		k := fmt.Sprintf("scan:%05d", i)
		if err := rdb2.Del(ctx, k).Err(); err != nil {
			t.Fatalf("DEL %s: %v", k, err)
		}
		delete(live, k)
	}

	s := &scanPager{t: t, ctx: ctx, pattern: "scan:*", count: 10, seen: map[string]int{}}
	s.pageUntil(600, n2, rdb2)
	if s.done {
		t.Fatalf("the scan ended after %d pages, before the join: the test proves nothing", s.pages)
	}

	joined := time.Now()
	n4 := c.procs[c.add()]
	rdb4 := respClient(t, n4)
	during := s.pageWhile(sees(ctx, c, n2, 4), func() error {
		if err := tablesAgree(ctx, t, c, 4); err != nil {
			return err
		}
		return c.fullyReplicated()
	}, 1200, []*proc{n2}, []*goredis.Client{rdb2})
	t.Logf("%s joined: %d pages through %s until every node was ready, %v", n4.name, during, n2.name, time.Since(joined).Round(time.Millisecond))
	if during == 0 {
		t.Fatal("no page was asked for while the fourth node joined: the test proves nothing")
	}
	s.pageUntil(1300, n2, rdb2)
	if s.done {
		t.Fatalf("the scan ended after %d pages, before the leave: the test proves nothing", s.pages)
	}

	left := time.Now()
	n3 := c.procs[2]
	if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", n3.name, err)
	}
	during = s.pageWhile(sees(ctx, c, n2, 3), func() error {
		select {
		case <-n3.exited:
		default:
			return fmt.Errorf("%s is still handing off its partitions", n3.name)
		}
		if err := tablesAgree(ctx, t, c, 3); err != nil {
			return err
		}
		return c.fullyReplicated()
	}, 1800, []*proc{n2, n4}, []*goredis.Client{rdb2, rdb4})
	t.Logf("%s left: %d pages through %s and %s in turn until every node was ready, %v", n3.name, during, n2.name, n4.name, time.Since(left).Round(time.Millisecond))
	if during == 0 {
		t.Fatal("no page was asked for while the third node left: the test proves nothing")
	}
	s.pageUntil(n+1, n4, rdb4)
	if !s.done {
		t.Fatalf("the scan has not ended after %d pages and %d keys", s.pages, len(s.seen))
	}

	var missing, wrong []string
	dups := 0
	for k := range live {
		if s.seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, times := range s.seen {
		if !live[k] {
			wrong = append(wrong, k)
		}
		dups += times - 1
	}
	t.Logf("%d pages, %d keys, %d returned again", s.pages, len(s.seen), dups)
	if len(missing) > 0 {
		t.Errorf("the scan skipped %d of %d live keys, e.g. %v", len(missing), len(live), missing[:min(len(missing), 10)])
	}
	if len(wrong) > 0 {
		t.Errorf("the scan returned %d keys that were deleted before it began or do not match scan:*, e.g. %v", len(wrong), wrong[:min(len(wrong), 10)])
	}
}
