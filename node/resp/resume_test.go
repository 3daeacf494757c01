package resp

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Large commands (more than keepReqs arguments, so parsed from where the
// last Parse stopped) pipelined behind commands that run off the loop
// (remote keys: batch parses what follows them, and stops at a large
// command still arriving), behind AUTH (SetLimits mid-stream), and in
// pend once past bigPending, sent in pieces of random sizes: every command
// runs once, in order, on the right bytes.
func TestServer_LargeCommandsResumeBehindBatchesAndAuth(t *testing.T) {
	ts := startServer(t, slowRemote(200*time.Microsecond), func(c *Config, _ *storeBackend) { c.Password = "pw" })
	for seed := range uint64(6) {
		p := "s" + itoa(int(seed)) + ":"
		var in, want strings.Builder
		step := func(cmd, reply string) {
			in.WriteString(cmd)
			want.WriteString(reply)
		}
		keys := func(prefix string, n, size int) []string {
			ks := make([]string, n)
			for i := range ks {
				k := prefix + itoa(i) + ":"
				ks[i] = k + strings.Repeat("k", max(0, size-len(k)))
			}
			return ks
		}
		step(resp("AUTH", "pw"), "+OK\r\n")
		small := keys(p+"a", 300, 8)  // 301 arguments: resumed, run on the loop
		long := keys(p+"b", 700, 200) // 701: resumed, run off the loop, past bigPending
		pairs := make([]string, 0, 2*len(small))
		for i, k := range small {
			pairs = append(pairs, k, value(10+i%7, byte(i)))
		}
		step(resp(append([]string{"MSET"}, pairs...)...), "+OK\r\n")
		for round := range 4 {
			r := "r:" + p + itoa(round)
			step(resp("SET", r, "v"+itoa(round)), "+OK\r\n") // deferred: batch parses what follows
			step(resp("GET", r), bulk("v"+itoa(round)))
			step(resp(append([]string{"EXISTS"}, small...)...), ":"+itoa(len(small))+"\r\n")
			step(resp("SET", r+"x", "w"), "+OK\r\n")
			step(resp(append([]string{"EXISTS"}, long...)...), ":0\r\n")
			step(resp(append([]string{"EXISTS"}, append(small[:150:150], long[:150]...)...)...), ":150\r\n")
			step("PING x\r\n", "$1\r\nx\r\n")
		}
		c := ts.dial(t)
		sendInRandomPieces(t, c, in.String(), want.String(), seed, 7, 6000, 300*time.Microsecond)
		c.nc.Close()
	}
}

// A Reader given, after an incomplete large command, another command of
// the same count still parses it as it is: a resume point is never taken
// on its word (the server's callers always give the same command again,
// so this is hardening against a caller that does not).
func TestReader_ResumeOnlyOnTheSameCommand(t *testing.T) {
	x := "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n"
	for _, y := range []string{
		"*3\r\n$1\r\na\r\n$5\r\nbcdef\r\n$1\r\ng\r\n", // the resume point falls inside an element
		"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",     // it falls in the last element
		"*3\r\n0123456789abcdef$1\r\nv\r\n",           // garbage before it: taken as an empty command
	} {
		fresh := NewReader(Limits{MaxArgs: 10, MaxBulk: 100, MaxCommand: 50, MaxInline: 100})
		fresh.many = 2
		wantArgs, wantN, wantErr := fresh.Parse([]byte(y))
		r := NewReader(fresh.lim)
		r.many = 2
		if _, n, err := r.Parse([]byte(x[:24])); n != 0 || err != nil {
			t.Fatalf("Parse(%q) = %d, %v; want incomplete", x[:24], n, err)
		}
		args, n, err := r.Parse([]byte(y))
		if fmtArgs(args) != fmtArgs(wantArgs) || n != wantN || (err == nil) != (wantErr == nil) {
			t.Errorf("after %q, Parse(%q) = %q, %d, %v; a fresh reader finds %q, %d, %v", x[:24], y, args, n, err, wantArgs, wantN, wantErr)
		}
	}
}

func fmtArgs(args [][]byte) string {
	var sb strings.Builder
	for _, a := range args {
		sb.WriteString(strconv.Quote(string(a)) + " ")
	}
	return sb.String()
}
