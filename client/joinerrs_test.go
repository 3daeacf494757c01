package client

import (
	"fmt"
	"testing"

	"github.com/cloakroom/cloakroom/protocol"
)

// A split request whose groups failed for several reasons takes a lasting
// one's code, whatever order the groups finished in, so that it is not
// tried again (sendSplit).
func TestJoinErrs_lastingCodeFirst(t *testing.T) {
	auth := fmt.Errorf("hello n2: %w", protocol.Errorf(protocol.CodeAuth, "wrong password"))
	down := protocol.Errorf(protocol.CodeUnavailable, "n3 is down")
	for _, errs := range [][]error{{down, auth}, {auth, down}, {down, down, auth}} {
		if got := protocol.CodeOf(joinErrs(errs)); got != protocol.CodeAuth {
			t.Errorf("joinErrs(%q) has code %v; want auth", errs, got)
		}
	}
	if got := protocol.CodeOf(joinErrs([]error{down})); got != protocol.CodeUnavailable {
		t.Errorf("joinErrs of one unavailable has code %v", got)
	}
}
