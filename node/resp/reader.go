package resp

import (
	"bytes"
	"strconv"
)

// ProtocolError is input that breaks the RESP framing. The connection
// cannot be resynchronised after one: the server answers
// "-ERR Protocol error: <msg>" and closes it.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// Limits bound what one command may make the server buffer. Every length a
// client declares is checked against them before anything is allocated; the
// bytes of a large bulk string are held only as they arrive.
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

// Reader parses commands, RESP arrays of bulk strings or inline commands (a
// line of space-separated words, with Redis's quoting rules), from bytes
// already received. It never blocks: given part of a command it says so
// and how many bytes it needs before trying again is worthwhile.
type Reader struct {
	lim  Limits
	buf  []byte   // bytes of quoted inline words, which need unescaping
	args [][]byte // the current command's arguments
	need int      // bytes the pending command needs, counted from its start
	big  int      // bigPending; tests lower it
	many int      // keepReqs: commands of more arguments collect them once whole; tests lower it

	// at is where the last Parse stopped in a command of more than many
	// arguments that it found incomplete. The next Parse is given the
	// same command (a connection's input starts with it until it is
	// whole), so it goes on from there instead of from its first byte.
	at resumePoint

	examined int // elements bulks has looked at, for tests
}

// resumePoint marks the first element of a large command not yet known
// whole: its index, where it starts (from the command's first byte) and
// the argument bytes before it. Those before it are whole and well formed.
// The zero value marks none.
type resumePoint struct{ count, elem, pos, total int }

// NewReader returns a Reader bounded by lim.
func NewReader(lim Limits) *Reader { return &Reader{lim: lim, big: bigPending, many: keepReqs} }

// SetLimits replaces the reader's limits (after authentication).
func (r *Reader) SetLimits(lim Limits) {
	r.lim = lim
	r.at = resumePoint{} // what was checked under the old limits is checked again
}

// Need returns how many bytes, counted from the start of the command the
// last Parse found incomplete, must be buffered before Parse can complete
// it or find it wrong (for a large command, before parsing it again is
// worthwhile: see wait); 0 after a complete command.
func (r *Reader) Need() int { return r.need }

// forget drops the reader's references to the input it last parsed (its
// argument slots beyond the next command's keep them otherwise).
func (r *Reader) forget() {
	if cap(r.args) > keepReqs { // Parse would not keep it anyway
		r.args = nil
		return
	}
	clear(r.args[:cap(r.args)])
	r.args = r.args[:0]
}

// handOver gives the slots of the arguments Parse last returned to the
// caller, to keep: the reader will not touch them again.
func (r *Reader) handOver() { r.args = nil }

// Parse parses the command at the start of in. It returns the command's
// arguments and how many bytes of in it took. The arguments are slices of
// in (or of the reader's buffer) and are valid until in changes or the
// next call. n == 0 with a nil error means in holds only part of a
// command: call again with more bytes (at least Need), in starting with
// the same command, since a large one is parsed on from where the last
// call stopped. An empty inline line yields no arguments. Framing problems
// are *ProtocolError.
func (r *Reader) Parse(in []byte) (args [][]byte, n int, err error) {
	r.args = r.args[:0]
	if cap(r.args) > keepReqs { // do not keep a huge slice for ever
		r.args = nil
	}
	at := r.at
	r.at = resumePoint{} // every return but a large command's pause clears it
	if len(in) == 0 {
		r.need = 1
		return nil, 0, nil
	}
	if in[0] != '*' {
		return r.parseInline(in)
	}
	line, pos, err := r.line(in, 0)
	if err != nil || pos < 0 {
		return nil, 0, err
	}
	count, ok := parseInt(line[1:])
	if !ok || count > int64(r.lim.MaxArgs) {
		if ok && r.lim == unauthLimits {
			return nil, 0, protoErr("unauthenticated multibulk length")
		}
		return nil, 0, protoErr("invalid multibulk length")
	}
	// A large command's arguments are collected once it is whole: parsed
	// again as its pieces arrive (see wait), it would otherwise build them
	// again each time, for the garbage collector.
	collect := count <= int64(r.many)
	from := resumePoint{pos: pos}
	if !collect && at.count == int(count) && at.pos <= len(in) {
		from = at
	}
	end, err := r.bulks(in, from, int(count), collect)
	if err != nil && from.elem > 0 {
		// An error is final: make sure of it from the first byte, as
		// the rest of what was resumed from is checked below.
		end, err = r.bulks(in, resumePoint{pos: pos}, int(count), false)
	}
	if err != nil || end < 0 {
		return nil, 0, err
	}
	if !collect {
		// Collecting reads the command again from its first byte, with
		// every check: what it finds is the outcome, so a command is
		// never taken on the word of a resume point alone.
		r.args = make([][]byte, 0, count)
		if end, err = r.bulks(in, resumePoint{pos: pos}, int(count), true); err != nil || end < 0 {
			r.args = nil
			return nil, 0, err
		}
	}
	r.need = 0
	return r.args, end, nil // "*0" and "*-1" are empty commands
}

// bulks reads the bulk strings of a multibulk command of count elements,
// from element from.elem, which starts at in[from.pos:], on, appending
// each to r.args if collect. It returns where the command ends, or -1 if
// in holds only part of it (having set need, and, unless collect, r.at).
func (r *Reader) bulks(in []byte, from resumePoint, count int, collect bool) (int, error) {
	pos, total := from.pos, from.total
	for i := from.elem; i < count; i++ {
		r.examined++
		line, next, err := r.line(in, pos)
		if err != nil {
			return 0, err
		}
		if next < 0 {
			r.wait(len(in), r.need, pos+minElem*(count-i))
			r.pause(collect, resumePoint{count, i, pos, total})
			return -1, nil
		}
		if len(line) == 0 || line[0] != '$' {
			if len(line) == 0 {
				return 0, protoErr("expected '$', got end of line")
			}
			return 0, protoErr("expected '$', got '" + string(line[0]) + "'")
		}
		size, ok := parseInt(line[1:])
		if !ok || size < 0 || size > int64(r.lim.MaxBulk) {
			if ok && size >= 0 && r.lim == unauthLimits {
				return 0, protoErr("unauthenticated bulk length")
			}
			return 0, protoErr("invalid bulk length")
		}
		if total+int(size) > r.lim.MaxCommand {
			return 0, protoErr("command too large")
		}
		end := next + int(size)
		if end+2 > len(in) {
			r.wait(len(in), end+2, end+2+minElem*(count-i-1))
			r.pause(collect, resumePoint{count, i, pos, total})
			return -1, nil
		}
		total += int(size)
		if in[end] != '\r' || in[end+1] != '\n' {
			return 0, protoErr("bulk string not terminated by CRLF")
		}
		if collect {
			r.args = append(r.args, in[next:end:end])
		}
		pos = end + 2
	}
	return pos, nil
}

// pause records where a large command's parse stopped (see Reader.at);
// a command whose arguments are collected as it is parsed starts again.
func (r *Reader) pause(collect bool, at resumePoint) {
	if !collect {
		r.at = at
	}
}

// minElem is the smallest element of a multibulk command: "$0\n\r\n"
// (line reads a header that ends in a bare "\n", as redis-server does).
const minElem = 5

// bigPending is how much of an incomplete command must be buffered before
// wait stops asking for the least that could change the outcome.
const bigPending = 64 << 10

// wait sets need for a multibulk command found incomplete with have bytes
// buffered: exact is what the element it stopped in needs, least what the
// whole command needs at the least (its other elements at their
// smallest). A Parse of a command of a few large values starts again
// from its first byte (one of many elements goes on where the last
// stopped, Reader.at), and every Parse costs the connection a look at
// its whole input, so with need at exact a command of megabytes sent a
// few bytes at a time was parsed again for every piece, taking the loop's
// CPU from every other client. Once bigPending bytes are buffered, need
// also asks for them to double (by at most 16 MiB), never beyond least,
// which every complete command of the declared length reaches: such a
// command is parsed a few dozen times in all. A protocol error in what
// arrives meanwhile is found at the next parse, not at once.
func (r *Reader) wait(have, exact, least int) {
	r.need = exact
	if have >= r.big {
		r.need = max(exact, min(least, have+min(have, 16<<20)))
	}
}

// line finds the line starting at in[from:], of at most MaxInline bytes
// before its "\r\n", and returns it without its line ending and where the
// next one starts; next < 0 means the line is not complete yet.
func (r *Reader) line(in []byte, from int) (line []byte, next int, err error) {
	max := r.lim.MaxInline + 2
	window := in[from:]
	if len(window) > max {
		window = window[:max]
	}
	i := bytes.IndexByte(window, '\n')
	if i < 0 {
		if len(window) == max {
			return nil, 0, protoErr("too big inline request")
		}
		r.need = len(in) + 1
		return nil, -1, nil
	}
	line = window[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, from + i + 1, nil
}

// parseInline parses an inline command: words separated by spaces, with
// "double" (C escapes) and 'single' quoting as in redis-cli.
func (r *Reader) parseInline(in []byte) ([][]byte, int, error) {
	window := in
	if len(window) > r.lim.MaxInline {
		window = window[:r.lim.MaxInline]
	}
	i := bytes.IndexByte(window, '\n')
	if i < 0 {
		if len(window) == r.lim.MaxInline {
			return nil, 0, protoErr("too big inline request")
		}
		r.need = len(in) + 1
		return nil, 0, nil
	}
	r.need = 0
	n := i + 1
	line := bytes.TrimRight(in[:n], "\r\n")
	if bytes.IndexByte(line, '"') < 0 && bytes.IndexByte(line, '\'') < 0 {
		// No quoting: the words are slices of the input.
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
					return nil, 0, protoErr("invalid multibulk length")
				}
				r.args = append(r.args, line[i:j:j])
			}
			line = line[j:]
		}
		return r.args, n, nil
	}
	words, ok := SplitArgs(string(line))
	if !ok {
		return nil, 0, protoErr("unbalanced quotes in request")
	}
	if len(words) > r.lim.MaxArgs {
		return nil, 0, protoErr("invalid multibulk length")
	}
	r.buf = r.buf[:0]
	for _, w := range words {
		r.buf = append(r.buf, w...)
	}
	off := 0
	for _, w := range words {
		r.args = append(r.args, r.buf[off:off+len(w):off+len(w)])
		off += len(w)
	}
	return r.args, n, nil
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
			return n, err == nil && digits[0] >= '1' && digits[0] <= '9' // no '+', no leading zero
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
