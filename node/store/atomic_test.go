package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestStore_ExecAtomic_guardsAndCrossSlot(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	w := set(s, "{u}a", "1", time.Minute)
	reqs := []*protocol.Request{
		{Op: protocol.OpGet, Key: "{u}a", Flags: protocol.FlagIfVersion, Version: w.Version},
		{Op: protocol.OpSet, Key: "{u}a", Value: []byte("2"), TTL: 60000},
		{Op: protocol.OpSet, Key: "{u}b", Value: []byte("3"), TTL: 60000},
	}
	resps := make([]*protocol.Response, len(reqs))
	for i := range resps {
		resps[i] = new(protocol.Response)
	}
	if err := s.ExecAtomic(reqs, resps); err != nil {
		t.Fatalf("atomic batch: %v", err)
	}
	wantValue(t, s, "{u}a", "2")
	wantValue(t, s, "{u}b", "3")
	// The guard now holds a stale version: nothing runs.
	reqs[1].Value = []byte("lost")
	if err := s.ExecAtomic(reqs, resps); !errors.Is(err, protocol.ErrConflict) {
		t.Fatalf("stale guard: %v; want ErrConflict", err)
	}
	wantValue(t, s, "{u}a", "2")
	cross := []*protocol.Request{{Op: protocol.OpGet, Key: "a"}, {Op: protocol.OpGet, Key: "b"}}
	if err := s.ExecAtomic(cross, resps[:2]); !errors.Is(err, protocol.ErrBadRequest) {
		t.Fatalf("cross-partition batch: %v; want ErrBadRequest", err)
	}
}

func TestStore_ExecAtomic_refusesReadsPastTheLimitBeforeRunning(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	big := strings.Repeat("x", 1000)
	set(s, "{u}big", big, time.Minute)
	atomic := func(limit int, reqs ...*protocol.Request) ([]*protocol.Response, error) {
		resps := make([]*protocol.Response, len(reqs))
		for i := range resps {
			resps[i] = new(protocol.Response)
		}
		_, err := s.ExecAtomicTracked(reqs, resps, nil, limit)
		return resps, err
	}
	get := func(key string) *protocol.Request { return &protocol.Request{Op: protocol.OpGet, Key: key} }
	write := &protocol.Request{Op: protocol.OpSet, Key: "{u}w", Value: []byte("ran"), TTL: 60000}

	// 4 x 1000 bytes fit in 4000; 5 do not, and then nothing runs, the
	// write before the reads included.
	if _, err := atomic(4000, write, get("{u}big"), get("{u}big"), get("{u}big"), get("{u}big")); err != nil {
		t.Fatalf("four reads within the limit: %v", err)
	}
	s.Exec(&protocol.Request{Op: protocol.OpDelete, Keys: []string{"{u}w"}}, new(protocol.Response))
	_, err := atomic(4000, write, get("{u}big"), get("{u}big"), get("{u}big"), get("{u}big"), get("{u}big"))
	if !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("five reads of 1000 bytes, limit 4000: %v; want ErrTooLarge", err)
	}
	wantMissing(t, s, "{u}w")
	wantValue(t, s, "{u}big", big)

	// Reads count what the batch's own writes leave: a SET that grows a
	// value, a GETDEL that removes it, a SET ... GET that returns the old.
	grow := &protocol.Request{Op: protocol.OpSet, Key: "{u}big", Value: []byte(strings.Repeat("y", 3000)), TTL: 60000}
	if _, err := atomic(3500, grow, get("{u}big")); err != nil {
		t.Fatalf("SET then GET of 3000 bytes, limit 3500: %v", err)
	}
	if _, err := atomic(3500, grow, get("{u}big"), get("{u}big")); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("SET then two GETs of 3000 bytes, limit 3500: %v; want ErrTooLarge", err)
	}
	getdel := &protocol.Request{Op: protocol.OpGetAndDelete, Key: "{u}big"}
	if _, err := atomic(3500, getdel, get("{u}big"), get("{u}big")); err != nil {
		t.Fatalf("GETDEL then GETs of the deleted key: %v", err)
	}
	set(s, "{u}big", big, time.Minute)
	swap := &protocol.Request{Op: protocol.OpSet, Key: "{u}big", Value: []byte("z"), TTL: 60000, Flags: protocol.FlagReturnOld}
	if _, err := atomic(999, swap); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("SET ... GET of a 1000-byte value, limit 999: %v; want ErrTooLarge", err)
	}
	wantValue(t, s, "{u}big", big)

	// A GETDEL that wants no value (a DEL in a transaction) reads none.
	del := &protocol.Request{Op: protocol.OpGetAndDelete, Key: "{u}big", Flags: protocol.FlagNoValue}
	resps, err := atomic(10, del)
	if err != nil || resps[0].Code != protocol.CodeOK || len(resps[0].Value) != 0 {
		t.Fatalf("GETDEL with FlagNoValue of a 1000-byte value, limit 10: %v, %v with %d bytes; want OK, no value", err, resps[0].Code, len(resps[0].Value))
	}
	wantMissing(t, s, "{u}big")

	// A guard (WATCH) reads no value: it answers the version it checked.
	w := set(s, "{u}big", big, time.Minute)
	guard := &protocol.Request{Op: protocol.OpGet, Key: "{u}big", Flags: protocol.FlagIfVersion, Version: w.Version}
	resps, err = atomic(10, guard, write)
	if err != nil {
		t.Fatalf("a guard on a 1000-byte value, limit 10: %v", err)
	}
	if r := resps[0]; r.Code != protocol.CodeOK || len(r.Value) != 0 || r.Version != w.Version {
		t.Fatalf("guard's response: code %v, %d bytes, version %d; want OK, no value, version %d", r.Code, len(r.Value), r.Version, w.Version)
	}
	wantValue(t, s, "{u}w", "ran")
}
