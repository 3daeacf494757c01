package node

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// firstReleaseMeta is nodeMeta as the first release declared it: a node of
// that release decodes metadata into it, and refuses a member whose
// metadata it cannot.
type firstReleaseMeta struct {
	_msgpack struct{} `msgpack:",as_array"`

	Cluster    string
	Partitions int
	Proto      int
	Addr       string
	RESPAddr   string
	HTTPAddr   string
	StartID    uint64
	Table      uint64
	TableHash  uint64
	Leaving    bool
}

func sampleMeta() nodeMeta {
	return nodeMeta{Cluster: "prod", Partitions: 271, Proto: 3, Addr: "10.0.0.1:7400", RESPAddr: "10.0.0.1:6379",
		HTTPAddr: "10.0.0.1:7480", StartID: 1<<63 + 5, Table: 42, TableHash: 7, Leaving: true}
}

// Without TLS a node's metadata is byte for byte the first release's, so
// a cluster can be upgraded node by node.
func TestMeta_withoutTLS_isTheFirstReleasesEncoding(t *testing.T) {
	m := sampleMeta()
	got, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	old := firstReleaseMeta{Cluster: m.Cluster, Partitions: m.Partitions, Proto: m.Proto, Addr: m.Addr, RESPAddr: m.RESPAddr,
		HTTPAddr: m.HTTPAddr, StartID: m.StartID, Table: m.Table, TableHash: m.TableHash, Leaving: m.Leaving}
	want, err := msgpack.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x; want the first release's %x", got, want)
	}
	back, err := decodeMeta(want)
	if err != nil || *back != m {
		t.Fatalf("decoding the first release's metadata: %+v, %v; want %+v", back, err, m)
	}
}

// With TLS the address is read back, and a node of the first release
// cannot read it (hence: upgrade every member before turning TLS on).
func TestMeta_withTLS_roundTripsAndNewerFieldsAreSkipped(t *testing.T) {
	m := sampleMeta()
	m.RESPTLSAddr = "10.0.0.1:6380"
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeMeta(b)
	if err != nil || *back != m {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, m)
	}
	var old firstReleaseMeta
	if err := msgpack.Unmarshal(b, &old); err == nil || !strings.Contains(err.Error(), "number of fields") {
		t.Errorf("the first release decoding metadata with TLS: %v; want its field-count error (the README's upgrade note rests on it)", err)
	}
	// A newer node's metadata, with fields after every one known here.
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	f := m.fields()
	enc.EncodeArrayLen(len(f) + 2)
	for _, v := range f {
		enc.Encode(v)
	}
	enc.Encode("a field from the future")
	enc.Encode(map[string]int{"x": 1})
	back, err = decodeMeta(buf.Bytes())
	if err != nil || *back != m {
		t.Fatalf("metadata with two unknown fields: %+v, %v; want %+v", back, err, m)
	}
}
