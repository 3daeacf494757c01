package resp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fuzzLimits are small, so that the fuzzer reaches every limit.
var fuzzLimits = Limits{MaxArgs: 6, MaxBulk: 40, MaxCommand: 100, MaxInline: 48}

// FuzzReaderParse feeds any bytes to Reader.Parse, whole and in pieces as
// they might arrive over TCP, the way a connection's loop does (it parses
// again only once Need bytes are buffered). Parse must never panic, take
// more than it was given, or let a command past the limits; and the
// commands and the error it finds must not depend on how the bytes were
// split.
//
// A reader whose pending command is large (Reader.big, lowered here to a
// few bytes so that the fuzzer reaches it) asks for more than the next
// element before it parses again, so in pieces it may still be waiting
// where the whole input gave an error; it must never wait on a command
// the whole input completed. That run also lowers Reader.many, past which
// a command's arguments are collected only once it is whole.
func FuzzReaderParse(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nget\r\n$1\r\nk\r\n",
		"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nvalue\r\nPING\r\n",
		"PING\r\nping\n",
		"set k \"a\\x41\\n\" 'b c'\r\n",
		"set k \"unbalanced\r\n",
		"*0\r\n*-1\r\n\r\n",
		"*1\r\n$-1\r\n",
		"*2\r\n$3\r\nget\r\n$100\r\n",
		"*9\r\n",
		"*1\r\n$4\r\npingXY",
		"*1\r\n:4\r\n",
		"*01\r\n$4\r\nping\r\n",
		"*99999999999999999999\r\n",
		"a b c d e f g h\r\n",
		"*3\r\n$0\n\r\n$0\n\r\n$0\n\r\n", // the smallest elements: a bare "\n" after a header
	} {
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole := parseStream(t, data, []int{len(data)}, bigPending)
		r := rand.New(rand.NewPCG(seed, seed>>32))
		var chunks []int
		for left := len(data); left > 0; {
			n := min(left, 1+r.IntN(8))
			chunks = append(chunks, n)
			left -= n
		}
		if pieces := parseStream(t, data, chunks, bigPending); !slices.Equal(whole, pieces) {
			t.Fatalf("input %q\nwhole:     %q\nin pieces %v: %q", data, whole, chunks, pieces)
		}
		waited := parseStream(t, data, chunks, 8)
		done := whole[:len(whole)-1] // the commands, and the error if any
		if n := len(done); n > 0 && strings.HasPrefix(done[n-1], "error: ") {
			if waited[len(waited)-1] == done[n-1] {
				waited = waited[:len(waited)-1]
			}
			done = done[:n-1]
		}
		if len(waited) < len(done)+1 || !slices.Equal(waited[:len(done)], done) {
			t.Fatalf("input %q, large commands waited for:\nwhole:     %q\nin pieces %v: %q", data, whole, chunks, waited)
		}
	})
}

// parseStream delivers data in chunks of the given sizes to one Reader
// whose big is big, parsing as a connection's loop does, and returns what
// it found: each command, then the error or what is left pending.
func parseStream(t *testing.T, data []byte, chunks []int, big int) []string {
	rd := NewReader(fuzzLimits)
	rd.big = big
	if big < bigPending { // and its arguments are collected once it is whole
		rd.many = 2
	}
	var found []string
	var buf []byte
	for _, n := range chunks {
		buf = append(buf, data[:n]...)
		data = data[n:]
		for len(buf) > 0 && len(buf) >= rd.Need() {
			args, n, err := rd.Parse(buf)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) || n != 0 || args != nil {
					t.Fatalf("Parse(%q) = %q, %d, %v; want a *ProtocolError alone", buf, args, n, err)
				}
				return append(found, "error: "+err.Error())
			}
			if n < 0 || n > len(buf) {
				t.Fatalf("Parse(%q) took %d bytes of %d", buf, n, len(buf))
			}
			if n == 0 {
				if rd.Need() <= len(buf) {
					t.Fatalf("Parse(%q) wants more but Need() = %d, no more than it has", buf, rd.Need())
				}
				break
			}
			checkLimits(t, buf[:n], args)
			found = append(found, fmt.Sprintf("%q", args))
			buf = buf[n:]
		}
	}
	return append(found, fmt.Sprintf("pending %d bytes", len(buf)))
}

func checkLimits(t *testing.T, in []byte, args [][]byte) {
	t.Helper()
	if len(args) > fuzzLimits.MaxArgs {
		t.Fatalf("Parse(%q): %d arguments; the limit is %d", in, len(args), fuzzLimits.MaxArgs)
	}
	total := 0
	for _, a := range args {
		total += len(a)
		if len(a) > max(fuzzLimits.MaxBulk, fuzzLimits.MaxInline) {
			t.Fatalf("Parse(%q): a %d-byte argument", in, len(a))
		}
	}
	if in[0] == '*' && total > fuzzLimits.MaxCommand {
		t.Fatalf("Parse(%q): %d argument bytes; the limit is %d", in, total, fuzzLimits.MaxCommand)
	}
}
