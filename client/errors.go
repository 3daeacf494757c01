package client

import "github.com/cloakroom/cloakroom/protocol"

// Errors returned by the client; check them with errors.Is.
var (
	// ErrNotFound: the session does not exist, has expired or was deleted.
	ErrNotFound = protocol.ErrNotFound
	// ErrExists: Add found the key already there.
	ErrExists = protocol.ErrExists
	// ErrConflict: CompareAndSwap found a different version.
	ErrConflict = protocol.ErrConflict
	// ErrTooLarge: a key or value is over the node's limit.
	ErrTooLarge = protocol.ErrTooLarge
	// ErrBadRequest: invalid arguments, such as an empty key or a TTL <= 0.
	ErrBadRequest = protocol.ErrBadRequest
	// ErrOutOfMemory: the node is full and could not evict enough.
	ErrOutOfMemory = protocol.ErrOutOfMemory
	// ErrUnavailable: no node could be reached or the node cannot serve now.
	ErrUnavailable = protocol.ErrUnavailable
	// ErrAuth: a node requires a password (Config.Password) that the
	// client did not give. Calls that get it are not retried.
	ErrAuth = protocol.ErrAuth
)
