package protocol

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// Request is one call from a client (or a peer node) to a node. Each op
// documents which fields it reads. It is encoded as a msgpack array in field
// order; decoders skip trailing fields they do not know, so fields may only
// be appended.
type Request struct {
	ID        uint64
	Op        Op
	Flags     Flags
	Key       string
	Value     []byte
	TTL       int64 // milliseconds
	Version   uint64
	Keys      []string
	Partition int32
	Cursor    uint64
	Count     int32
	Pattern   string
	Table     uint64  // sender's partition table version (node to node)
	Entries   []Entry // OpReplicate payload
	TableHash uint64  // identifies the member set of the sender's table (node to node)
}

// Response is a node's answer to the request with the same ID.
type Response struct {
	ID      uint64
	Code    Code
	Msg     string // error detail when Code is not CodeOK
	Value   []byte
	Version uint64
	TTL     int64 // remaining milliseconds, -1 for no expiry
	N       int64
	Keys    []string
	Cursor  uint64
	Table   uint64  // the node's partition table version, so clients notice changes
	Entries []Entry // OpFetch results
	TTLKeys int64   // OpCount: of the N keys, those with a TTL
}

// Entry is one stored entry as it travels between nodes: TTL is the
// remaining time in milliseconds (-1: none), so clocks need not agree.
type Entry struct {
	Key       string
	Value     []byte
	TTL       int64
	Version   uint64
	Tombstone bool
}

// Err returns nil for CodeOK, else an *Error matching the code's sentinel.
func (r *Response) Err() error {
	if r.Code == CodeOK {
		return nil
	}
	return &Error{Code: r.Code, Msg: r.Msg}
}

// SetErr stores err in r as a code and message.
func (r *Response) SetErr(err error) {
	r.Code = CodeOf(err)
	switch pe, ok := err.(*Error); {
	case ok:
		r.Msg = pe.Msg
	case err == nil || err == r.Code.Err():
		r.Msg = "" // a bare sentinel says it all
	default:
		r.Msg = withoutWords(err.Error(), r.Code.Err().Error())
	}
}

// withoutWords returns msg without the words w of its code, which Err
// puts first: an error wrapping the code's sentinel, before its context or
// after it, would otherwise say them twice. Each line of a joined error is
// treated alike; lines of w alone go.
func withoutWords(msg, w string) string {
	lines := strings.Split(msg, "\n")
	out := lines[:0]
	for _, l := range lines {
		l = strings.TrimSuffix(strings.ReplaceAll(l, w+": ", ""), ": "+w)
		if l != w && l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

const (
	requestFields  = 15
	responseFields = 12
)

// Encode writes r with e.
func (r *Request) Encode(e *msgpack.Encoder) error {
	return firstErr(
		e.EncodeArrayLen(requestFields),
		e.EncodeUint(r.ID),
		e.EncodeUint(uint64(r.Op)),
		e.EncodeUint(uint64(r.Flags)),
		e.EncodeString(r.Key),
		e.EncodeBytes(r.Value),
		e.EncodeInt(r.TTL),
		e.EncodeUint(r.Version),
		encodeStrings(e, r.Keys),
		e.EncodeInt(int64(r.Partition)),
		e.EncodeUint(r.Cursor),
		e.EncodeInt(int64(r.Count)),
		e.EncodeString(r.Pattern),
		e.EncodeUint(r.Table),
		encodeEntries(e, r.Entries),
		e.EncodeUint(r.TableHash),
	)
}

// Encode writes r with e.
func (r *Response) Encode(e *msgpack.Encoder) error {
	return firstErr(
		e.EncodeArrayLen(responseFields),
		e.EncodeUint(r.ID),
		e.EncodeUint(uint64(r.Code)),
		e.EncodeString(r.Msg),
		e.EncodeBytes(r.Value),
		e.EncodeUint(r.Version),
		e.EncodeInt(r.TTL),
		e.EncodeInt(r.N),
		encodeStrings(e, r.Keys),
		e.EncodeUint(r.Cursor),
		e.EncodeUint(r.Table),
		encodeEntries(e, r.Entries),
		e.EncodeInt(r.TTLKeys),
	)
}

func encodeEntries(e *msgpack.Encoder, es []Entry) error {
	if es == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(es)); err != nil {
		return err
	}
	for i := range es {
		x := &es[i]
		if err := firstErr(
			e.EncodeArrayLen(5),
			e.EncodeString(x.Key),
			e.EncodeBytes(x.Value),
			e.EncodeInt(x.TTL),
			e.EncodeUint(x.Version),
			e.EncodeBool(x.Tombstone),
		); err != nil {
			return err
		}
	}
	return nil
}

func encodeStrings(e *msgpack.Encoder, ss []string) error {
	if ss == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(ss)); err != nil {
		return err
	}
	for _, s := range ss {
		if err := e.EncodeString(s); err != nil {
			return err
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Decoder decodes messages from byte slices, checking every declared length
// against the bytes that remain so that hostile input cannot make it
// allocate more than the input's size. Reuse one per connection; it is not
// safe for concurrent use.
type Decoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	d := &Decoder{dec: msgpack.NewDecoder(nil)}
	return d
}

// DecodeRequest decodes b into r, replacing all of r's fields.
func (d *Decoder) DecodeRequest(b []byte, r *Request) error {
	*r = Request{}
	n, err := d.start(b)
	if err != nil {
		return err
	}
	for i := range n {
		var v uint64
		switch i {
		case 0:
			r.ID, err = d.uint()
		case 1:
			v, err = d.small(255)
			r.Op = Op(v)
		case 2:
			v, err = d.small(1<<16 - 1)
			r.Flags = Flags(v)
		case 3:
			r.Key, err = d.string()
		case 4:
			r.Value, err = d.bytes()
		case 5:
			r.TTL, err = d.dec.DecodeInt64()
		case 6:
			r.Version, err = d.uint()
		case 7:
			r.Keys, err = d.strings()
		case 8:
			r.Partition, err = d.dec.DecodeInt32()
		case 9:
			r.Cursor, err = d.uint()
		case 10:
			r.Count, err = d.dec.DecodeInt32()
		case 11:
			r.Pattern, err = d.string()
		case 12:
			r.Table, err = d.uint()
		case 13:
			r.Entries, err = d.entries()
		case 14:
			r.TableHash, err = d.uint()
		default:
			err = d.skip() // a field appended by a newer peer
		}
		if err != nil {
			return malformed(fmt.Errorf("request field %d: %w", i, err))
		}
	}
	return d.end()
}

// DecodeResponse decodes b into r, replacing all of r's fields.
func (d *Decoder) DecodeResponse(b []byte, r *Response) error {
	*r = Response{}
	n, err := d.start(b)
	if err != nil {
		return err
	}
	for i := range n {
		var v uint64
		switch i {
		case 0:
			r.ID, err = d.uint()
		case 1:
			v, err = d.small(255)
			r.Code = Code(v)
		case 2:
			r.Msg, err = d.string()
		case 3:
			r.Value, err = d.bytes()
		case 4:
			r.Version, err = d.uint()
		case 5:
			r.TTL, err = d.dec.DecodeInt64()
		case 6:
			r.N, err = d.dec.DecodeInt64()
		case 7:
			r.Keys, err = d.strings()
		case 8:
			r.Cursor, err = d.uint()
		case 9:
			r.Table, err = d.uint()
		case 10:
			r.Entries, err = d.entries()
		case 11:
			r.TTLKeys, err = d.dec.DecodeInt64()
		default:
			err = d.skip()
		}
		if err != nil {
			return malformed(fmt.Errorf("response field %d: %w", i, err))
		}
	}
	return d.end()
}

func (d *Decoder) start(b []byte) (int, error) {
	d.rd.Reset(b)
	d.dec.Reset(&d.rd)
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return 0, malformed(err)
	}
	if n < 0 || n > d.rd.Len() {
		return 0, Errorf(CodeBadRequest, "malformed message: array of %d fields in %d bytes", n, d.rd.Len())
	}
	return n, nil
}

func (d *Decoder) end() error {
	if d.rd.Len() != 0 {
		return Errorf(CodeBadRequest, "malformed message: %d trailing bytes", d.rd.Len())
	}
	return nil
}

func (d *Decoder) uint() (uint64, error) { return d.dec.DecodeUint64() }

// bytes reads a bin or str; nil stays nil.
func (d *Decoder) bytes() ([]byte, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > d.rd.Len() {
		return nil, fmt.Errorf("length %d exceeds the %d bytes left", n, d.rd.Len())
	}
	b := make([]byte, n)
	return b, d.dec.ReadFull(b)
}

// view reads a bin or str as a slice of b, the input d was started on,
// without copying it.
func (d *Decoder) view(b []byte) ([]byte, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > d.rd.Len() {
		return nil, fmt.Errorf("length %d exceeds the %d bytes left", n, d.rd.Len())
	}
	at := len(b) - d.rd.Len()
	if _, err := d.rd.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return b[at : at+n : at+n], nil
}

func (d *Decoder) string() (string, error) {
	b, err := d.bytes()
	return string(b), err
}

func (d *Decoder) strings() ([]string, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > d.rd.Len() { // every element takes at least one byte
		return nil, fmt.Errorf("array of %d exceeds the %d bytes left", n, d.rd.Len())
	}
	ss := make([]string, n)
	for i := range ss {
		if ss[i], err = d.string(); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

func (d *Decoder) entries() ([]Entry, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n*6 > d.rd.Len() { // an entry takes at least six bytes
		return nil, fmt.Errorf("%d entries exceed the %d bytes left", n, d.rd.Len())
	}
	es := make([]Entry, n)
	for i := range es {
		x := &es[i]
		m, err := d.dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if m != 5 {
			return nil, fmt.Errorf("entry of %d fields; want 5", m)
		}
		if x.Key, err = d.string(); err != nil {
			return nil, err
		}
		if x.Value, err = d.bytes(); err != nil {
			return nil, err
		}
		if x.TTL, err = d.dec.DecodeInt64(); err != nil {
			return nil, err
		}
		if x.Version, err = d.uint(); err != nil {
			return nil, err
		}
		if x.Tombstone, err = d.dec.DecodeBool(); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// small reads an unsigned integer no larger than max.
func (d *Decoder) small(max uint64) (uint64, error) {
	v, err := d.dec.DecodeUint64()
	if err == nil && v > max {
		err = fmt.Errorf("value %d out of range", v)
	}
	return v, err
}

func malformed(err error) error {
	if _, ok := err.(*Error); ok {
		return err
	}
	return Errorf(CodeBadRequest, "malformed message: %v", err)
}
