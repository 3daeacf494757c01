package protocol

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// NodeStatus is one node's account of itself, the reply Value of OpStatus.
// ONLY APPEND fields: it is encoded as an array.
type NodeStatus struct {
	_msgpack struct{} `msgpack:",as_array"`

	Name         string
	TableVersion uint64
	Members      int
	Primaries    int // partitions this node is primary for
	Backups      int // partitions this node backs up
	Keys         int64
	Tombstones   int64
	MemoryUsed   int64
	MemoryMax    int64
	Evictions    int64
	Ready        bool
	NotReady     string // why not, when not Ready

	// Transfers: partitions arriving here, partitions this node still
	// sends to new holders, and progress since the last idle moment.
	Arriving        int
	Sending         int
	TransferDone    int   // partitions completed since transfers last started
	TransferTotal   int   // partitions queued since transfers last started
	TransferEntries int64 // entries moved since transfers last started
	TransferSeconds float64
	UnderReplicated int // partitions with fewer complete copies than wanted, as this node sees them
}

// EncodeNodeStatus encodes s for OpStatus's reply Value.
func EncodeNodeStatus(s *NodeStatus) ([]byte, error) { return msgpack.Marshal(s) }

// DecodeNodeStatus decodes an OpStatus reply Value.
func DecodeNodeStatus(b []byte) (*NodeStatus, error) {
	var s NodeStatus
	if err := msgpack.Unmarshal(b, &s); err != nil {
		return nil, malformed(fmt.Errorf("node status: %w", err))
	}
	return &s, nil
}
