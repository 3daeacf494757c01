package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// ProtocolError is input that breaks the RESP framing. The connection
// cannot be resynchronised after one: the server answers
// "-ERR Protocol error: <msg>" and closes it.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// Limits bound what one command may make the reader allocate. Every length a
// client declares is checked against them before anything is allocated, and
// large bulk strings grow with the bytes that actually arrive.
type Limits struct {
	// MaxArgs is the most arguments one command may have.
	MaxArgs int
	// MaxBulk is the longest single argument in bytes.
	MaxBulk int
	// MaxCommand is the most argument bytes one command may carry in all.
	MaxCommand int
	// MaxInline is the longest inline command line.
	MaxInline int
}

// unauthLimits apply before a client has authenticated, as in Redis.
var unauthLimits = Limits{MaxArgs: 10, MaxBulk: 16 << 10, MaxCommand: 64 << 10, MaxInline: 16 << 10}

// chunk is how much of a large bulk string is allocated ahead of the bytes
// that arrive for it.
const chunk = 64 << 10

// Reader reads commands: RESP arrays of bulk strings, or inline commands
// (a line of space-separated words, with Redis's quoting rules).
type Reader struct {
	br   *bufio.Reader
	lim  Limits
	buf  []byte   // argument bytes of the current command
	args [][]byte // the current command's arguments, slices of buf
}

// NewReader returns a Reader over br bounded by lim.
func NewReader(br *bufio.Reader, lim Limits) *Reader {
	return &Reader{br: br, lim: lim}
}

// SetLimits replaces the reader's limits (after authentication).
func (r *Reader) SetLimits(lim Limits) { r.lim = lim }

// Buffered reports how many input bytes are waiting, read but not parsed.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadCommand reads the next command. The returned arguments are valid only
// until the next call. An empty inline line yields no arguments and no
// error. Framing problems are *ProtocolError; I/O errors pass through.
func (r *Reader) ReadCommand() ([][]byte, error) {
	r.buf, r.args = r.buf[:0], r.args[:0]
	if cap(r.buf) > 4*chunk { // do not keep a huge buffer for ever
		r.buf = nil
	}
	b, err := r.br.Peek(1)
	if err != nil {
		return nil, err
	}
	if b[0] != '*' {
		return r.readInline()
	}
	line, err := r.line(r.lim.MaxInline)
	if err != nil {
		return nil, err
	}
	n, ok := parseInt(line[1:])
	if len(line) == 0 {
		ok = false
	}
	if !ok || n > int64(r.lim.MaxArgs) {
		if ok && r.lim == unauthLimits {
			return nil, protoErr("unauthenticated multibulk length")
		}
		return nil, protoErr("invalid multibulk length")
	}
	if n <= 0 {
		return r.args, nil // "*0" and "*-1" are empty commands
	}
	for i := int64(0); i < n; i++ {
		if err := r.readBulk(); err != nil {
			return nil, err
		}
	}
	return r.args, nil
}

// readBulk reads one "$<len>\r\n<bytes>\r\n" argument.
func (r *Reader) readBulk() error {
	line, err := r.line(r.lim.MaxInline)
	if err != nil {
		return err
	}
	if len(line) == 0 || line[0] != '$' {
		if len(line) == 0 {
			return protoErr("expected '$', got end of line")
		}
		return protoErr("expected '$', got '" + string(line[0]) + "'")
	}
	n, ok := parseInt(line[1:])
	if !ok || n < 0 || n > int64(r.lim.MaxBulk) {
		if ok && n >= 0 && r.lim == unauthLimits {
			return protoErr("unauthenticated bulk length")
		}
		return protoErr("invalid bulk length")
	}
	if len(r.buf)+int(n) > r.lim.MaxCommand {
		return protoErr("command too large")
	}
	start := len(r.buf)
	for left := int(n); left > 0; {
		step := min(left, chunk)
		r.buf = grow(r.buf, step)
		if _, err := io.ReadFull(r.br, r.buf[len(r.buf)-step:]); err != nil {
			return unexpected(err)
		}
		left -= step
	}
	for _, want := range [2]byte{'\r', '\n'} {
		b, err := r.br.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		if b != want {
			return protoErr("bulk string not terminated by CRLF")
		}
	}
	r.args = append(r.args, r.buf[start:len(r.buf):len(r.buf)])
	return nil
}

// grow extends b by n bytes, reallocating with doubling. Earlier slices of
// b stay valid: they keep the old array alive.
func grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n, 512))
	copy(nb, b)
	return nb
}

// line reads one line ending in "\n" (the "\r" before it is dropped) of at
// most max bytes. The slice is valid until the next read.
func (r *Reader) line(max int) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > max {
			return nil, protoErr("too big inline request")
		}
		return nil, unexpected(err)
	}
	if len(line) > max+2 {
		return nil, protoErr("too big inline request")
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readInline reads an inline command: words separated by spaces, with
// "double" (C escapes) and 'single' quoting as in redis-cli.
func (r *Reader) readInline() ([][]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErr("too big inline request")
		}
		return nil, unexpected(err)
	}
	if len(line) > r.lim.MaxInline {
		return nil, protoErr("too big inline request")
	}
	line = bytes.TrimRight(line, "\r\n")
	if bytes.IndexByte(line, '"') < 0 && bytes.IndexByte(line, '\'') < 0 {
		// No quoting: split on whitespace without allocating.
		for len(line) > 0 {
			i := 0
			for i < len(line) && isSpace(line[i]) {
				i++
			}
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			if j > i {
				if len(r.args) == r.lim.MaxArgs {
					return nil, protoErr("invalid multibulk length")
				}
				start := len(r.buf)
				r.buf = append(r.buf, line[i:j]...)
				r.args = append(r.args, r.buf[start:len(r.buf):len(r.buf)])
			}
			line = line[j:]
		}
		return r.args, nil
	}
	words, ok := SplitArgs(string(line))
	if !ok {
		return nil, protoErr("unbalanced quotes in request")
	}
	if len(words) > r.lim.MaxArgs {
		return nil, protoErr("invalid multibulk length")
	}
	for _, w := range words {
		start := len(r.buf)
		r.buf = append(r.buf, w...)
		r.args = append(r.args, r.buf[start:len(r.buf):len(r.buf)])
	}
	return r.args, nil
}

// unexpected turns a clean EOF in the middle of a command into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseInt parses a decimal integer (optional '-', no '+', no spaces),
// refusing overflow. Short numbers, the common case, do not allocate.
func parseInt(b []byte) (int64, bool) {
	digits := b
	if len(b) > 0 && b[0] == '-' {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		if len(digits) > 18 && len(digits) <= 20 {
			n, err := strconv.ParseInt(string(b), 10, 64)
			return n, err == nil && (digits[0] != '0')
		}
		return 0, false
	}
	if digits[0] == '0' && (len(digits) > 1 || len(digits) != len(b)) {
		return 0, false // Redis refuses "01" and "-0"
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(digits) != len(b) {
		n = -n
	}
	return n, true
}
