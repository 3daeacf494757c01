package node

import (
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestAgeTTLs(t *testing.T) {
	es := []protocol.Entry{{TTL: 5000}, {TTL: 300}, {TTL: -1}, {TTL: 0}}
	ageTTLs(es, 400*time.Millisecond+900*time.Microsecond)
	want := []int64{4600, 1, -1, 0} // run out: 1 ms; no expiry stays none
	for i, e := range es {
		if e.TTL != want[i] {
			t.Errorf("entry %d: TTL %d after 400 ms; want %d", i, e.TTL, want[i])
		}
	}
}
