package store

import (
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// The changes ExecTracked reports undo exactly the write they came from:
// a write that ran before it on the key stays (the Before is the entry the
// write replaced, not an older one), and so does one that ran after it.
func TestStore_ExecTracked_undoesExactlyItsOwnWrite(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	pi := s.PartitionOf("k")
	first := set(s, "k", "first", time.Minute)
	var resp protocol.Response
	ch := s.ExecTracked(pi, &protocol.Request{Op: protocol.OpSet, Key: "k", Value: []byte("mine"), TTL: 60_000}, &resp)
	if resp.Code != protocol.CodeOK || len(ch) != 1 {
		t.Fatalf("SET: %v, %d changes", resp.Err(), len(ch))
	}
	c := ch[0]
	if !c.Had || string(c.Before.Value) != "first" || c.Before.Version != first.Version {
		t.Fatalf("before = %+v (had %v); want the first write", c.Before, c.Had)
	}
	if !c.Has || string(c.After.Value) != "mine" || !c.Changed() {
		t.Fatalf("after = %+v (has %v, changed %v); want this write", c.After, c.Has, c.Changed())
	}
	// Undone while nothing else has written: back to the first write.
	if !s.Revert(c.Key, c.After.Version, c.Before, c.Had) {
		t.Fatal("revert refused")
	}
	wantValue(t, s, "k", "first")

	// A write after this one is never undone by it.
	ch = s.ExecTracked(pi, &protocol.Request{Op: protocol.OpSet, Key: "k", Value: []byte("mine"), TTL: 60_000}, &resp)
	set(s, "k", "later", time.Minute)
	if s.Revert(ch[0].Key, ch[0].After.Version, ch[0].Before, ch[0].Had) {
		t.Fatal("reverted over a later write")
	}
	wantValue(t, s, "k", "later")

	// A delete, of a key there and one not: a tombstone after, or nothing.
	ch = s.ExecTracked(pi, &protocol.Request{Op: protocol.OpDelete, Keys: []string{"k", "none"}}, &resp)
	if resp.Code != protocol.CodeOK || resp.N != 1 || len(ch) != 2 {
		t.Fatalf("DEL: %v, N %d, %d changes", resp.Err(), resp.N, len(ch))
	}
	if !ch[0].Had || !ch[0].After.Tombstone || !ch[0].Changed() {
		t.Fatalf("DEL k: %+v; want the live entry before and a tombstone after", ch[0])
	}
	if ch[1].Had || ch[1].Changed() {
		t.Fatalf("DEL none: %+v; want no change", ch[1])
	}
	if !s.Revert(ch[0].Key, ch[0].After.Version, ch[0].Before, ch[0].Had) {
		t.Fatal("revert of the delete refused")
	}
	wantValue(t, s, "k", "later")
}

// ExecAtomicTracked reports each named key once, across the whole batch.
func TestStore_ExecAtomicTracked_reportsEachKeyAcrossTheBatch(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	set(s, "{u}a", "old", time.Minute)
	reqs := []*protocol.Request{
		{Op: protocol.OpSet, Key: "{u}a", Value: []byte("1"), TTL: 60_000},
		{Op: protocol.OpSet, Key: "{u}a", Value: []byte("2"), TTL: 60_000},
		{Op: protocol.OpGet, Key: "{u}b"},
	}
	resps := []*protocol.Response{{}, {}, {}}
	ch, err := s.ExecAtomicTracked(reqs, resps, []string{"{u}a", "{u}b"}, 0)
	if err != nil || len(ch) != 2 {
		t.Fatalf("batch: %v, %d changes", err, len(ch))
	}
	if string(ch[0].Before.Value) != "old" || string(ch[0].After.Value) != "2" || !ch[0].Changed() {
		t.Fatalf("{u}a: %+v; want old before and 2 after", ch[0])
	}
	if ch[1].Had || ch[1].Has || ch[1].Changed() {
		t.Fatalf("{u}b, only read: %+v; want no change", ch[1])
	}
}
