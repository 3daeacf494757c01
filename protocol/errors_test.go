package protocol

import (
	"errors"
	"fmt"
	"testing"
)

func TestWrapf(t *testing.T) {
	dial := fmt.Errorf("%w: dial tcp 127.0.0.1:7001: connect: connection refused", ErrUnavailable)
	for _, tc := range []struct {
		code Code
		err  error
		want string
	}{
		// The code's own words go: the code says them.
		{CodeUnavailable, fmt.Errorf("set n3: %w", dial), "forward: set n3: dial tcp 127.0.0.1:7001: connect: connection refused"},
		{CodeUnavailable, Errorf(CodeUnavailable, "no quorum"), "forward: no quorum"},
		// Another code's words stay: they say something the code does not.
		{CodeUnavailable, Errorf(CodeNotOwner, "n2 is not the primary"), "forward: cloakroom: not the owner: n2 is not the primary"},
		{CodeUnavailable, errors.New("EOF"), "forward: EOF"},
		// Nothing but the code's words, or nothing: the context alone.
		{CodeUnavailable, ErrUnavailable, "forward"},
		{CodeNotOwner, &Error{Code: CodeNotOwner}, "forward"},
		{CodeUnavailable, nil, "forward"},
	} {
		e := Wrapf(tc.code, tc.err, "forward")
		if e.Code != tc.code || e.Msg != tc.want {
			t.Errorf("Wrapf(%v, %q) = %v %q; want %v %q", tc.code, tc.err, e.Code, e.Msg, tc.code, tc.want)
		}
	}
}
