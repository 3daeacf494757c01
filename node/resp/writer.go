package resp

import (
	"slices"
	"strconv"
	"strings"
)

// Writer encodes replies in RESP2 or RESP3 into a buffer that its owner
// sends. RESP3-only types (null, map, set) fall back to their RESP2 forms
// when the connection speaks RESP2.
type Writer struct {
	buf   []byte
	proto int // 2 or 3
}

// NewWriter returns a RESP2 Writer.
func NewWriter() *Writer { return &Writer{proto: 2} }

// SetProto switches the reply encoding to RESP2 or RESP3.
func (w *Writer) SetProto(p int) { w.proto = p }

// Proto returns the protocol version replies are encoded in.
func (w *Writer) Proto() int { return w.proto }

// Bytes returns the encoded replies not yet sent.
func (w *Writer) Bytes() []byte { return w.buf }

// Buffered returns how many reply bytes wait to be sent.
func (w *Writer) Buffered() int { return len(w.buf) }

// Reset forgets the replies once they are sent, keeping the buffer unless
// a large reply grew it past what is worth keeping.
func (w *Writer) Reset() {
	if cap(w.buf) > keepValue {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}

// bulkHeader bounds what a bulk string's reply adds to its bytes: "$", a
// length of up to 20 digits, and two CRLFs.
const bulkHeader = 25

// Grow makes room for n more bytes of replies, so that a reply whose size
// is known ahead is built without copying itself as its buffer grows.
func (w *Writer) Grow(n int) { w.buf = slices.Grow(w.buf, n) }

func (w *Writer) prefixed(prefix byte, n int64) {
	w.buf = append(w.buf, prefix)
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, "\r\n"...)
}

// Simple writes a simple string such as "+OK". s must hold no CR or LF.
func (w *Writer) Simple(s string) {
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, "\r\n"...)
}

// OK writes "+OK".
func (w *Writer) OK() { w.buf = append(w.buf, "+OK\r\n"...) }

// Error writes an error reply. msg starts with its code ("ERR ...",
// "WRONGPASS ..."); CR and LF in it become spaces, as in Redis.
func (w *Writer) Error(msg string) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.buf = append(w.buf, '-')
	w.buf = append(w.buf, msg...)
	w.buf = append(w.buf, "\r\n"...)
}

// Int writes an integer.
func (w *Writer) Int(n int64) { w.prefixed(':', n) }

// Bulk writes a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.prefixed('$', int64(len(b)))
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, "\r\n"...)
}

// BulkString writes a bulk string.
func (w *Writer) BulkString(s string) {
	w.prefixed('$', int64(len(s)))
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, "\r\n"...)
}

// Text writes s as Redis writes text meant to be read by a person (INFO,
// CLIENT LIST): under RESP3 a verbatim string of format txt, under RESP2
// a bulk string.
func (w *Writer) Text(s string) {
	if w.proto != 3 {
		w.BulkString(s)
		return
	}
	w.prefixed('=', int64(len("txt:")+len(s)))
	w.buf = append(w.buf, "txt:"...)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, "\r\n"...)
}

// Null writes a null bulk string (RESP2 "$-1", RESP3 "_").
func (w *Writer) Null() {
	if w.proto == 3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// NullArray writes a null array (RESP2 "*-1", RESP3 "_").
func (w *Writer) NullArray() {
	if w.proto == 3 {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// Array writes the header of an array of n elements.
func (w *Writer) Array(n int) { w.prefixed('*', int64(n)) }

// Map writes the header of a map of n pairs (RESP2: an array of 2n).
func (w *Writer) Map(n int) {
	if w.proto == 3 {
		w.prefixed('%', int64(n))
		return
	}
	w.prefixed('*', int64(2*n))
}

// Set writes the header of a set of n elements (RESP2: an array).
func (w *Writer) Set(n int) {
	if w.proto == 3 {
		w.prefixed('~', int64(n))
		return
	}
	w.prefixed('*', int64(n))
}

// Strings writes an array of bulk strings.
func (w *Writer) Strings(ss []string) {
	w.Array(len(ss))
	for _, s := range ss {
		w.BulkString(s)
	}
}
