package node

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// nodeMeta is what a node gossips about itself (memberlist caps it at 512
// bytes), encoded as a msgpack array of its fields in order. ONLY APPEND
// fields, and add each to fields.
//
// A node before RESPTLSAddr decodes the array into a struct, which refuses
// any other number of fields, and it then refuses the member ("refusing
// member" in its log). So the fields after the first ten are sent only
// when one of them is set: a node that does not use them is read by those
// nodes as before, and a node that does (TLS for Redis clients) needs
// every member upgraded first. This version reads metadata of any length:
// the fields it knows, in order, the rest zero or skipped.
type nodeMeta struct {
	Cluster     string // cluster name; members of other clusters are refused
	Partitions  int    // partition count; must match
	Proto       int    // native protocol version
	Addr        string // advertised native address
	RESPAddr    string // advertised Redis address, "" if disabled
	HTTPAddr    string // advertised HTTP address, "" if disabled
	StartID     uint64 // random per process start: a restart is a new holder
	Table       uint64 // version of the node's current partition table
	TableHash   uint64 // hash of the member set that table was computed from
	Leaving     bool   // set during a graceful shutdown
	RESPTLSAddr string // advertised Redis TLS address, "" if disabled
}

// firstMetaFields is how many fields the first release's nodeMeta had.
const firstMetaFields = 10

// fields returns pointers to m's fields, in their order in the array.
func (m *nodeMeta) fields() []any {
	return []any{&m.Cluster, &m.Partitions, &m.Proto, &m.Addr, &m.RESPAddr, &m.HTTPAddr,
		&m.StartID, &m.Table, &m.TableHash, &m.Leaving, &m.RESPTLSAddr}
}

var (
	_ msgpack.CustomEncoder = (*nodeMeta)(nil)
	_ msgpack.CustomDecoder = (*nodeMeta)(nil)
)

// EncodeMsgpack writes m as an array, without the fields past the first
// release's when none of them is set.
func (m *nodeMeta) EncodeMsgpack(enc *msgpack.Encoder) error {
	f := m.fields()
	if m.RESPTLSAddr == "" {
		f = f[:firstMetaFields]
	}
	if err := enc.EncodeArrayLen(len(f)); err != nil {
		return err
	}
	for _, v := range f {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads an array of any length: the fields m has, in order;
// fields a newer node added are skipped, and those an older node lacks
// stay zero.
func (m *nodeMeta) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("metadata is nil")
	}
	f := m.fields()
	for i := range n {
		if i < len(f) {
			err = dec.Decode(f[i])
		} else {
			err = dec.Skip()
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", i, err)
		}
	}
	return nil
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
