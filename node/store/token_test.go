package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func del(s *Store, token []byte, keys ...string) int64 {
	return exec(s, protocol.Request{Op: protocol.OpDelete, Keys: keys, Value: token}).N
}

// A delete sent again with its token counts the keys its earlier attempt
// deleted, and no other delete does: one without the token, or with
// another, finds them gone.
func TestStore_Delete_tokenCountsAnAttemptsOwnDeletes(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 7})
	set(s, "short", "1", time.Minute) // a value shorter than a token: the tombstone moves
	set(s, "long", string(bytes.Repeat([]byte("v"), 300)), time.Minute)
	set(s, "none", "1", time.Minute)
	tok, other := protocol.NewDeleteToken(), protocol.NewDeleteToken()
	if n := del(s, tok, "short", "long", "absent"); n != 2 {
		t.Fatalf("first attempt counted %d; want 2", n)
	}
	if n := del(s, tok, "short", "long", "absent"); n != 2 {
		t.Fatalf("the same call again counted %d; want 2, what its first attempt deleted", n)
	}
	if n := del(s, other, "short", "long"); n != 0 {
		t.Errorf("another call counted %d; want 0", n)
	}
	if n := del(s, nil, "short", "long"); n != 0 {
		t.Errorf("a call without a token counted %d; want 0", n)
	}
	if n := del(s, nil, "none"); n != 1 {
		t.Fatalf("delete without a token counted %d; want 1", n)
	}
	if n := del(s, nil, "none"); n != 0 {
		t.Errorf("a tokenless tombstone counted again: %d; want 0", n)
	}
	// A key named twice in one call counts once, in a short list and in a
	// long one.
	set(s, "d1", "1", time.Minute)
	set(s, "d2", "1", time.Minute)
	if n := del(s, protocol.NewDeleteToken(), "d1", "d1", "d2"); n != 2 {
		t.Errorf("delete naming a key twice counted %d; want 2", n)
	}
	set(s, "d1", "1", time.Minute)
	if n := del(s, protocol.NewDeleteToken(), "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "d1", "d1"); n != 1 {
		t.Errorf("long delete naming a key twice counted %d; want 1", n)
	}
	// A DEL's key in a pipeline or a transaction is a GETDEL that only
	// says whether it was there (FlagNoValue): the same token counts it.
	set(s, "p", "1", time.Minute)
	getdel := func(token []byte, flags protocol.Flags) protocol.Code {
		return exec(s, protocol.Request{Op: protocol.OpGetAndDelete, Key: "p", Value: token, Flags: flags}).Code
	}
	if c := getdel(tok, protocol.FlagNoValue); c != protocol.CodeOK {
		t.Fatalf("GETDEL of a live key: %v; want OK", c)
	}
	if c := getdel(tok, protocol.FlagNoValue); c != protocol.CodeOK {
		t.Errorf("GETDEL sent again with its token: %v; want OK, as its first attempt", c)
	}
	if c := getdel(other, protocol.FlagNoValue); c != protocol.CodeNotFound {
		t.Errorf("GETDEL with another token: %v; want NotFound", c)
	}
	if c := getdel(tok, 0); c != protocol.CodeNotFound {
		t.Errorf("GETDEL that reads the value, sent again: %v; want NotFound, the value is gone", c)
	}
	// GETDEL keeps no token: no DEL finds its key but as gone.
	set(s, "gd", "1", time.Minute)
	exec(s, protocol.Request{Op: protocol.OpGetAndDelete, Key: "gd"})
	if n := del(s, tok, "gd"); n != 0 {
		t.Errorf("DEL after GETDEL counted %d; want 0", n)
	}
	// A key set again is live: any delete counts it, and its tombstone
	// takes the new call's token.
	set(s, "short", "2", time.Minute)
	if n := del(s, other, "short"); n != 1 {
		t.Errorf("delete of a key set again counted %d; want 1", n)
	}
	if n := del(s, tok, "short"); n != 0 {
		t.Errorf("the old call's token counted %d on the new tombstone; want 0", n)
	}
	for _, k := range []string{"short", "long", "gd"} {
		wantMissing(t, s, k)
	}
	st := s.Stats()
	if st.Keys != 0 || st.Tombstones != 7 {
		t.Errorf("keys=%d tombstones=%d; want 0 and 7", st.Keys, st.Tombstones)
	}
	if used := s.usedMemory(); used != st.UsedMemory() {
		t.Errorf("usedMemory %d; want %d", used, st.UsedMemory())
	}
}

// A tombstone's token travels with it, to a backup (Entry, Apply) and to a
// new owner (Fetch), and comes back with a revert: the call's next attempt
// may reach any of them.
func TestStore_Delete_tokenTravelsWithTheTombstone(t *testing.T) {
	src, _ := newTestStore(t, Config{Partitions: 3})
	tok := protocol.NewDeleteToken()
	set(src, "k", "1", time.Minute)
	set(src, "j", "1", time.Minute)
	del(src, tok, "k", "j")
	x, ok := src.Entry("k")
	if !ok || !x.Tombstone || !bytes.Equal(x.Value, tok) {
		t.Fatalf("Entry of the tombstone: %+v; want a tombstone with value %x", x, tok)
	}

	backup, _ := newTestStore(t, Config{Partitions: 3})
	if ok, err := backup.Apply(&x); !ok || err != nil {
		t.Fatalf("Apply: %v, %v", ok, err)
	}
	if n := del(backup, tok, "k"); n != 1 {
		t.Errorf("the backup counted %d for the call's token; want 1", n)
	}

	owner, _ := newTestStore(t, Config{Partitions: 3})
	for p := range src.Partitions() {
		es, _ := src.Fetch(p, 0, 1<<20)
		if _, err := owner.ApplyBatch(es); err != nil {
			t.Fatal(err)
		}
	}
	if n := del(owner, tok, "k", "j"); n != 2 {
		t.Errorf("the new owner counted %d for the call's token; want 2", n)
	}

	// A write over the tombstone that the cluster did not acknowledge is
	// undone, back to the tombstone and its token.
	w := set(src, "k", "2", time.Minute)
	if !src.Revert("k", w.Version, x, true) {
		t.Fatal("revert refused")
	}
	if n := del(src, tok, "k"); n != 1 {
		t.Errorf("after a revert to the tombstone, counted %d; want 1", n)
	}

	// A tombstone arriving with a value that is no token keeps none.
	odd := protocol.Entry{Key: "odd", Value: []byte("not a token"), TTL: 60_000, Version: 99, Tombstone: true}
	if ok, err := backup.Apply(&odd); !ok || err != nil {
		t.Fatalf("Apply: %v, %v", ok, err)
	}
	if got, _ := backup.Entry("odd"); !got.Tombstone || len(got.Value) != 0 {
		t.Errorf("tombstone applied with a stray value: %+v; want a tombstone without one", got)
	}
}

// "Log out everywhere" (OpDeleteMatch) sent again with its token counts
// the sessions its earlier attempt ended; another call counts none.
func TestStore_DeleteMatch_tokenCountsAnAttemptsOwnDeletes(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	for _, k := range []string{"u:a:1", "u:a:2", "u:b:1"} {
		set(s, k, "1", time.Minute)
	}
	match := func(token []byte) (int64, []string) {
		r := exec(s, protocol.Request{Op: protocol.OpDeleteMatch, Partition: 0, Pattern: "u:a:*", Value: token})
		if r.Code != protocol.CodeOK {
			t.Fatal(r.Err())
		}
		return r.N, r.Keys
	}
	tok := protocol.NewDeleteToken()
	if n, keys := match(tok); n != 2 || len(keys) != 2 {
		t.Fatalf("first attempt: %d, %v; want 2", n, keys)
	}
	if n, keys := match(tok); n != 2 || len(keys) != 2 {
		t.Errorf("the same call again: %d, %v; want 2, the keys its first attempt deleted", n, keys)
	}
	if n, _ := match(protocol.NewDeleteToken()); n != 0 {
		t.Errorf("another call: %d; want 0", n)
	}
	if n, _ := match(nil); n != 0 {
		t.Errorf("a call without a token: %d; want 0", n)
	}
	wantValue(t, s, "u:b:1", "1")
}

// With the arena full and nothing more to map, a delete still goes
// through: a tombstone without the token it has no room for goes in place
// of an entry whose value is shorter than a token, deleted here or
// replicated from the primary.
func TestStore_Delete_withNoRoomForItsToken_goesInPlaceWithoutIt(t *testing.T) {
	s, _ := newTestStore(t, Config{Partitions: 1})
	set(s, "tiny", "1", time.Minute)
	set(s, "tiny2", "1", time.Minute)
	s.alloc.mu.Lock()
	s.alloc.warm, s.alloc.spare, s.alloc.cold = nil, nil, nil
	s.alloc.mapper = func(int) ([]byte, error) { return nil, errors.New("no memory to map") }
	s.alloc.mu.Unlock()
	full := false
	for i := 0; i < chunkSize && !full; i++ {
		full = set(s, fmt.Sprint("fill", i), "0123456789", time.Minute).Code != protocol.CodeOK
	}
	if !full {
		t.Fatal("the arena took a chunk's worth of sets with nothing to map")
	}
	tok := protocol.NewDeleteToken()
	if n := del(s, tok, "tiny"); n != 1 {
		t.Fatalf("delete with the arena full counted %d; want 1", n)
	}
	x := protocol.Entry{Key: "tiny2", TTL: 60_000, Version: 1 << 60, Tombstone: true, Value: tok}
	if ok, err := s.Apply(&x); !ok || err != nil {
		t.Fatalf("applying a tombstone with the arena full: %v, %v; want applied", ok, err)
	}
	for _, k := range []string{"tiny", "tiny2"} {
		wantMissing(t, s, k)
		if e, _ := s.Entry(k); !e.Tombstone || len(e.Value) != 0 {
			t.Errorf("%s: %+v; want a tombstone without a token", k, e)
		}
	}
	if used := s.usedMemory(); used != s.Stats().UsedMemory() {
		t.Errorf("usedMemory %d; want %d", used, s.Stats().UsedMemory())
	}
}
