package protocol

import (
	"errors"
	"fmt"
)

// Code is a response status. Codes are part of the wire protocol.
type Code uint8

// ONLY APPEND TO THIS LIST: codes are part of the wire protocol.
const (
	CodeOK Code = iota
	CodeNotFound
	CodeExists
	CodeConflict
	CodeTooLarge
	CodeBadRequest
	CodeUnknownOp
	CodeOutOfMemory
	CodeNotOwner
	CodeUnavailable
	CodeInternal
	CodeVersion
	CodeDisabled
	CodeAuth
	codeEnd // keep last
)

// Sentinel errors, one per code. Clients re-export them; check with errors.Is.
var (
	// ErrNotFound: the key does not exist (or has expired).
	ErrNotFound = errors.New("cloakroom: not found")
	// ErrExists: a create-only write found the key already there.
	ErrExists = errors.New("cloakroom: key exists")
	// ErrConflict: a compare-and-set found another version than expected.
	ErrConflict = errors.New("cloakroom: version conflict")
	// ErrTooLarge: a key, value or frame is over its limit.
	ErrTooLarge = errors.New("cloakroom: too large")
	// ErrBadRequest: the request is malformed or its arguments are invalid.
	ErrBadRequest = errors.New("cloakroom: bad request")
	// ErrUnknownOp: the node does not know the op code.
	ErrUnknownOp = errors.New("cloakroom: unknown op")
	// ErrOutOfMemory: the node is at --max-memory and could not evict enough.
	ErrOutOfMemory = errors.New("cloakroom: out of memory")
	// ErrNotOwner: the node does not own the key's partition.
	ErrNotOwner = errors.New("cloakroom: not the owner")
	// ErrUnavailable: the node cannot serve the call now (shutting down, no
	// quorum, replicas unreachable); the call may succeed elsewhere or later.
	ErrUnavailable = errors.New("cloakroom: unavailable")
	// ErrInternal: a bug or unexpected failure on the node.
	ErrInternal = errors.New("cloakroom: internal error")
	// ErrVersion: the peer speaks an unsupported protocol version.
	ErrVersion = errors.New("cloakroom: protocol version mismatch")
	// ErrDisabled: the operation is disabled on this node (e.g. flush).
	ErrDisabled = errors.New("cloakroom: disabled")
	// ErrAuth: the node requires a password (--native-password) and the
	// connection's hello did not carry it.
	ErrAuth = errors.New("cloakroom: authentication failed")
)

// codeErrors is the one table mapping codes to sentinel errors.
var codeErrors = [...]error{
	CodeNotFound:    ErrNotFound,
	CodeExists:      ErrExists,
	CodeConflict:    ErrConflict,
	CodeTooLarge:    ErrTooLarge,
	CodeBadRequest:  ErrBadRequest,
	CodeUnknownOp:   ErrUnknownOp,
	CodeOutOfMemory: ErrOutOfMemory,
	CodeNotOwner:    ErrNotOwner,
	CodeUnavailable: ErrUnavailable,
	CodeInternal:    ErrInternal,
	CodeVersion:     ErrVersion,
	CodeDisabled:    ErrDisabled,
	CodeAuth:        ErrAuth,
}

// Error is a non-OK response as a Go error. It matches its sentinel with
// errors.Is and carries the node's message.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string {
	s := e.Code.Err().Error()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns the sentinel for e's code.
func (e *Error) Unwrap() error { return e.Code.Err() }

// Err returns the sentinel error for c, or nil for CodeOK.
func (c Code) Err() error {
	if c == CodeOK {
		return nil
	}
	if c < codeEnd {
		return codeErrors[c]
	}
	return fmt.Errorf("cloakroom: unknown error code %d", uint8(c))
}

// CodeOf returns the code whose sentinel err wraps, CodeInternal if none.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c := CodeNotFound; c < codeEnd; c++ { // a bare sentinel: no allocation
		if err == codeErrors[c] {
			return c
		}
	}
	if pe, ok := err.(*Error); ok {
		return pe.Code
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	for c := CodeNotFound; c < codeEnd; c++ {
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	return CodeInternal
}

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// Wrapf returns an *Error with code c whose message is the formatted
// context, then err's message without the words of c's sentinel, which the
// code already says: a forward whose dial failed reads "forward: set n3:
// dial tcp …", not "forward: set n3: cloakroom: unavailable: dial tcp …".
// err's words for another code are kept; an err that is only c's words
// (or nil) adds nothing.
func Wrapf(c Code, err error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if err == nil {
		return &Error{Code: c, Msg: msg}
	}
	why := err.Error()
	if sentinel := c.Err(); sentinel != nil {
		if why = withoutWords(why, sentinel.Error()); why == "" {
			return &Error{Code: c, Msg: msg}
		}
	}
	return &Error{Code: c, Msg: msg + ": " + why}
}

var codeNames = [...]string{
	CodeOK: "ok", CodeNotFound: "not_found", CodeExists: "exists", CodeConflict: "conflict",
	CodeTooLarge: "too_large", CodeBadRequest: "bad_request", CodeUnknownOp: "unknown_op",
	CodeOutOfMemory: "out_of_memory", CodeNotOwner: "not_owner", CodeUnavailable: "unavailable",
	CodeInternal: "internal", CodeVersion: "version", CodeDisabled: "disabled",
	CodeAuth: "auth",
}

func (c Code) String() string {
	if c < codeEnd {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint8(c))
}
