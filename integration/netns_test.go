package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/cloakroom/cloakroom/client"
)

// TestPartition_isolatedNodeAcksNothing_healLosesAndResurrectsNothing is
// acceptance test 5 of issue 4: five nodes, each in its own network
// namespace; n5 is cut off with iptables while the workload (writers and
// readers) runs through the routed client on the majority side. An
// application on n5's side of the split keeps calling n5 directly over its
// client link: n5 must acknowledge none of its writes and deletes, and
// must not serve sessions the majority deleted. The majority keeps working
// and deletes sessions during the split. After healing, every acknowledged
// write is readable with its latest value and every acknowledged delete
// stays deleted, read through every node.
func TestPartition_isolatedNodeAcksNothing_healLosesAndResurrectsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("five cloakroomd processes in network namespaces")
	}
	const isolated = 4 // n5
	lab := newNetLab(t, 5)
	lab.addClientLink(isolated)
	lab.start(buildCloakroomd(t), "--replicas", "2", "--gossip-preset", "local")
	all, majority, iso := lab.nodes, lab.nodes[:isolated], lab.nodes[isolated]
	// One deadline for the whole test, well inside go test's -timeout, so
	// that a hung phase fails with its evidence and the cleanups run.
	deadline := time.Now().Add(6 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
		deadline = d.Add(-time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	labWait(ctx, t, "five nodes agree", 90*time.Second, func() error { return labAgree(ctx, all) })

	var seeds []string
	for _, nd := range majority {
		seeds = append(seeds, nd.native())
	}
	routed, err := client.New(client.Config{Addrs: seeds, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routed.Close() })
	led := &splitLedger{keys: map[string]*splitHistory{}}
	doomed := led.seed(ctx, t, routed, "split:doomed", 150) // deleted by the majority during the split
	isoDel := led.seed(ctx, t, routed, "split:isodel", 60)  // n5's side tries to delete them

	w := startWorkload(t, routed, workloadOpts{writers: 4, readers: 2, perSecond: 100})
	t.Cleanup(func() {
		if t.Failed() {
			w.logAnomalies(t)
		}
	})
	writes := func() int64 { return w.sets.Load() + w.deletes.Load() }
	labWait(ctx, t, "writes before the cut", time.Minute, ackedMore(writes, 300))
	atCut := w.summary()

	lab.isolate(isolated)
	cutAt := time.Now()
	probe := &isoProbe{ledger: led, counts: probeCounts{cutAt: cutAt}, deleted: map[string]time.Time{}}
	stopProbe, probeDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(probeDone); probe.run(ctx, iso.direct, isoDel, doomed, stopProbe) }()
	var stopOnce sync.Once
	endProbe := func() { stopOnce.Do(func() { close(stopProbe) }); <-probeDone }
	t.Cleanup(func() {
		endProbe()
		if p := probe.snapshot(); t.Failed() {
			t.Logf("at the end: n5 acknowledged %d sets and %d deletes of %d and %d; no quorum after %s; errors: %s; workload: %s",
				p.setAcked, p.delAcked, p.sets, p.dels, p.detect(), strings.Join(p.samples, " | "), w.summary())
		}
	})

	t.Cleanup(func() { logClientStacks(t) }) // runs first: calls still in flight

	detect := labWait(ctx, t, "the majority drops n5", time.Minute, func() error { return labMembersAre(ctx, majority, 4) })
	rereplicate := labWait(ctx, t, "the majority is fully replicated", 2*time.Minute, func() error { return labAgree(ctx, majority) })
	var doomedFailed []string
	phaseEnd := time.Now().Add(time.Minute) // for all the deletes
	for _, k := range doomed {
		if time.Now().After(phaseEnd) {
			doomedFailed = append(doomedFailed, k+": not tried, the minute for these deletes had passed")
			continue
		}
		err := splitAckWithin(ctx, led, k, splitOutcome{deleted: true}, min(20*time.Second, time.Until(phaseEnd)), func(ctx context.Context) error {
			_, err := routed.Delete(ctx, k)
			return err
		})
		if err != nil {
			doomedFailed = append(doomedFailed, fmt.Sprintf("%s at %s: %v", k, time.Now().UTC().Format("15:04:05.000"), err))
			continue
		}
		probe.markDeleted(k)
	}
	labWait(ctx, t, "majority writes during the cut", time.Minute, ackedMore(writes, 300))
	// Let n5's side call it for a while after n5 noticed the cut (or after
	// generous detection time, if it never says so).
	labWait(ctx, t, "calls to the isolated node", 90*time.Second, func() error { return probe.settled(30, 15*time.Second) })
	endProbe() // its figures are for the cut only
	atHeal := w.summary()

	lab.heal(isolated)
	healAt := time.Now()
	heal := labWait(ctx, t, "five nodes agree after healing", 2*time.Minute, func() error { return labAgree(ctx, all) })
	labWait(ctx, t, "writes after healing", time.Minute, ackedMore(writes, 300))
	w.stopAndWait()

	// Every acknowledged write readable with its latest value and every
	// acknowledged delete still deleted, through the routed client and
	// through each node.
	vs := []verdict{w.check(ctx, "routed client", routed, false)}
	var splitBad []splitVerdict
	for _, nd := range all {
		c, err := client.New(client.Config{Addrs: []string{nd.native()}, Direct: true, DialTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		v := w.check(ctx, nd.name, c, false)
		for _, b := range led.verify(ctx, nd.name, c) {
			splitBad = append(splitBad, b)
			switch b.kind {
			case "lost":
				v.lost++
			case "resurrected":
				v.resurrected++
			default:
				v.failed++
			}
		}
		vs = append(vs, v)
		c.Close()
	}
	lost, resurrected, unreadable := 0, 0, 0 // keys, on the worst read path
	for _, v := range vs {
		lost, resurrected, unreadable = max(lost, v.lost), max(resurrected, v.resurrected), max(unreadable, v.failed)
	}

	if lost+resurrected > 0 {
		nodes := map[string]string{}
		for _, nd := range all {
			nodes[nd.name] = nd.native()
		}
		w.explain(ctx, nodes, "")
	}
	p := probe.snapshot()
	t.Logf("figures: 5 nodes, --replicas 2, --gossip-preset local; n5 cut for %v", healAt.Sub(cutAt).Round(time.Millisecond))
	t.Logf("  lost %d, resurrected %d, unreadable %d keys on the worst of 6 read paths (the routed client, each node directly); %d workload and %d split keys",
		lost, resurrected, unreadable, vs[0].keys, len(led.keys))
	t.Logf("  n5 (isolated): %d sets and %d deletes sent, acknowledged %d and %d; refused with ErrUnavailable %d (\"no quorum\" %d), other errors %d",
		p.sets, p.dels, p.setAcked, p.delAcked, p.unavailable, p.noQuorum, p.otherErr)
	t.Logf("  n5 (isolated): %d reads of sessions the majority had deleted, after n5 noticed the cut: %d served a value", p.staleReads, p.staleServed)
	t.Logf("  detect: majority dropped n5 after %v, fully replicated again after %v more; n5 first said \"no quorum\" after %s",
		detect.Round(time.Millisecond), rereplicate.Round(time.Millisecond), p.detect())
	t.Logf("  heal: all 5 agree, ready, nothing under-replicated %v after the rules were removed", heal.Round(time.Millisecond))
	t.Logf("  majority deletes during the cut: %d of %d acknowledged", len(doomed)-len(doomedFailed), len(doomed))
	t.Logf("  workload at the cut: %s", atCut)
	t.Logf("  workload at the heal: %s", atHeal)
	t.Logf("  workload at the end: %s", w.summary())
	for _, v := range vs {
		t.Logf("  final check %v", v)
	}
	t.Logf("  n5's answers while cut off (samples): %s", strings.Join(p.samples, " | "))

	if n := p.setAcked + p.delAcked; n > 0 {
		t.Errorf("isolated n5 acknowledged %d writes and deletes (%d before it said \"no quorum\"); want 0: %s",
			n, p.ackedBeforeDetect, strings.Join(p.ackedKeys, "; "))
	}
	if p.staleServed > 0 {
		t.Errorf("isolated n5 served %d of %d reads of sessions the majority had deleted, after it noticed the cut; want 0", p.staleServed, p.staleReads)
	}
	if len(doomedFailed) > 0 {
		t.Errorf("the majority failed %d of %d deletes during the cut (20s of retries each); want 0:\n  %s",
			len(doomedFailed), len(doomed), strings.Join(doomedFailed[:min(len(doomedFailed), 5)], "\n  "))
	}
	if n, r := w.falseNotFound.Load(), w.revive.Load(); n+r > 0 {
		t.Errorf("during the run: %d false not-found, %d resurrected reads; want 0", n, r)
	}
	if lost+resurrected+unreadable > 0 {
		t.Errorf("lost %d, resurrected %d, unreadable %d; want 0 (see the final checks above)", lost, resurrected, unreadable)
		for i, v := range splitBad {
			if i == 20 {
				break
			}
			t.Logf("  %s: %s", v.kind, v.detail)
		}
	}
}

const (
	splitTTL       = time.Hour
	splitOpTimeout = 5 * time.Second
	splitMaxOps    = 100_000 // the isolated side's loop is bounded in count as well as time
)

// splitOutcome is what a write leaves behind: a value, or nothing.
type splitOutcome struct {
	value   string
	deleted bool
}

func (o splitOutcome) String() string {
	if o.deleted {
		return "deleted"
	}
	return fmt.Sprintf("%q", o.value)
}

// splitHistory is what the clients were told about one key.
type splitHistory struct {
	acked   *splitOutcome  // the last acknowledged write or delete; nil if none
	maybe   []splitOutcome // unacknowledged since then: each may have taken effect
	earlier []splitOutcome // unacknowledged before it (named in reports only)
}

// splitLedger records every write and delete, acknowledged or not, per key.
// Each key has one writer at a time, so its calls are ordered.
type splitLedger struct {
	mu   sync.Mutex // guards keys
	keys map[string]*splitHistory
}

func (l *splitLedger) record(key string, o splitOutcome, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.keys[key]
	if h == nil {
		h = &splitHistory{}
		l.keys[key] = h
	}
	if err != nil {
		h.maybe = append(h.maybe, o)
		return
	}
	h.earlier, h.maybe, h.acked = append(h.earlier, h.maybe...), nil, &o
}

// splitVerdict is one key that verify found wrong.
type splitVerdict struct{ kind, detail string }

// seed writes n sessions named prefix-i through c, each until acknowledged.
func (l *splitLedger) seed(ctx context.Context, t *testing.T, c *client.Client, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%03d", prefix, i)
		v := keys[i] + "#seed"
		err := splitAckWithin(ctx, l, keys[i], splitOutcome{value: v}, 30*time.Second, func(ctx context.Context) error {
			return c.Set(ctx, keys[i], []byte(v), splitTTL)
		})
		if err != nil {
			t.Fatalf("seed %s: %v", keys[i], err)
		}
	}
	return keys
}

// verify reads every key with an acknowledged call through c and returns
// those whose state is neither the last acknowledged outcome nor that of an
// unacknowledged call after it: "lost" (an acknowledged value gone or
// replaced by an older one), "resurrected" (an acknowledged delete undone)
// or "unreadable" (no answer within a minute of retries for the node).
func (l *splitLedger) verify(ctx context.Context, via string, c *client.Client) []splitVerdict {
	l.mu.Lock()
	keys := make(map[string]splitHistory, len(l.keys))
	for k, h := range l.keys {
		if h.acked != nil {
			keys[k] = *h
		}
	}
	l.mu.Unlock()
	var bad []splitVerdict
	deadline := time.Now().Add(time.Minute)
	for key, h := range keys {
		var got splitOutcome
		var err error
		for {
			octx, cancel := context.WithTimeout(ctx, splitOpTimeout)
			var v []byte
			v, err = c.Get(octx, key)
			cancel()
			if err == nil || errors.Is(err, client.ErrNotFound) || time.Now().After(deadline) || ctx.Err() != nil {
				got = splitOutcome{value: string(v), deleted: err != nil}
				break
			}
		}
		switch {
		case err != nil && !errors.Is(err, client.ErrNotFound):
			bad = append(bad, splitVerdict{"unreadable", fmt.Sprintf("%s via %s: %v", key, via, err)})
		case got == *h.acked || slices.Contains(h.maybe, got):
		default:
			kind := "lost"
			if h.acked.deleted {
				kind = "resurrected"
			}
			detail := fmt.Sprintf("%s via %s reads %v; last acknowledged %v; unacknowledged since %v", key, via, got, *h.acked, h.maybe)
			if slices.Contains(h.earlier, got) {
				detail += " (an unacknowledged call from before the last acknowledged one)"
			}
			bad = append(bad, splitVerdict{kind, detail})
		}
	}
	return bad
}

// probeCounts are the isolated side's figures.
type probeCounts struct {
	sets, dels, setAcked, delAcked  int
	unavailable, noQuorum, otherErr int // refusals of sets and deletes
	ackedBeforeDetect               int
	ackedKeys                       []string
	samples                         []string // one error of each kind n5's side got
	staleReads, staleServed         int      // reads of sessions deleted on the majority side, after detection
	detectedAt                      time.Time
	cutAt                           time.Time
}

func (p probeCounts) detect() string {
	if p.detectedAt.IsZero() {
		return "never"
	}
	return p.detectedAt.Sub(p.cutAt).Round(time.Millisecond).String()
}

// isoProbe is an application on the isolated node's side of the split: it
// calls that node directly over its client link, writing new sessions,
// deleting old ones and reading sessions the majority deleted.
type isoProbe struct {
	ledger  *splitLedger
	mu      sync.Mutex // guards the fields below
	counts  probeCounts
	deleted map[string]time.Time // sessions the majority acknowledged deleting, and when
	opTimes []time.Time          // when each call started
}

func (p *isoProbe) markDeleted(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deleted[key] = time.Now()
}

func (p *isoProbe) snapshot() probeCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.counts
	s.ackedKeys = append([]string(nil), s.ackedKeys...)
	s.samples = append([]string(nil), s.samples...)
	return s
}

// settled reports nil once n calls started after the isolated node first
// said "no quorum", or, if it never did, n calls after fallback past the cut.
func (p *isoProbe) settled(n int, fallback time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.counts.detectedAt
	if from.IsZero() {
		from = p.counts.cutAt.Add(fallback)
	}
	k := 0
	for _, at := range p.opTimes {
		if !at.Before(from) {
			k++
		}
	}
	if k < n {
		return fmt.Errorf("%d calls since %s; want %d", k, from.Format(time.TimeOnly), n)
	}
	return nil
}

func (p *isoProbe) run(ctx context.Context, c *client.Client, isoDel, doomed []string, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range splitMaxOps {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		start := time.Now()
		octx, cancel := context.WithTimeout(ctx, splitOpTimeout)
		var (
			key  string
			o    splitOutcome
			err  error
			read bool
		)
		switch i % 3 {
		case 0:
			key = fmt.Sprintf("split:isoset-%05d", i)
			o = splitOutcome{value: key + "#iso"}
			err = c.Set(octx, key, []byte(o.value), splitTTL)
		case 1:
			key, o = isoDel[(i/3)%len(isoDel)], splitOutcome{deleted: true}
			_, err = c.Delete(octx, key)
		default:
			key, read = doomed[(i/3)%len(doomed)], true
			_, err = c.Get(octx, key)
		}
		cancel()
		if !read {
			p.ledger.record(key, o, err)
		}
		p.tally(start, key, o, read, err)
	}
}

func (p *isoProbe) tally(start time.Time, key string, o splitOutcome, read bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.counts
	p.opTimes = append(p.opTimes, start)
	if err != nil && errors.Is(err, client.ErrUnavailable) && strings.Contains(err.Error(), "quorum") && s.detectedAt.IsZero() {
		s.detectedAt = time.Now()
	}
	if err != nil && len(s.samples) < 8 {
		msg := strings.NewReplacer("cloakroom: ", "", "unavailable: ", "").Replace(err.Error())
		head := msg[:strings.IndexFunc(msg+"0", unicode.IsDigit)] // "forward: set n", "no quorum: node n"
		if !slices.ContainsFunc(s.samples, func(x string) bool { return strings.Contains(x, "] "+head) }) {
			s.samples = append(s.samples, fmt.Sprintf("[+%v] %s", start.Sub(s.cutAt).Round(time.Millisecond), msg))
		}
	}
	if read {
		if delAt, ok := p.deleted[key]; ok && delAt.Before(start) && !s.detectedAt.IsZero() && s.detectedAt.Before(start) {
			s.staleReads++
			if err == nil {
				s.staleServed++
			}
		}
		return
	}
	if o.deleted {
		s.dels++
	} else {
		s.sets++
	}
	switch {
	case err == nil:
		if o.deleted {
			s.delAcked++
		} else {
			s.setAcked++
		}
		if s.detectedAt.IsZero() {
			s.ackedBeforeDetect++
		}
		if len(s.ackedKeys) < 20 {
			s.ackedKeys = append(s.ackedKeys, fmt.Sprintf("%s %v at +%v", key, o, start.Sub(s.cutAt).Round(time.Millisecond)))
		}
	case errors.Is(err, client.ErrUnavailable):
		s.unavailable++
		if strings.Contains(err.Error(), "quorum") {
			s.noQuorum++
		}
	default:
		s.otherErr++
	}
}
