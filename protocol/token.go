package protocol

import (
	"encoding/binary"
	"math/rand/v2"
)

// DeleteTokenLen is the length of an OpDelete's token.
const DeleteTokenLen = 8

// NewDeleteToken returns a random token for one delete call, to send with
// each of its attempts as the request's Value (see OpDelete).
func NewDeleteToken() []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, DeleteTokenLen), rand.Uint64())
}
