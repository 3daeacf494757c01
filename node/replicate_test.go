package node_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// TestNode_replicateMany_waitsForNoHungBackup: with two backups or more, a
// write's replication answers without waiting for a backup that never
// answers: acknowledged once another has applied the entries, failed at
// once if another refuses them. A refusal that comes while the write waits
// for the others fails it too. (The hung backup answers only once the case
// is over.)
func TestNode_replicateMany_waitsForNoHungBackup(t *testing.T) {
	// A peer timeout of 20 s gives the others 1 s once one backup has
	// applied the entries, far more than the 10 ms a refusal here takes.
	nd := nodetest.StartNode(t, func(c *node.Config) { c.PeerTimeout = 20 * time.Second })
	refusal := protocol.Errorf(protocol.CodeNotOwner, "backup b: another member set")
	type answer struct {
		ok  bool
		err error
	}
	cases := []struct {
		name        string
		answers     map[string]answer // by backup; the others hang
		wantApplied int               // when a refusal is wanted: whether one applied first
		wantErr     bool
	}{
		{"one applies, one hangs", map[string]answer{"a": {ok: true}}, 1, false},
		{"two apply, one hangs", map[string]answer{"a": {ok: true}, "b": {ok: true}}, 2, false},
		{"one refuses, one hangs", map[string]answer{"a": {err: refusal}}, 0, true},
		{"one applies, then one refuses, one hangs", map[string]answer{"a": {ok: true}, "b": {err: refusal}}, 1, true},
		{"one unreachable, one applies, one hangs", map[string]answer{"a": {}, "b": {ok: true}}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			applied := make(chan struct{}) // a backup has applied the entries
			var once sync.Once
			one := func(b string) (bool, error) {
				a, answers := tc.answers[b]
				switch {
				case !answers:
					<-release
					return false, nil
				case a.ok:
					defer once.Do(func() { close(applied) })
				case a.err != nil && tc.wantApplied > 0:
					<-applied // refuse while the write waits for the others
					time.Sleep(10 * time.Millisecond)
				}
				return a.ok, a.err
			}
			var got int
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				got, err = nd.ReplicateMany([]string{"a", "b", "hung"}, one)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second): // the grace here is 1 s
				t.Fatal("replicateMany still waits for a backup that never answers")
			}
			if gotErr := err != nil; gotErr != tc.wantErr || (!tc.wantErr && got != tc.wantApplied) {
				t.Errorf("replicateMany = %d, %v; want %d applied, error %v", got, err, tc.wantApplied, tc.wantErr)
			}
			if tc.wantErr && protocol.CodeOf(err) != protocol.CodeNotOwner {
				t.Errorf("replicateMany error %v; want the backup's NotOwner", err)
			}
		})
	}
}

// OpReplicate is answered only by a holder of the partition on the same
// table (a primary takes a former holder's push), and only for entries a
// store could have written: the partition's keys, with a version and TTL
// in range, keys no longer than a store holds. A forged
// version of 2^64-1 used to be stored, after which the partition's next
// versions wrapped around and every later write of the key, logouts
// included, lost to it on the backup.
func TestCluster_replicatedEntriesAreChecked(t *testing.T) {
	c := nodetest.Start(t, 3)
	ctx := ctxFor(t)
	ci := c.Node(0).ClusterInfo()
	const key = "sess:victim"
	p := ring.Partition(key, ci.Partitions)
	byName := nodesByName(c)
	primary, backup := byName[ci.Members[ci.Owners[p][0]].Name], byName[ci.Members[ci.Owners[p][1]].Name]
	var other *node.Node
	for _, n := range byName {
		if n != primary && n != backup {
			other = n
		}
	}
	hash := doOn(ctx, backup, &protocol.Request{Op: protocol.OpPing}).Version
	replicate := func(to *node.Node, x protocol.Entry) *protocol.Response {
		return doOn(ctx, to, &protocol.Request{Op: protocol.OpReplicate, Key: primary.Name(), Partition: int32(p), TableHash: hash, Entries: []protocol.Entry{x}})
	}
	entry := func(mutate func(*protocol.Entry)) protocol.Entry {
		x := protocol.Entry{Key: key, Value: []byte("forged"), TTL: 60_000, Version: 1}
		mutate(&x)
		return x
	}
	otherKey, _ := notPrimaryOf(primary, func(i int) string { return fmt.Sprint("k", i) })
	for _, tc := range []struct {
		name string
		to   *node.Node
		x    protocol.Entry
		want protocol.Code
	}{
		{"to a node that does not hold the partition", other, entry(func(*protocol.Entry) {}), protocol.CodeNotOwner},
		{"version 2^64-1", backup, entry(func(x *protocol.Entry) { x.Version = math.MaxUint64 }), protocol.CodeBadRequest},
		{"version 0", backup, entry(func(x *protocol.Entry) { x.Version = 0 }), protocol.CodeBadRequest},
		{"ttl -5", backup, entry(func(x *protocol.Entry) { x.TTL = -5 }), protocol.CodeBadRequest},
		{"ttl 2^63-1", backup, entry(func(x *protocol.Entry) { x.TTL = math.MaxInt64 }), protocol.CodeBadRequest},
		{"a key of another partition", backup, entry(func(x *protocol.Entry) { x.Key = otherKey }), protocol.CodeBadRequest},
		{"a key longer than a store holds", backup, entry(func(x *protocol.Entry) { x.Key = "{" + key + "}" + strings.Repeat("k", 1<<16) }), protocol.CodeTooLarge},
	} {
		if r := replicate(tc.to, tc.x); r.Code != tc.want {
			t.Errorf("%s: %v %s; want %v", tc.name, r.Code, r.Msg, tc.want)
		}
	}
	if _, ok := backup.Store().Entry(key); ok {
		t.Fatal("the backup stored a refused entry")
	}
	// The same request with a well-formed entry is applied: the refusals
	// above are the checks', not the test's.
	if r := replicate(backup, entry(func(*protocol.Entry) {})); r.Code != protocol.CodeOK || r.N != 1 {
		t.Fatalf("a well-formed entry: %v %s, applied %d; want OK 1", r.Code, r.Msg, r.N)
	}
	// And a client's write and logout win over it, on the backup too.
	if r := doOn(ctx, c.Node(0), &protocol.Request{Op: protocol.OpSet, Key: key, Value: []byte("legit"), TTL: 60_000}); r.Code != protocol.CodeOK {
		t.Fatalf("SET: %v", r.Err())
	}
	if e, ok := backup.Store().Entry(key); !ok || string(e.Value) != "legit" {
		t.Errorf("backup after SET: %q, %v; want legit", e.Value, ok)
	}
	if r := doOn(ctx, c.Node(0), &protocol.Request{Op: protocol.OpDelete, Keys: []string{key}}); r.Code != protocol.CodeOK || r.N != 1 {
		t.Fatalf("DEL: %v, %d", r.Err(), r.N)
	}
	if e, ok := backup.Store().Entry(key); !ok || !e.Tombstone {
		t.Errorf("backup after DEL: %+v, %v; want a tombstone", e, ok)
	}
}
