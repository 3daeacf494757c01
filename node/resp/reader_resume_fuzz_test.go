package resp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// FuzzReaderResume checks that a Reader that goes on from where its last
// Parse of a large command stopped (Reader.at) finds exactly what one that
// always starts again from the command's first byte finds: the same
// arguments, bytes taken, errors and Need after every call. The bytes are
// delivered in random pieces to both, parsed as a connection's loop parses
// them (again once Need bytes are buffered), with Reader.many lowered so
// that commands of a few arguments take the resume path, and Reader.big
// lowered in some runs so that the doubling wait is reached too.
func FuzzReaderResume(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nvalue\r\nPING\r\n",
		"*4\r\n$4\r\nmget\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*4\r\n$4\r\nmget\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
		"*3\r\n$0\n\r\n$0\n\r\n$0\n\r\n",
		"*5\r\n$40\r\n0123456789012345678901234567890123456789\r\n$40\r\n0123456789012345678901234567890123456789\r\n$30\r\n012345678901234567890123456789\r\n$1\r\nx\r\n$1\r\ny\r\n",
		"*4\r\n$1\r\na\r\n$1\r\nbX\r\n$1\r\nc\r\n$1\r\nd\r\n",
		"*4\r\n$1\r\na\r\n$9999\r\n",
		"*4\r\n$1\r\na\r\n:1\r\n",
		"*6\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$0000000000000000000000000000000000000000000000000000\r\n",
	} {
		f.Add([]byte(s), uint64(1), uint8(2), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, many, big uint8) {
		m := int(many % 6)
		b := bigPending
		if big%2 == 1 {
			b = int(big)
		}
		r := rand.New(rand.NewPCG(seed, seed>>32))
		var chunks []int
		for left := len(data); left > 0; {
			n := min(left, 1+r.IntN(12))
			chunks = append(chunks, n)
			left -= n
		}
		resumed := traceStream(t, data, chunks, m, b, false)
		fresh := traceStream(t, data, chunks, m, b, true)
		if len(resumed) != len(fresh) {
			t.Fatalf("input %q in pieces %v, many %d, big %d:\nresuming: %q\nfrom the start: %q", data, chunks, m, b, resumed, fresh)
		}
		for i := range resumed {
			if resumed[i] != fresh[i] {
				t.Fatalf("input %q in pieces %v, many %d, big %d: call %d:\nresuming:       %s\nfrom the start: %s\nresuming: %q\nfrom the start: %q",
					data, chunks, m, b, i, resumed[i], fresh[i], resumed, fresh)
			}
		}
	})
}

// traceStream delivers data in chunks to one Reader, parsing as a
// connection's loop does, and returns a line for each Parse: what it
// returned and the reader's Need after it. If fresh, the reader forgets
// where it stopped before each call.
func traceStream(t *testing.T, data []byte, chunks []int, many, big int, fresh bool) []string {
	rd := NewReader(fuzzLimits)
	rd.many, rd.big = many, big
	var trace []string
	var buf []byte
	for _, n := range chunks {
		buf = append(buf, data[:n]...)
		data = data[n:]
		for len(buf) > 0 && len(buf) >= rd.Need() {
			if fresh {
				rd.at = resumePoint{}
			}
			args, n, err := rd.Parse(buf)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("Parse(%q): %v, not a *ProtocolError", buf, err)
				}
				return append(trace, fmt.Sprintf("have %d: error %v", len(buf), err))
			}
			trace = append(trace, fmt.Sprintf("have %d: %q %d need %d", len(buf), args, n, rd.Need()))
			if n == 0 {
				break
			}
			checkLimits(t, buf[:n], args)
			buf = buf[n:]
		}
	}
	return trace
}
