package protocol

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// MemberInfo describes one cluster member as clients need it.
type MemberInfo struct {
	Name        string
	Addr        string // native protocol, host:port
	RESPAddr    string // Redis protocol, host:port; empty if disabled
	HTTPAddr    string // health and metrics; empty if disabled
	RESPTLSAddr string // Redis protocol over TLS, host:port; empty if disabled
}

// ClusterInfo is a node's view of the cluster: the partition table with the
// addresses of its members. OpTable returns it.
type ClusterInfo struct {
	Version    uint64
	Partitions int
	Replicas   int
	Members    []MemberInfo // sorted by name
	Owners     [][]uint16   // per partition: indexes into Members, primary first
}

// EncodeClusterInfo encodes ci for OpTable's reply Value.
func EncodeClusterInfo(ci *ClusterInfo) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	err := firstErr(e.EncodeArrayLen(5), e.EncodeUint(ci.Version), e.EncodeInt(int64(ci.Partitions)),
		e.EncodeInt(int64(ci.Replicas)), e.EncodeArrayLen(len(ci.Members)))
	for _, m := range ci.Members {
		err = firstErr(err, e.EncodeArrayLen(4), e.EncodeString(m.Name), e.EncodeString(m.Addr),
			e.EncodeString(m.RESPAddr), e.EncodeString(m.HTTPAddr))
	}
	err = firstErr(err, e.EncodeArrayLen(len(ci.Owners)))
	for _, o := range ci.Owners {
		err = firstErr(err, e.EncodeArrayLen(len(o)))
		for _, m := range o {
			err = firstErr(err, e.EncodeUint(uint64(m)))
		}
	}
	return buf.Bytes(), err
}

// DecodeClusterInfo decodes what EncodeClusterInfo produced, checking every
// length and index.
func (d *Decoder) DecodeClusterInfo(b []byte) (*ClusterInfo, error) {
	ci := &ClusterInfo{}
	bad := func(err error) (*ClusterInfo, error) { return nil, malformed(fmt.Errorf("cluster info: %w", err)) }
	n, err := d.start(b)
	if err != nil {
		return nil, err
	}
	if n != 5 {
		return bad(fmt.Errorf("%d fields; want 5", n))
	}
	var v int64
	if ci.Version, err = d.uint(); err != nil {
		return bad(err)
	}
	if v, err = d.dec.DecodeInt64(); err != nil || v < 1 || v > 1<<14 {
		return bad(fmt.Errorf("partitions %d: %v", v, err))
	}
	ci.Partitions = int(v)
	if v, err = d.dec.DecodeInt64(); err != nil || v < 0 {
		return bad(fmt.Errorf("replicas %d: %v", v, err))
	}
	ci.Replicas = int(v)
	nm, err := d.arrayLen(4)
	if err != nil {
		return bad(err)
	}
	ci.Members = make([]MemberInfo, nm)
	for i := range ci.Members {
		m := &ci.Members[i]
		if k, err := d.arrayLen(1); err != nil || k != 4 {
			return bad(fmt.Errorf("member %d: %d fields, %v", i, k, err))
		}
		for _, f := range []*string{&m.Name, &m.Addr, &m.RESPAddr, &m.HTTPAddr} {
			if *f, err = d.string(); err != nil {
				return bad(err)
			}
		}
	}
	np, err := d.arrayLen(1)
	if err != nil || np != ci.Partitions {
		return bad(fmt.Errorf("%d owner lists for %d partitions: %v", np, ci.Partitions, err))
	}
	ci.Owners = make([][]uint16, np)
	for p := range ci.Owners {
		k, err := d.arrayLen(1)
		if err != nil || k == 0 {
			return bad(fmt.Errorf("partition %d: %d owners, %v", p, k, err))
		}
		ci.Owners[p] = make([]uint16, k)
		for j := range ci.Owners[p] {
			m, err := d.uint()
			if err != nil || m >= uint64(nm) {
				return bad(fmt.Errorf("partition %d: owner %d of %d members, %v", p, m, nm, err))
			}
			ci.Owners[p][j] = uint16(m)
		}
	}
	return ci, d.end()
}

// arrayLen reads an array length, refusing one whose elements (at least
// min bytes each) could not fit in what remains.
func (d *Decoder) arrayLen(min int) (int, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return 0, err
	}
	if n < 0 || n*min > d.rd.Len() {
		return 0, fmt.Errorf("array of %d exceeds the %d bytes left", n, d.rd.Len())
	}
	return n, nil
}
