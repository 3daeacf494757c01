package protocol

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestLimits_Check(t *testing.T) {
	l := Limits{MaxKey: 8, MaxValue: 16}
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"ok", Request{Op: OpSet, Key: "k", Value: make([]byte, 16)}, nil},
		{"empty key", Request{Op: OpGet}, ErrBadRequest},
		{"key over", Request{Op: OpGet, Key: strings.Repeat("k", 9)}, ErrTooLarge},
		{"one of keys over", Request{Op: OpDelete, Keys: []string{"a", strings.Repeat("k", 9)}}, ErrTooLarge},
		{"empty key among keys", Request{Op: OpDelete, Keys: []string{"a", ""}}, ErrBadRequest},
		{"delete with a token", Request{Op: OpDelete, Keys: []string{"a"}, Value: NewDeleteToken()}, nil},
		{"delete token short", Request{Op: OpDelete, Keys: []string{"a"}, Value: make([]byte, DeleteTokenLen-1)}, ErrBadRequest},
		{"delete token long", Request{Op: OpDelete, Keys: []string{"a"}, Value: make([]byte, DeleteTokenLen+1)}, ErrBadRequest},
		{"getdel with a token", Request{Op: OpGetAndDelete, Key: "a", Flags: FlagNoValue, Value: NewDeleteToken()}, nil},
		{"deletematch token short", Request{Op: OpDeleteMatch, Pattern: "u:*", Value: make([]byte, 3)}, ErrBadRequest},
		{"getdel token long", Request{Op: OpGetAndDelete, Key: "a", Flags: FlagNoValue, Value: make([]byte, DeleteTokenLen+1)}, ErrBadRequest},
		{"value over", Request{Op: OpSet, Key: "k", Value: make([]byte, 17)}, ErrTooLarge},
		{"negative count", Request{Op: OpScan, Count: -1}, ErrBadRequest},
		{"pattern at limit", Request{Op: OpScan, Pattern: strings.Repeat("*", 8)}, nil},
		{"pattern over", Request{Op: OpScan, Pattern: strings.Repeat("*", 9)}, ErrTooLarge},
		{"keyless op", Request{Op: OpPing}, nil},
		{"ttl at the limit", Request{Op: OpSet, Key: "k", TTL: MaxTTL}, nil},
		{"ttl over", Request{Op: OpSet, Key: "k", TTL: math.MaxInt64}, ErrBadRequest},
		{"ttl under", Request{Op: OpTouch, Key: "k", TTL: math.MinInt64}, ErrBadRequest},
		// A transaction's batch may fill a frame, less room for its fields.
		{"atomic batch over a value", Request{Op: OpAtomic, Value: make([]byte, l.MaxAtomicBatch())}, nil},
		{"atomic batch over", Request{Op: OpAtomic, Value: make([]byte, l.MaxAtomicBatch()+1)}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := l.Check(&c.req); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("Check: got %v; want %v", err, c.want)
			}
		})
	}
}

func TestLimits_zeroMeansDefaults(t *testing.T) {
	var l Limits
	if err := l.Check(&Request{Op: OpSet, Key: strings.Repeat("k", DefaultMaxKey), Value: make([]byte, DefaultMaxValue)}); err != nil {
		t.Errorf("zero Limits with a key and value at the defaults: got %v; want nil", err)
	}
	if got, want := l.MaxFrame(), DefaultMaxValue+DefaultMaxKey+64<<10; got != want {
		t.Errorf("MaxFrame: got %d; want %d", got, want)
	}
}

// A write of a key and a value at their limits fits in a frame, whatever
// the limits: the largest key a node takes is 64 KiB less one byte, as
// large as the room a frame had beyond its value.
func TestLimits_aWriteAtTheLimitsFitsAFrame(t *testing.T) {
	for _, l := range []Limits{{}, {MaxKey: 1<<16 - 1, MaxValue: 1 << 10}, {MaxKey: 1<<16 - 1, MaxValue: DefaultMaxValue}} {
		req := Request{Op: OpSet, ID: 1<<64 - 1, Key: strings.Repeat("k", l.WithDefaults().MaxKey),
			Value: make([]byte, l.WithDefaults().MaxValue), TTL: 1<<63 - 1, Version: 1<<64 - 1, Flags: FlagNoTTL}
		frame, err := AppendFrame(nil, &req)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(frame) - FrameHeader; n > l.MaxFrame() {
			t.Errorf("%v: a write at the limits is a frame of %d bytes; over MaxFrame", l, n)
		}
	}
}

// The read bound of an atomic batch never vanishes, however many requests
// it holds: past the most a batch between nodes holds, it stays where it
// is there (it used to reach 0 at 6,943 requests, and 0 meant no bound).
func TestLimits_MaxAtomicReads_neverVanishes(t *testing.T) {
	var l Limits
	least := l.MaxAtomicReads(maxBatch)
	if least < l.WithDefaults().MaxValue*3/4 {
		t.Errorf("MaxAtomicReads(%d) = %d; want most of a value (%d)", maxBatch, least, l.WithDefaults().MaxValue)
	}
	for _, n := range []int{maxBatch + 1, 6943, 100_000} {
		if got := l.MaxAtomicReads(n); got != least {
			t.Errorf("MaxAtomicReads(%d) = %d; want %d", n, got, least)
		}
	}
	if one := l.MaxAtomicReads(1); one <= least {
		t.Errorf("MaxAtomicReads(1) = %d; want more than with %d requests (%d)", one, maxBatch, least)
	}
}
