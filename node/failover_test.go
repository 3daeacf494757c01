package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// TestCluster_readsFailOverWhileACrashIsNoticed: until failure detection
// drops a crashed primary from the table, reads forwarded to it go to a
// backup (the entry node itself, or the other one), alone or in a batch,
// and see every acknowledged write, deletes included. Writes are not
// redirected.
func TestCluster_readsFailOverWhileACrashIsNoticed(t *testing.T) {
	// The LAN preset notices a crash in seconds: the reads below run well
	// inside that window.
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.GossipPreset = "lan" })
	ctx := ctxFor(t)
	entry, down := c.Node(0), c.Node(2).Name()
	ci := entry.ClusterInfo()
	holders := func(key string) (primary, backup string) {
		o := ci.Owners[ring.Partition(key, ci.Partitions)]
		return ci.Members[o[0]].Name, ci.Members[o[1]].Name
	}
	// Keys whose primary is the node to crash: backed up on the entry node
	// (local) or on the third node (remote); every fourth one deleted.
	var local, remote []string
	for i := 0; len(local) < 8 || len(remote) < 8; i++ {
		key := fmt.Sprint("fo:", i)
		switch primary, backup := holders(key); {
		case primary != down:
		case backup == entry.Name() && len(local) < 8:
			local = append(local, key)
		case backup != entry.Name() && len(remote) < 8:
			remote = append(remote, key)
		}
	}
	keys := append(local, remote...)
	want := func(i int) (protocol.Code, string) {
		if i%4 == 0 {
			return protocol.CodeNotFound, ""
		}
		return protocol.CodeOK, fmt.Sprint("v", i)
	}
	for i, k := range keys {
		if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte(fmt.Sprint("v", i)), TTL: 60_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET %s: %v", k, r.Err())
		}
		if code, _ := want(i); code == protocol.CodeNotFound {
			if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpDelete, Keys: []string{k}}); r.Code != protocol.CodeOK || r.N != 1 {
				t.Fatalf("DEL %s: %d, %v", k, r.N, r.Err())
			}
		}
	}
	table := entry.TableVersion()
	before := counter(t, entry, "cloakroom_backup_reads_total")
	c.Crash(2)

	check := func(how string, i int, r *protocol.Response) {
		t.Helper()
		code, val := want(i)
		if r.Code != code || string(r.Value) != val {
			t.Errorf("%s %s (primary crashed): %v %q; want %v %q", how, keys[i], r.Err(), r.Value, code, val)
		}
	}
	for i, k := range keys {
		check("GET", i, doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: k}))
		r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpTTL, Key: k})
		if code, _ := want(i); r.Code != code || code == protocol.CodeOK && (r.TTL <= 0 || r.TTL > 60_000) {
			t.Errorf("TTL %s (primary crashed): %v %d; want %v and at most 60000", k, r.Err(), r.TTL, code)
		}
	}
	reqs := make([]*protocol.Request, len(keys))
	resps := make([]*protocol.Response, len(keys))
	for i, k := range keys {
		reqs[i], resps[i] = &protocol.Request{Op: protocol.OpGet, Key: k}, new(protocol.Response)
	}
	entry.DoAll(ctx, reqs, resps)
	for i, r := range resps {
		check("GET in DoAll", i, r)
	}
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: keys[1], Value: []byte("new"), TTL: 60_000}); r.Code != protocol.CodeUnavailable {
		t.Errorf("SET %s (primary crashed): %v; want unavailable, not taken by a backup", keys[1], r.Err())
	}
	if got := entry.TableVersion(); got != table {
		t.Fatalf("the table moved on (%d → %d) before the reads were done: they did not test the window", table, got)
	}
	if got := counter(t, entry, "cloakroom_backup_reads_total") - before; got != float64(3*len(keys)) {
		t.Errorf("backup reads: %v; want %d", got, 3*len(keys))
	}
}

// TestCluster_readsWithTwoBackups_failOverWithEveryAcknowledgedWrite: with
// three copies a write is acknowledged once one backup has it, so the
// backup that serves a read whose primary is down may have missed it (a
// logout among them). It fetches the key from the other backup first, so
// the read sees every write and delete the primary acknowledged.
func TestCluster_readsWithTwoBackups_failOverWithEveryAcknowledgedWrite(t *testing.T) {
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.GossipPreset, cfg.Replicas = "lan", 3 })
	ctx := ctxFor(t)
	entry, down := c.Node(0), c.Node(2).Name()
	ci := entry.ClusterInfo()
	byName := nodesByName(c)
	// Two keys the node to crash is primary of: a session the backup that
	// serves reads missed the SET of, and a logged-out one it missed the
	// DEL of.
	var set, del string
	var setMissed, delMissed *node.Node
	for i := 0; set == "" || del == ""; i++ {
		k := fmt.Sprint("r3:", i)
		owners := ci.Owners[ring.Partition(k, ci.Partitions)]
		switch {
		case ci.Members[owners[0]].Name != down:
		case set == "":
			set, setMissed = k, byName[ci.Members[owners[1]].Name]
		case del == "":
			del, delMissed = k, byName[ci.Members[owners[1]].Name]
		}
	}
	writeThenTakeAway(t, ctx, entry, set, setMissed, del, delMissed)
	table := entry.TableVersion()
	c.Crash(2)
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: set}); r.Code != protocol.CodeOK || string(r.Value) != "v" {
		t.Errorf("GET %s with its primary down, from %s, which had missed the SET: %v %q; want v", set, setMissed.Name(), r.Err(), r.Value)
	}
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: del}); r.Code != protocol.CodeNotFound {
		t.Errorf("GET of the logged-out %s with its primary down, from %s, which had missed the DEL: %v %q; want not found", del, delMissed.Name(), r.Code, r.Value)
	}
	if got := entry.TableVersion(); got != table {
		t.Fatalf("the table moved on (%d → %d) before the reads: they did not test the window", table, got)
	}
	if got := counter(t, entry, "cloakroom_backup_reads_total"); got != 2 {
		t.Errorf("backup reads: %v; want 2", got)
	}
}

// TestCluster_aDeleteThatFails_countsNothing: a delete whose primary cannot
// have it copied (its only backup crashed, not yet noticed) is undone and
// fails; its count must say so, since a Redis DEL tried again adds the
// counts of its attempts up.
func TestCluster_aDeleteThatFails_countsNothing(t *testing.T) {
	c := nodetest.Start(t, 2, func(_ int, cfg *node.Config) { cfg.GossipPreset = "lan" })
	ctx := ctxFor(t)
	entry := c.Node(0)
	ci := entry.ClusterInfo()
	var keys []string // primary: the entry node; backup: the node to crash
	for i := 0; len(keys) < 8; i++ {
		key := fmt.Sprint("del:", i)
		if o := ci.Owners[ring.Partition(key, ci.Partitions)]; ci.Members[o[0]].Name == entry.Name() {
			keys = append(keys, key)
		}
	}
	for _, k := range keys {
		if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte("v"), TTL: 60_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET %s: %v", k, r.Err())
		}
	}
	c.Crash(1)
	failed := 0
	for _, k := range keys {
		r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpDelete, Keys: []string{k}})
		if r.Code == protocol.CodeOK {
			if r.N != 1 {
				t.Errorf("DEL %s: OK, counting %d; want 1", k, r.N)
			}
			continue // the crash was noticed: the entry node holds the partition alone
		}
		failed++
		if strings.Contains(r.Msg, "cloakroom:") {
			t.Errorf("DEL %s failed with %q; want the reason once, not wrapped in its code again", k, r.Msg)
		}
		if r.N != 0 {
			t.Errorf("DEL %s failed (%v), counting %d; want 0, nothing deleted", k, r.Err(), r.N)
		}
		if g := doOn(ctx, entry, &protocol.Request{Op: protocol.OpGet, Key: k}); g.Code != protocol.CodeOK {
			t.Errorf("GET %s after its DEL failed: %v; want the value, the delete undone", k, g.Err())
		}
	}
	if failed == 0 {
		t.Fatal("every DEL succeeded: the crash was noticed first, and the failing delete not tested")
	}
}

// TestCluster_failuresWhileACrashIsNoticed_sayWhyOnce: requests that fail
// because a member crashed (not yet noticed) say why once. Redis clients
// read the message after TRYAGAIN; it used to repeat the code's words
// ("forward: set n3: cloakroom: unavailable: dial 127.0.0.1:…: dial tcp
// 127.0.0.1:…: connect: connection refused").
func TestCluster_failuresWhileACrashIsNoticed_sayWhyOnce(t *testing.T) {
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.GossipPreset = "lan" })
	ctx := ctxFor(t)
	entry, down := c.Node(0), c.Node(2).Name()
	ci := entry.ClusterInfo()
	var keys []string // their primary is the node to crash
	for i := 0; len(keys) < 3; i++ {
		key := fmt.Sprint("why:", i)
		if o := ci.Owners[ring.Partition(key, ci.Partitions)]; ci.Members[o[0]].Name == down {
			keys = append(keys, key)
		}
	}
	table := entry.TableVersion()
	c.Crash(2)
	set := func(k string) *protocol.Request {
		return &protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte("v"), TTL: 60_000}
	}
	check := func(what string, code protocol.Code, msg string) {
		t.Helper()
		if code != protocol.CodeUnavailable {
			t.Errorf("%s: %v %q; want unavailable", what, code, msg)
		}
		if msg == "" || strings.Contains(msg, "cloakroom:") || strings.Count(msg, "dial") > 1 {
			t.Errorf("%s: %q; want why, once", what, msg)
		}
	}
	var one protocol.Response
	entry.Do(ctx, set(keys[0]), &one)
	check("a forwarded SET", one.Code, one.Msg)

	resps := []*protocol.Response{{}, {}}
	entry.DoAll(ctx, []*protocol.Request{set(keys[1]), set(keys[2])}, resps)
	for i, r := range resps {
		check(fmt.Sprintf("SET %d of a forwarded pipeline", i), r.Code, r.Msg)
	}

	err := entry.DoAtomic(ctx, []*protocol.Request{set(keys[0])}, []*protocol.Response{{}})
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("a forwarded atomic step: %v; want a *protocol.Error", err)
	}
	check("a forwarded atomic step", pe.Code, pe.Msg)

	var count protocol.Response
	entry.Do(ctx, &protocol.Request{Op: protocol.OpCount}, &count)
	check("a count over every member", count.Code, count.Msg)

	if got := entry.TableVersion(); got != table {
		t.Fatalf("the table moved on (%d → %d) during the requests: they did not test the window", table, got)
	}
}

// TestCluster_threeCopies_aHolderThatMissedAWrite_pullsItBeforeServing:
// with three copies a write is acknowledged once one backup has it, so the
// other may have missed it (it was slow, say). When the primary crashes,
// the partition has two holders: the new primary serves it and the new
// backup serves reads the primary cannot. Each must fetch what the other
// former holder has before it answers, not report a session missing (or a
// logged-out one present) until anti-entropy comes round.
func TestCluster_threeCopies_aHolderThatMissedAWrite_pullsItBeforeServing(t *testing.T) {
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.Replicas = 3 })
	ctx := ctxFor(t)
	first := c.Node(0)
	ci := first.ClusterInfo()
	crashed := first.Name()
	var rest []string
	for _, m := range ci.Members {
		if m.Name != crashed {
			rest = append(rest, m.Name)
		}
	}
	after, err := ring.Compute(rest, ci.Partitions, 3, ci.Version+1)
	if err != nil {
		t.Fatal(err)
	}
	byName := nodesByName(c)
	// Two keys the crashed node is primary of: a session whose next primary
	// missed its SET, and a logged-out one whose next backup missed its DEL.
	var set, del string
	var setMissed, delMissed *node.Node
	for i := 0; set == "" || del == ""; i++ {
		k := fmt.Sprint("missed:", i)
		p := ring.Partition(k, ci.Partitions)
		switch {
		case ci.Members[ci.Owners[p][0]].Name != crashed:
		case set == "":
			set, setMissed = k, byName[after.Primary(p)]
		case del == "":
			del, delMissed = k, byName[after.Members[after.Owners[p][1]]]
		}
	}
	writeThenTakeAway(t, ctx, first, set, setMissed, del, delMissed)
	c.Crash(0)
	c.WaitAgreed(t, 2)
	// Ready: settled, nothing left to pull (two nodes cannot hold three
	// copies, so WaitReady's replication check would never pass).
	nodetest.WaitFor(t, 30*time.Second, func() error {
		for _, nd := range c.Running() {
			if ok, why := nd.Ready(); !ok {
				return fmt.Errorf("%s: %s", nd.Name(), why)
			}
		}
		return nil
	})
	if r := doOn(ctx, setMissed, &protocol.Request{Op: protocol.OpGet, Key: set}); r.Code != protocol.CodeOK || string(r.Value) != "v" {
		t.Errorf("GET %s on its new primary %s, which had missed the write: %v %q; want v", set, setMissed.Name(), r.Code, r.Value)
	}
	// What a Go client that cannot reach the primary asks the backup.
	if r := doOn(ctx, delMissed, &protocol.Request{Op: protocol.OpGet, Key: del, Flags: protocol.FlagReplicaRead | protocol.FlagForwarded}); r.Code != protocol.CodeNotFound {
		t.Errorf("backup read of the logged-out %s on %s, which had missed the delete: %v %q; want not found", del, delMissed.Name(), r.Code, r.Value)
	}
}

// writeThenTakeAway sets set and del through entry and deletes del, then
// takes each write away from the holder that is to miss it, as if it had
// not applied it: setMissed loses its copy of set, delMissed the delete of
// del (its live entry is put back).
func writeThenTakeAway(t *testing.T, ctx context.Context, entry *node.Node, set string, setMissed *node.Node, del string, delMissed *node.Node) {
	t.Helper()
	for _, k := range []string{set, del} {
		if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte("v"), TTL: 60_000}); r.Code != protocol.CodeOK {
			t.Fatalf("SET %s: %v", k, r.Err())
		}
	}
	live, _ := delMissed.Store().Entry(del)
	if r := doOn(ctx, entry, &protocol.Request{Op: protocol.OpDelete, Keys: []string{del}}); r.Code != protocol.CodeOK || r.N != 1 {
		t.Fatalf("DEL %s: %d %v", del, r.N, r.Err())
	}
	if e, ok := setMissed.Store().Entry(set); !ok || !setMissed.Store().Revert(set, e.Version, protocol.Entry{}, false) {
		t.Fatalf("could not take %s's copy of %s away", setMissed.Name(), set)
	}
	if e, ok := delMissed.Store().Entry(del); !ok || !e.Tombstone || !delMissed.Store().Revert(del, e.Version, live, true) {
		t.Fatalf("could not take the delete of %s away from %s", del, delMissed.Name())
	}
}

// doOn runs req on nd and returns its response.
func doOn(ctx context.Context, nd *node.Node, req *protocol.Request) *protocol.Response {
	var resp protocol.Response
	nd.Do(ctx, req, &resp)
	return &resp
}

// nodesByName returns c's running nodes by name.
func nodesByName(c *nodetest.Cluster) map[string]*node.Node {
	out := map[string]*node.Node{}
	for _, nd := range c.Running() {
		out[nd.Name()] = nd
	}
	return out
}
