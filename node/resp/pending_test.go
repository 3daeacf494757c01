package resp

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// value returns n bytes that differ along their length and hold CR and LF,
// so that a value parsed from the wrong offset or cut short shows.
func value(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
		if i%1000 == 999 {
			b[i] = '\n'
		}
		if i%1000 == 998 {
			b[i] = '\r'
		}
	}
	return string(b)
}

func resp(args ...string) string {
	var sb strings.Builder
	sb.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		sb.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return sb.String()
}

func bulk(s string) string { return "$" + itoa(len(s)) + "\r\n" + s + "\r\n" }

// A pipeline mixing large commands (past bigPending, so moved out of
// gnet's buffer as they arrive) with small ones, sent in pieces of random
// sizes, some apart: every command runs once, in order, on the right bytes.
func TestServer_largeCommandsInPieces(t *testing.T) {
	ts := startServer(t)
	big1, big2 := value(1<<20, 1), value(1<<20-12345, 2) // values of at most 1 MiB, the default limit
	vals := []string{value(200_000, 3), value(70_000, 4), value(65_536, 5)}
	for seed := range uint64(4) {
		p := "s" + itoa(int(seed)) + ":" // its keys
		var in, want strings.Builder
		step := func(cmd, reply string) {
			in.WriteString(cmd)
			want.WriteString(reply)
		}
		step(resp("PING"), "+PONG\r\n")
		step(resp("SET", p+"big1", big1), "+OK\r\n")
		step(resp("GET", p+"small"), "$-1\r\n")
		step(resp("SET", p+"big2", big2), "+OK\r\n")
		step(resp("MSET", p+"m0", vals[0], p+"m1", vals[1], p+"m2", vals[2], p+"m3", big1, p+"m4", big2, p+"m5", big1), "+OK\r\n")
		step(resp("GET", p+"big1"), bulk(big1))
		step(resp("SET", p+"small", "s"), "+OK\r\n")
		step(resp("MGET", p+"m2", p+"small", p+"m0", p+"big2", p+"m4"), "*5\r\n"+bulk(vals[2])+bulk("s")+bulk(vals[0])+bulk(big2)+bulk(big2))
		step("PING inline\r\n", "$6\r\ninline\r\n")
		rng := rand.New(rand.NewPCG(seed, 1))
		c := ts.dial(t)
		got := make(chan string, 1)
		go func() {
			var sb strings.Builder
			c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			for sb.Len() < want.Len() {
				if err := readReply(c.br, &sb); err != nil {
					break
				}
			}
			got <- sb.String()
		}()
		rest := in.String()
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(200_000))
			if rng.IntN(4) == 0 {
				n = min(len(rest), 1+rng.IntN(8)) // split a header or a CRLF
			}
			c.send(rest[:n])
			rest = rest[n:]
			if rng.IntN(3) == 0 {
				time.Sleep(time.Millisecond) // a read of its own
			}
		}
		if g := <-got; g != want.String() {
			i := 0
			for i < len(g) && i < want.Len() && g[i] == want.String()[i] {
				i++
			}
			t.Fatalf("seed %d: replies differ from byte %d of %d (got %d bytes): got %.80q; want %.80q",
				seed, i, want.Len(), len(g), g[i:], want.String()[i:])
		}
		c.nc.Close()
	}
}

// onLoop runs f on c's event loop and waits for it.
func onLoop(t *testing.T, c *conn, f func()) {
	t.Helper()
	done := make(chan struct{})
	err := c.after.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		defer close(done)
		f()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	<-done
}

// A large command arriving slowly is held once, in a buffer of about its
// size: not in gnet's input buffer, which grows by doubling and is copied
// out whole when it wraps (a node held 1.1 GB for 128 MiB of such input).
func TestServer_largeCommandArrivingIsHeldOnce(t *testing.T) {
	ts := startServer(t)
	// An MSET of eight 1 MiB values (the default limit), 6 MiB of it sent.
	val := value(1<<20, 9)
	args := []string{"MSET"}
	for i := range 8 {
		args = append(args, "k"+itoa(i), val)
	}
	cmd := resp(args...)
	const sent = 6 << 20
	c := ts.dial(t)
	for off := 0; off < sent; off += 100_000 {
		c.send(cmd[off:min(off+100_000, sent)])
	}
	waitFor(t, "the part sent to be held", func() bool { return ts.srv.waiting.Load() == sent })

	ts.srv.mu.Lock()
	var sc *conn
	for x := range ts.srv.conns {
		if x.held.Load() > 0 {
			sc = x
		}
	}
	ts.srv.mu.Unlock()
	if sc == nil {
		t.Fatal("no connection holds input")
	}
	var inGnet, pendLen, pendCap int
	onLoop(t, sc, func() { inGnet, pendLen, pendCap = sc.gc.InboundBuffered(), len(sc.pend), cap(sc.pend) })
	if inGnet >= bigPending || pendLen != sent || pendCap > 2*pendLen {
		t.Errorf("with %d bytes of a command held: %d in gnet's buffer, %d in its own (capacity %d); want under %d in gnet's, all in its own, capacity at most twice",
			sent, inGnet, pendLen, pendCap, bigPending)
	}

	c.send(cmd[sent:])
	if got := c.reply(); got != "+OK\r\n" {
		t.Fatalf("the MSET, completed: got %q; want +OK", got)
	}
	onLoop(t, sc, func() { pendCap = cap(sc.pend) })
	if pendCap != 0 {
		t.Errorf("after the command ran its buffer keeps %d bytes; want it let go", pendCap)
	}
	c.cmd("GET", "k7")
	if got := c.reply(); got != bulk(val) {
		t.Errorf("GET k7: got %d bytes; want the %d-byte value", len(got), len(val))
	}
}
