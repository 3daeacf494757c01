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

// A response set from a wrapped error keeps the context and says the
// code's words once, as Err puts them first.
func TestResponse_SetErr_saysTheCodeOnce(t *testing.T) {
	refused := fmt.Errorf("hello 127.0.0.1:7401: %w", Errorf(CodeAuth, "node a requires its password"))
	for _, tc := range []struct {
		err  error
		want string
	}{
		{refused, "cloakroom: authentication failed: hello 127.0.0.1:7401: node a requires its password"},
		{errors.Join(refused, ErrNotFound), "cloakroom: authentication failed: hello 127.0.0.1:7401: node a requires its password\ncloakroom: not found"},
		{ErrAuth, "cloakroom: authentication failed"},
		{fmt.Errorf("node x closed the connection: %w", ErrUnavailable), "cloakroom: unavailable: node x closed the connection"},
		{fmt.Errorf("%w", ErrUnavailable), "cloakroom: unavailable"},
		{errors.Join(fmt.Errorf("a: %w", ErrUnavailable), ErrUnavailable, fmt.Errorf("%w: b", ErrUnavailable)), "cloakroom: unavailable: a\nb"},
		{Errorf(CodeAuth, "bare"), "cloakroom: authentication failed: bare"},
	} {
		var r Response
		r.SetErr(tc.err)
		if got := r.Err().Error(); got != tc.want {
			t.Errorf("SetErr(%q): Err() = %q; want %q", tc.err, got, tc.want)
		}
	}
}
