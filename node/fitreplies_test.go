package node

import (
	"bytes"
	"testing"

	"github.com/cloakroom/cloakroom/protocol"
)

// The last resort for an atomic step that ran: its reply must fit, however
// many values it drops, each replaced by a message longer than a small
// value.
func TestFitReplies_fitsWhateverItReplaces(t *testing.T) {
	limit := protocol.DefaultLimits().MaxAtomicBatch()
	for _, size := range []int{1100, 20000} {
		value := bytes.Repeat([]byte{'v'}, size)
		resps := make([]*protocol.Response, 1024)
		for i := range resps {
			resps[i] = &protocol.Response{Value: value, Version: 1 << 60}
		}
		resps[0].Value = nil // a write's answer stays
		b, err := fitReplies(resps, limit)
		if err != nil {
			t.Fatalf("%d-byte values: %v", size, err)
		}
		if len(b) > limit {
			t.Errorf("%d-byte values: reply of %d bytes; want at most %d", size, len(b), limit)
		}
		got, err := protocol.DecodeResponseBatch(b)
		if err != nil || len(got) != len(resps) {
			t.Fatalf("%d-byte values: decoded %d replies, %v", size, len(got), err)
		}
		kept := 0
		for _, r := range got[1:] {
			switch {
			case r.Code == protocol.CodeOK && len(r.Value) == size:
				kept++
			case r.Code != protocol.CodeTooLarge:
				t.Fatalf("%d-byte values: a reply is %v with %d bytes", size, r.Code, len(r.Value))
			}
		}
		if got[0].Code != protocol.CodeOK {
			t.Errorf("%d-byte values: the write's answer became %v", size, got[0].Code)
		}
		t.Logf("%d-byte values: %d of 1023 kept, reply %d bytes", size, kept, len(b))
	}
}
