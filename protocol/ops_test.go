package protocol

import "testing"

func TestRequest_Repeatable(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want bool
	}{
		{"get", Request{Op: OpGet}, true},
		{"set", Request{Op: OpSet}, true},
		{"set with ttl", Request{Op: OpSet, TTL: 1000}, true},
		{"touch", Request{Op: OpTouch}, true},
		{"delete", Request{Op: OpDelete}, true},
		{"set if absent", Request{Op: OpSet, Flags: FlagIfAbsent}, false},
		{"set if present", Request{Op: OpSet, Flags: FlagIfPresent}, false},
		{"set if version", Request{Op: OpSet, Flags: FlagIfVersion}, false},
		{"set returning the old value", Request{Op: OpSet, Flags: FlagReturnOld}, false},
		{"expire if it has none", Request{Op: OpTouch, Flags: FlagTTLIfNone}, false},
		{"expire if it has one", Request{Op: OpTouch, Flags: FlagTTLIfSet}, false},
		{"expire if greater", Request{Op: OpTouch, Flags: FlagTTLIfGreater}, false},
		{"expire if less", Request{Op: OpTouch, Flags: FlagTTLIfLess}, false},
		{"get and delete", Request{Op: OpGetAndDelete}, false},
		{"get and touch", Request{Op: OpGetAndTouch, TTL: 1000, Flags: FlagAllowPast}, true},
		{"get and persist", Request{Op: OpGetAndTouch, Flags: FlagNoTTL}, true},
		{"get and expire at once", Request{Op: OpGetAndTouch, TTL: 0, Flags: FlagAllowPast}, false},
		{"touch, expiring at once", Request{Op: OpTouch, TTL: 0, Flags: FlagAllowPast}, true},
	} {
		if got := tc.req.Repeatable(); got != tc.want {
			t.Errorf("%s: Repeatable() = %v; want %v", tc.name, got, tc.want)
		}
	}
}
