package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// copies counts the holders of key's partition whose store has a live
// copy of it. (A node that no longer holds a partition keeps it a while.)
func copies(c *nodetest.Cluster, key string) int {
	running := c.Running()
	ci := running[0].ClusterInfo()
	k := 0
	for _, m := range ci.Owners[ring.Partition(key, ci.Partitions)] {
		for _, n := range running {
			if n.Name() != ci.Members[m].Name {
				continue
			}
			if e, ok := n.Store().Entry(key); ok && !e.Tombstone {
				k++
			}
		}
	}
	return k
}

func TestCluster_forwardsAndReplicates(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	first := nodetest.DirectClient(t, c.Node(0).Addr())
	const n = 2000
	for i := range n {
		if err := first.Set(ctx, fmt.Sprint("s", i), []byte(fmt.Sprint("v", i)), time.Hour); err != nil {
			t.Fatalf("set s%d through node-1: %v", i, err)
		}
	}
	for j := range c.Len() {
		cl := nodetest.DirectClient(t, c.Node(j).Addr())
		for i := range n {
			got, err := cl.Get(ctx, fmt.Sprint("s", i))
			if err != nil || string(got) != fmt.Sprint("v", i) {
				t.Fatalf("get s%d through %s = %q, %v", i, c.Node(j).Name(), got, err)
			}
		}
	}
	for i := range n {
		if k := copies(c, fmt.Sprint("s", i)); k != 2 {
			t.Fatalf("s%d has %d copies; want 2", i, k)
		}
	}
	// Touch and delete replicate too: the value survives a touch on every copy.
	if ok, err := first.Touch(ctx, "s1", 2*time.Hour); !ok || err != nil {
		t.Fatalf("touch: %v %v", ok, err)
	}
	for _, nd := range c.Running() {
		if e, ok := nd.Store().Entry("s1"); ok && string(e.Value) != "v1" {
			t.Fatalf("%s holds %q after a touch; want v1", nd.Name(), e.Value)
		}
	}
	keys := []string{"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "nope"}
	if got, err := first.Delete(ctx, keys...); got != 8 || err != nil {
		t.Fatalf("multi-key delete across nodes = %d, %v; want 8", got, err)
	}
	for _, k := range keys {
		if copies(c, k) != 0 {
			t.Fatalf("%s still has a live copy after delete", k)
		}
	}
	// A delete's token reaches every copy, through forwards: the call sent
	// again (its answer lost) counts what it deleted, through any node,
	// and another call counts nothing.
	keys = []string{"s10", "s11", "s12", "s13", "s14", "s15", "nope"}
	tok := protocol.NewDeleteToken()
	for j := range c.Len() {
		r := doOn(ctx, c.Node(j), &protocol.Request{Op: protocol.OpDelete, Keys: keys, Value: tok})
		if r.Code != protocol.CodeOK || r.N != 6 {
			t.Fatalf("delete with one token through %s: %d, %v; want 6 each time", c.Node(j).Name(), r.N, r.Err())
		}
	}
	for _, k := range keys[:6] {
		for _, nd := range c.Running() {
			if e, ok := nd.Store().Entry(k); ok && !bytes.Equal(e.Value, tok) {
				t.Errorf("%s's copy of %s: tombstone %v, value %x; want the delete's token %x", nd.Name(), k, e.Tombstone, e.Value, tok)
			}
		}
	}
	if r := doOn(ctx, c.Node(2), &protocol.Request{Op: protocol.OpDelete, Keys: keys, Value: protocol.NewDeleteToken()}); r.N != 0 {
		t.Errorf("another delete of the same keys counted %d, %v; want 0", r.N, r.Err())
	}
}

func TestCluster_crashLosesNothingAndDeletesStayDeleted(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	cl := nodetest.DirectClient(t, c.Node(0).Addr())
	const n = 3000
	for i := range n {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte(fmt.Sprint("v", i)), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	c.Crash(2)
	c.WaitAgreed(t, 2)
	for i := range n {
		if got, err := cl.Get(ctx, fmt.Sprint("s", i)); err != nil || string(got) != fmt.Sprint("v", i) {
			t.Fatalf("after crash, get s%d = %q, %v", i, got, err)
		}
	}
	// Delete while node-3 is down, then bring it back empty.
	for i := 0; i < n; i += 3 {
		if _, err := cl.Delete(ctx, fmt.Sprint("s", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(2)
	c.WaitAgreed(t, 3)
	c.WaitReady(t)
	for j := range c.Len() {
		cl := nodetest.DirectClient(t, c.Node(j).Addr())
		for i := range n {
			got, err := cl.Get(ctx, fmt.Sprint("s", i))
			if i%3 == 0 {
				if !errors.Is(err, client.ErrNotFound) {
					t.Fatalf("deleted s%d came back through %s: %q, %v", i, c.Node(j).Name(), got, err)
				}
				continue
			}
			if err != nil || string(got) != fmt.Sprint("v", i) {
				for _, nd := range c.Running() {
					e, ok := nd.Store().Entry(fmt.Sprint("s", i))
					ci := nd.ClusterInfo()
					t.Logf("%s: %v %+v table=%d ready=%v", nd.Name(), ok, e, ci.Version, nd.Members())
				}
				t.Fatalf("after restart, get s%d through %s = %q, %v", i, c.Node(j).Name(), got, err)
			}
		}
	}
	for i := 1; i < n; i += 3 {
		if k := copies(c, fmt.Sprint("s", i)); k != 2 {
			t.Fatalf("s%d has %d copies after the restart; want 2", i, k)
		}
	}
}

func TestCluster_atomicBatchIsForwardedToItsPrimary(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	entry := c.Node(0)
	// Find a hash tag whose partition another node owns.
	ci := entry.ClusterInfo()
	tag := ""
	for i := 0; tag == ""; i++ {
		k := fmt.Sprintf("{u%d}", i)
		if ci.Members[ci.Owners[ring.Partition(k, ci.Partitions)][0]].Name != entry.Name() {
			tag = k
		}
	}
	reqs := []*protocol.Request{
		{Op: protocol.OpSet, Key: tag + "a", Value: []byte("1"), TTL: 60000},
		{Op: protocol.OpSet, Key: tag + "b", Value: []byte("2"), TTL: 60000},
		{Op: protocol.OpGet, Key: tag + "a"},
	}
	resps := []*protocol.Response{{}, {}, {}}
	if err := entry.DoAtomic(ctx, reqs, resps); err != nil {
		t.Fatalf("atomic batch through a non-owner: %v", err)
	}
	if resps[2].Code != protocol.CodeOK || string(resps[2].Value) != "1" {
		t.Fatalf("get inside the batch = %v %q; want 1", resps[2].Code, resps[2].Value)
	}
	for _, k := range []string{tag + "a", tag + "b"} {
		if n := copies(c, k); n != 2 {
			t.Fatalf("%s has %d copies; want 2", k, n)
		}
	}
	// A stale guard aborts the batch on the primary, through the forward.
	guard := []*protocol.Request{{Op: protocol.OpGet, Key: tag + "a", Flags: protocol.FlagIfVersion, Version: 1}, {Op: protocol.OpSet, Key: tag + "a", Value: []byte("x"), TTL: 60000}}
	if err := entry.DoAtomic(ctx, guard, []*protocol.Response{{}, {}}); !errors.Is(err, protocol.ErrConflict) {
		t.Fatalf("stale guard through a forward: %v; want ErrConflict", err)
	}
}

func TestCluster_atomicBatchReplicatesEachKeyOnce(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	// The primary of tag's partition runs the batch and replicates it.
	tag := "{scs}"
	ci := c.Node(0).ClusterInfo()
	owners := ci.Owners[ring.Partition(tag, ci.Partitions)]
	var primary, backup *node.Node
	for _, nd := range c.Running() {
		switch nd.Name() {
		case ci.Members[owners[0]].Name:
			primary = nd
		case ci.Members[owners[1]].Name:
			backup = nd
		}
	}
	// scs's MULTI (SET, PEXPIREAT on one session) and a pipeline that sets
	// one key over and over.
	reqs := []*protocol.Request{
		{Op: protocol.OpSet, Key: tag + "a", Value: []byte("1"), Flags: protocol.FlagNoTTL},
		{Op: protocol.OpTouch, Key: tag + "a", TTL: time.Hour.Milliseconds()},
	}
	for i := range 14 {
		reqs = append(reqs, &protocol.Request{Op: protocol.OpSet, Key: tag + "b", Value: []byte(fmt.Sprint(i)), TTL: 60000})
	}
	resps := make([]*protocol.Response, len(reqs))
	for i := range resps {
		resps[i] = &protocol.Response{}
	}
	before := counter(t, primary, "cloakroom_replicated_entries_total")
	if err := primary.DoAtomic(ctx, reqs, resps); err != nil {
		t.Fatalf("atomic batch: %v", err)
	}
	if got := counter(t, primary, "cloakroom_replicated_entries_total") - before; got != 2 {
		t.Errorf("the batch sent %v entries to each backup; want 2, one per key", got)
	}
	// What the backup holds is each key's final state.
	a, ok := backup.Store().Entry(tag + "a")
	if !ok || string(a.Value) != "1" || a.TTL <= 0 {
		t.Errorf("backup holds %s: %+v, %v; want value 1 with the TTL", tag+"a", a, ok)
	}
	if b, ok := backup.Store().Entry(tag + "b"); !ok || string(b.Value) != "13" {
		t.Errorf("backup holds %s: %+v, %v; want the last value, 13", tag+"b", b, ok)
	}
}

// DoAll runs a pipeline's independent requests as Do would run each: here
// those this node is primary of, the rest forwarded, each primary's
// together.
func TestCluster_doAllRunsEachRequestWhereDoWould(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	entry := c.Node(0)
	ci := entry.ClusterInfo()
	var reqs []*protocol.Request
	primaries := map[string]int{} // requests by their key's primary
	for i := 0; len(reqs) < 24; i++ {
		key := fmt.Sprint("all:", i)
		primaries[ci.Members[ci.Owners[ring.Partition(key, ci.Partitions)][0]].Name]++
		reqs = append(reqs, &protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte(fmt.Sprint("v", i)), TTL: 60_000})
	}
	if len(primaries) < 3 {
		t.Fatalf("24 keys fell on %d primaries; want all three", len(primaries))
	}
	// One over the limit: refused as Do refuses it, the rest still run.
	reqs = append(reqs, &protocol.Request{Op: protocol.OpSet, Key: "all:big", Value: make([]byte, protocol.DefaultMaxValue+1), TTL: 60_000})
	run := func(reqs []*protocol.Request) []*protocol.Response {
		resps := make([]*protocol.Response, len(reqs))
		for i := range resps {
			resps[i] = &protocol.Response{Value: []byte("stale")}
		}
		entry.DoAll(ctx, reqs, resps)
		return resps
	}
	before := counter(t, entry, "cloakroom_forwarded_requests_total")
	resps := run(reqs)
	for i, r := range resps[:24] {
		if r.Code != protocol.CodeOK {
			t.Errorf("SET %s: %v; want ok", reqs[i].Key, r.Err())
		}
	}
	if r := resps[24]; r.Code != protocol.CodeTooLarge {
		t.Errorf("oversized SET: code %v; want too large", r.Code)
	}
	forwarded := 24 - primaries[entry.Name()]
	if got := counter(t, entry, "cloakroom_forwarded_requests_total") - before; got != float64(forwarded) {
		t.Errorf("forwarded %v requests; want %d, those whose primary is another node", got, forwarded)
	}
	// Every write reached its primary and one backup; reads find them.
	var gets []*protocol.Request
	for _, r := range reqs[:24] {
		if n := copies(c, r.Key); n != 2 {
			t.Errorf("%s: %d copies; want 2", r.Key, n)
		}
		gets = append(gets, &protocol.Request{Op: protocol.OpGet, Key: r.Key})
	}
	for i, r := range run(gets) {
		if want := fmt.Sprint("v", i); r.Code != protocol.CodeOK || string(r.Value) != want {
			t.Errorf("GET %s: %v %q; want %q", gets[i].Key, r.Err(), r.Value, want)
		}
	}
	// Reads whose primary cannot be reached go to a backup (or, once the
	// table has moved on, to the new primary).
	down := c.Node(2).Name()
	c.Crash(2)
	for i, r := range run(gets) {
		if r.Code != protocol.CodeOK || string(r.Value) != fmt.Sprint("v", i) {
			t.Errorf("GET %s after %s crashed: %v %q; want v%d", gets[i].Key, down, r.Err(), r.Value, i)
		}
	}
}

// counter reads a counter without labels from nd's /metrics.
func counter(t *testing.T, nd *node.Node, name string) float64 { // or a gauge
	t.Helper()
	resp, err := http.Get("http://" + nd.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", nd.Name(), err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics of %s: %v", nd.Name(), err)
	}
	f, ok := families[name]
	if !ok || len(f.GetMetric()) != 1 {
		t.Fatalf("metrics of %s: no single %s", nd.Name(), name)
	}
	if g := f.GetMetric()[0].GetGauge(); g != nil {
		return g.GetValue()
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

func TestCluster_gracefulStopHandsOffFirst(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	cl, err := client.New(client.Config{Addrs: []string{c.Node(1).Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	const n = 3000
	for i := range n {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte(fmt.Sprint("v", i)), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	c.Stop(0) // returns once the others hold node-1's partitions
	for _, nd := range c.Running() {
		if ok, why := nd.Ready(); !ok {
			t.Fatalf("%s not ready right after the graceful stop: %s", nd.Name(), why)
		}
	}
	for i := range n {
		k := fmt.Sprint("s", i)
		if got, err := cl.Get(ctx, k); err != nil || string(got) != fmt.Sprint("v", i) {
			t.Fatalf("after a graceful stop, get %s = %q, %v", k, got, err)
		}
		if copies(c, k) != 2 {
			t.Fatalf("%s has %d copies after the hand-off; want 2", k, copies(c, k))
		}
	}
}

func TestCluster_minorityRefusesReadsAndWrites(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	survivor := nodetest.DirectClient(t, c.Node(0).Addr())
	if err := survivor.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	c.Crash(1)
	c.Crash(2)
	nodetest.WaitFor(t, 30*time.Second, func() error {
		if len(c.Node(0).Members()) != 1 {
			return fmt.Errorf("node-1 still sees %v", c.Node(0).Members())
		}
		return nil
	})
	if err := survivor.Set(ctx, "k", []byte("diverged"), time.Hour); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("write on a minority of one: %v; want ErrUnavailable", err)
	}
	if _, err := survivor.Delete(ctx, "k"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("delete on a minority of one: %v; want ErrUnavailable", err)
	}
	if _, err := survivor.Get(ctx, "k"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("read on a minority of one: %v; want ErrUnavailable", err)
	}
}

func TestCluster_antiEntropyRepairsALostCopy(t *testing.T) {
	c := nodetest.Start(t, 2, func(_ int, cfg *node.Config) { cfg.AntiEntropyInterval = 100 * time.Millisecond })
	ctx := ctxFor(t)
	cl := nodetest.DirectClient(t, c.Node(0).Addr())
	const n = 500
	for i := range n {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Delete(ctx, "s0"); err != nil {
		t.Fatal(err)
	}
	// node-2 loses every copy it held, and gets a stale copy of s0 back.
	n2 := c.Node(1).Store()
	for p := range n2.Partitions() {
		n2.DropPartition(p)
	}
	n2.Apply(&protocol.Entry{Key: "s0", Value: []byte("stale"), TTL: 60000, Version: 1})
	nodetest.WaitFor(t, 20*time.Second, func() error {
		for i := 1; i < n; i++ {
			if k := copies(c, fmt.Sprint("s", i)); k != 2 {
				return fmt.Errorf("s%d has %d copies", i, k)
			}
		}
		return nil
	})
	if k := copies(c, "s0"); k != 0 {
		t.Fatalf("deleted s0 has %d live copies after repair; want 0", k)
	}
}

// Moving a session keeps its deadline: a copy re-replicated after a crash
// or pulled by a restarted node expires when the original would have,
// never later and never earlier.
func TestCluster_movedSessionsKeepTheirDeadlines(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	cl := nodetest.DirectClient(t, c.Node(0).Addr())
	// tol covers the time an entry spends between the node that reads its
	// remaining TTL and the one that applies it, in this one process.
	const n, tol = 600, 200 * time.Millisecond
	type bounds struct{ lo, hi time.Time } // when the session must expire
	want := make([]bounds, n)
	key := func(i int) string { return fmt.Sprint("ttl", i) }
	for i := range n {
		// Every fourth session expires during the moves; the others
		// outlive the test with TTLs spread over a few seconds.
		ttl := 40*time.Second + time.Duration(i)*10*time.Millisecond
		if i%4 == 0 {
			ttl = 2*time.Second + time.Duration(i)*time.Millisecond
		}
		before := time.Now()
		if err := cl.Set(ctx, key(i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		want[i] = bounds{before.Add(ttl), time.Now().Add(ttl)}
	}
	c.Crash(2) // the survivors re-replicate what node-3 held
	c.WaitAgreed(t, 2)
	c.WaitReady(t)
	c.Restart(2) // node-3 comes back empty and pulls its partitions
	c.WaitAgreed(t, 3)
	c.WaitReady(t)
	checked := 0
	for _, nd := range c.Running() {
		for i := range n {
			a := time.Now()
			e, ok := nd.Store().Entry(key(i))
			b := time.Now()
			if !ok || e.Tombstone {
				continue
			}
			checked++
			// The copy's deadline lies between a+TTL and b+TTL+1ms (the
			// TTL is whole milliseconds, rounded down).
			lo, hi := a.Add(time.Duration(e.TTL)*time.Millisecond), b.Add(time.Duration(e.TTL+1)*time.Millisecond)
			switch {
			case lo.After(want[i].hi.Add(tol)):
				t.Errorf("%s on %s expires %v late", key(i), nd.Name(), lo.Sub(want[i].hi).Round(time.Millisecond))
			case hi.Before(want[i].lo.Add(-tol)):
				t.Errorf("%s on %s expires %v early", key(i), nd.Name(), want[i].lo.Sub(hi).Round(time.Millisecond))
			}
		}
	}
	if checked < n {
		t.Fatalf("checked %d live copies; the moves left too few to judge", checked)
	}
	// Every session still due is on both its holders; none past due is
	// anywhere.
	for i := range n {
		live, now := copiesHeld(c, key(i)), time.Now()
		switch {
		case now.Before(want[i].lo.Add(-tol)) && live < 2:
			t.Errorf("%s, due in %v, has %d live copies; want 2", key(i), want[i].lo.Sub(now).Round(time.Millisecond), live)
		case now.After(want[i].hi.Add(tol)) && live > 0:
			t.Errorf("%s, due %v ago, has %d live copies", key(i), now.Sub(want[i].hi).Round(time.Millisecond), live)
		}
	}
}

// copiesHeld counts the running nodes whose store has a live copy of key,
// holders or not.
func copiesHeld(c *nodetest.Cluster, key string) int {
	k := 0
	for _, nd := range c.Running() {
		if e, ok := nd.Store().Entry(key); ok && !e.Tombstone {
			k++
		}
	}
	return k
}

// TestCluster_aNodeWhoseSeedsNameItself_waitsForAnotherToAnswer: a --join
// list may name the node itself (docker-compose.yml gives every node the
// same three). memberlist counts contacting itself as a join, and the node
// then served as a cluster of one beside the real cluster: "not found" for
// its sessions, and writes acknowledged that nobody replicates. It must
// wait until another member answers, then join for real.
func TestCluster_aNodeWhoseSeedsNameItself_waitsForAnotherToAnswer(t *testing.T) {
	c := nodetest.Start(t, 2)
	ctx := ctxFor(t)
	var r protocol.Response
	if c.Node(0).Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "s", Value: []byte("v"), TTL: 600_000}, &r); r.Code != protocol.CodeOK {
		t.Fatalf("SET: %v", r.Err())
	}
	self, later := node.FreeAddr(t), node.FreeAddr(t)
	n3 := nodetest.StartNode(t, func(cfg *node.Config) {
		cfg.Name, cfg.GossipAddr, cfg.Join = "node-3", self, []string{self, later}
	})
	for range 10 { // a join of itself alone took milliseconds
		if ok, _ := n3.Ready(); ok {
			t.Fatalf("node-3 is ready having reached only itself; members %v", n3.Members())
		}
		if n3.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "t", Value: []byte("w"), TTL: 600_000}, &r); r.Code != protocol.CodeNotOwner {
			t.Fatalf("SET on node-3 having reached only itself: %v (%s); want NotOwner", r.Code, r.Msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The other seed comes up, a member of the cluster: node-3 joins it.
	nodetest.StartNode(t, func(cfg *node.Config) {
		cfg.Name, cfg.GossipAddr, cfg.Join = "node-4", later, []string{c.Node(0).GossipAddr()}
	})
	nodetest.WaitFor(t, 30*time.Second, func() error {
		if got := len(n3.Members()); got != 4 {
			return fmt.Errorf("node-3 has %d members", got)
		}
		if ok, why := n3.Ready(); !ok {
			return errors.New(why)
		}
		return nil
	})
	if n3.Do(ctx, &protocol.Request{Op: protocol.OpGet, Key: "s"}, &r); r.Code != protocol.CodeOK || string(r.Value) != "v" {
		t.Fatalf("GET s on node-3 once joined: %v %q; want v", r.Code, r.Value)
	}
}

// TestCluster_aNodeWhoseSeedsAreOnlyItself_startsACluster: a list that
// names only this node (a one-node docker-compose, the first pod of a
// headless service) has nobody to wait for: the node serves at once.
func TestCluster_aNodeWhoseSeedsAreOnlyItself_startsACluster(t *testing.T) {
	ctx := ctxFor(t)
	self := node.FreeAddr(t)
	n := nodetest.StartNode(t, func(cfg *node.Config) { cfg.GossipAddr, cfg.Join = self, []string{self} })
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if ok, why := n.Ready(); !ok {
			return errors.New(why)
		}
		return nil
	})
	var r protocol.Response
	if n.Do(ctx, &protocol.Request{Op: protocol.OpSet, Key: "s", Value: []byte("v"), TTL: 60_000}, &r); r.Code != protocol.CodeOK {
		t.Fatalf("SET on a node whose seeds are only itself: %v (%s)", r.Code, r.Msg)
	}
}
