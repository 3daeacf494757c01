package resp

import (
	"bufio"
	"strconv"
	"strings"
)

// Writer encodes replies in RESP2 or RESP3. RESP3-only types (null, map,
// set) fall back to their RESP2 forms when the connection speaks RESP2.
type Writer struct {
	bw    *bufio.Writer
	proto int // 2 or 3
	num   [24]byte
}

// NewWriter returns a RESP2 Writer over bw.
func NewWriter(bw *bufio.Writer) *Writer { return &Writer{bw: bw, proto: 2} }

// SetProto switches the reply encoding to RESP2 or RESP3.
func (w *Writer) SetProto(p int) { w.proto = p }

// Proto returns the protocol version replies are encoded in.
func (w *Writer) Proto() int { return w.proto }

// Flush writes buffered replies to the connection.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns how many reply bytes wait to be flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

func (w *Writer) prefixed(prefix byte, n int64) {
	w.bw.WriteByte(prefix)
	w.bw.Write(strconv.AppendInt(w.num[:0], n, 10))
	w.bw.WriteString("\r\n")
}

// Simple writes a simple string such as "+OK". s must hold no CR or LF.
func (w *Writer) Simple(s string) {
	w.bw.WriteByte('+')
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// OK writes "+OK".
func (w *Writer) OK() { w.bw.WriteString("+OK\r\n") }

// Error writes an error reply. msg starts with its code ("ERR ...",
// "WRONGPASS ..."); CR and LF in it become spaces, as in Redis.
func (w *Writer) Error(msg string) {
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.bw.WriteByte('-')
	w.bw.WriteString(msg)
	w.bw.WriteString("\r\n")
}

// Int writes an integer.
func (w *Writer) Int(n int64) { w.prefixed(':', n) }

// Bulk writes a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.prefixed('$', int64(len(b)))
	w.bw.Write(b)
	w.bw.WriteString("\r\n")
}

// BulkString writes a bulk string.
func (w *Writer) BulkString(s string) {
	w.prefixed('$', int64(len(s)))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// Null writes a null bulk string (RESP2 "$-1", RESP3 "_").
func (w *Writer) Null() {
	if w.proto == 3 {
		w.bw.WriteString("_\r\n")
		return
	}
	w.bw.WriteString("$-1\r\n")
}

// NullArray writes a null array (RESP2 "*-1", RESP3 "_").
func (w *Writer) NullArray() {
	if w.proto == 3 {
		w.bw.WriteString("_\r\n")
		return
	}
	w.bw.WriteString("*-1\r\n")
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
