package node_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
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
