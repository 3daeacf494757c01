package node

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// nodeMeta is what a node gossips about itself (memberlist caps it at 512
// bytes). ONLY APPEND fields: it is encoded as an array.
type nodeMeta struct {
	_msgpack struct{} `msgpack:",as_array"`

	Cluster    string // cluster name; members of other clusters are refused
	Partitions int    // partition count; must match
	Proto      int    // native protocol version
	Addr       string // advertised native address
	RESPAddr   string // advertised Redis address, "" if disabled
	HTTPAddr   string // advertised HTTP address, "" if disabled
	StartID    uint64 // random per process start: a restart is a new holder
	Table      uint64 // version of the node's current partition table
	TableHash  uint64 // hash of the member set that table was computed from
	Leaving    bool   // set during a graceful shutdown
}

const maxMetaSize = 512

func (m *nodeMeta) encode() ([]byte, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("node metadata is %d bytes; memberlist allows %d (shorten the advertised addresses or cluster name)", len(b), maxMetaSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (*nodeMeta, error) {
	if len(b) == 0 || len(b) > maxMetaSize {
		return nil, fmt.Errorf("metadata of %d bytes", len(b))
	}
	var m nodeMeta
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bad metadata: %w", err)
	}
	return &m, nil
}
