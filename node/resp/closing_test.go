package resp

import (
	"io"
	"strings"
	"testing"
	"time"
)

// A connection closed after QUIT or a protocol error sends every reply
// before it, however large: closing at once dropped what the socket had
// not taken (3.9 MB of 8.4 MB reached the client, and no +OK).
func TestServer_QuitAndProtocolErrors_sendEveryReplyFirst(t *testing.T) {
	ts := startServer(t)
	big := strings.Repeat("v", 1<<20)
	ts.dial(t).expect("+OK\r\n", "set", "big", big)
	reply := "$" + itoa(len(big)) + "\r\n" + big + "\r\n"
	for _, tc := range []struct{ name, last, want string }{
		{"QUIT", "QUIT\r\n", "+OK\r\n"},
		{"a protocol error", "*1\r\n$-1\r\n", "-ERR Protocol error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dial(t)
			c.send(strings.Repeat("GET big\r\n", 8) + tc.last)
			time.Sleep(300 * time.Millisecond) // the client reads late
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			rest, ok := strings.CutPrefix(string(got), strings.Repeat(reply, 8))
			if !ok || !strings.HasPrefix(rest, tc.want) {
				t.Fatalf("got %d bytes (%.60q at the end); want 8 replies of 1 MiB, then %q", len(got), got[max(0, len(got)-60):], tc.want)
			}
		})
	}
}
