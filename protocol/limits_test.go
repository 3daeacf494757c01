package protocol

import (
	"errors"
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
		{"value over", Request{Op: OpSet, Key: "k", Value: make([]byte, 17)}, ErrTooLarge},
		{"negative count", Request{Op: OpScan, Count: -1}, ErrBadRequest},
		{"pattern at limit", Request{Op: OpScan, Pattern: strings.Repeat("*", 8)}, nil},
		{"pattern over", Request{Op: OpScan, Pattern: strings.Repeat("*", 9)}, ErrTooLarge},
		{"keyless op", Request{Op: OpPing}, nil},
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
	if got, want := l.MaxFrame(), DefaultMaxValue+64<<10; got != want {
		t.Errorf("MaxFrame: got %d; want %d", got, want)
	}
}
