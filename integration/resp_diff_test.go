package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
)

// diffCommands are sent, in order, on one connection to redis-server and to
// a node; every reply must be byte-for-byte the same. They cover error
// wording, option parsing, RESP3 nulls, transactions and expiry edges.
var diffCommands = [][]string{
	{"flushall"}, {"foo", "a"}, {"get"}, {"getex", "nope", "ex", "abc"}, {"getex", "nope", "px", "0"}, {"getex", "nope", "pxat", "-5"}, {"getex", "nope", "px", "4611686018427387905"},
	{"command", "info", "nosuch"}, {"set", "k", "v", "nx", "xx"}, {"set", "k", "v", "ex", "0"},
	{"set", "k", "v", "ex", "abc"}, {"set", "k", "v", "keepttl", "px", "1"}, {"set", "k", "v", "get", "get"},
	{"set", "k", "v", "ex", "60", "nx"}, {"ttl", "k"}, {"set", "k", "w", "ex", "60", "nx", "get"},
	{"set", "k", "v", "ex", "10", "ex", "20"}, {"ttl", "k"}, {"set", "k", "v", "ex", "abc", "px", "20"},
	{"set", "k", "v", "px", "abc", "px", "30000"}, {"set", "k", "v", "ex", "10", "ex"}, {"set", "k", "v", "ex", "10", "ex", "abc"},
	{"getex", "k", "ex", "abc", "ex", "40"}, {"ttl", "k"}, {"getex", "k", "persist", "ex", "10"},
	{"getex", "k", "ex", "10", "persist"}, {"getex", "k", "px", "-1"}, {"getex", "k", "keepttl"}, {"getex", "k", "exat", "1", "px", "5"},
	{"set", "k", "x", "pxat", "1", "xx", "get"}, {"exists", "k"}, {"set", "a", "1", "exat", "1", "nx"}, {"exists", "a"},
	{"setex", "k", "0", "v"}, {"psetex", "k", "abc", "v"}, {"setnx", "k", "1"}, {"setnx", "k", "2"}, {"getset", "k", "3"},
	{"getex", "k", "persist"}, {"getex", "k", "ex", "0"}, {"getex", "k", "px", "100000"}, {"pttl", "k"}, {"getdel", "k"},
	{"mset", "a"}, {"mset", "a", "1", "b", "2"}, {"mget", "a", "nope", "b"}, {"del", "a", "b", "nope"},
	{"set", "e", "v"}, {"expire", "e", "10", "gt"}, {"expire", "e", "10", "lt"}, {"expire", "e", "5", "nx"},
	{"expire", "e", "10", "nx", "xx"}, {"expire", "e", "10", "gt", "lt"}, {"expire", "e", "10", "foo"},
	{"pexpire", "e", "9223372036854775807"}, {"expire", "e", "-1", "gt"}, {"exists", "e"}, {"expireat", "e", "1"}, {"exists", "e"},
	{"set", "x", "v"}, {"pexpireat", "x", "-9223372036854775808"}, {"exists", "x"},
	{"set", "y", "v"}, {"expireat", "y", "-9223372036854775"}, {"exists", "y"},
	{"persist", "nope"}, {"ttl", "nope"}, {"type", "nope"}, {"scan", "abc"}, {"scan", "0", "count", "0"}, {"scan", "0", "type", "hash"},
	{"scan", "-1"}, {"scan", "-"}, {"scan", " 1"}, {"scan", "1 "}, {"scan", "+18446744073709551615"},
	{"scan", "18446744073709551616"}, {"scan", "-18446744073709551616"},
	{"select", "0"}, {"select", "abc"}, {"client", "foo"}, {"client", "setname", "a b"}, {"client", "setname", "web"},
	{"client", "getname"}, {"config", "get", "save"}, {"config", "get", "appendonly"}, {"config", "get", "timeout"},
	{"config", "set", "save", ""}, {"config", "set", "SAVE", "", "appendonly", "NO"}, {"config", "set", "save", "", "appendonly"},
	{"config", "set", "save", "", "save", ""}, {"config", "set", "foo", "1", "save", ""},
	{"config", "set", "appendonly", "yes", "foo", "1"}, {"config", "set", "appendonly", "yes", "appendonly", "no"}, {"config", "set", "save", "", "SAVE", ""}, {"config", "set", "save"}, {"config", "resetstat", "x"},
	{"config", "set", "databases", "1"}, {"config", "set", "DATABASES", "16", "foo", "1"}, {"config", "set", "save", "", "Databases", "1"}, {"auth", "x"}, {"auth", "default", "x"},
	{"exec", "x"}, {"multi"}, {"set", "{t}b", "1"}, {"exec", "x"}, {"exec"}, {"get", "{t}b"},
	{"exec"}, {"discard"}, {"multi"}, {"multi"}, {"watch", "a"}, {"set", "{t}a", "1"}, {"get", "{t}a"}, {"exec"},
	{"multi"}, {"get"}, {"exec"}, {"watch", "{t}a"}, {"set", "{t}a", "2"}, {"multi"}, {"get", "{t}a"}, {"exec"},
	{"hello", "4"}, {"hello", "3"}, {"client", "list", "type", "master"}, {"command", "info", "nosuch"}, {"get", "nope"}, {"mget", "nope"}, {"watch", "{t}a"}, {"set", "{t}a", "3"},
	{"multi"}, {"get", "{t}a"}, {"exec"}, {"config", "get", "save"}, {"hello", "2"}, {"ping"}, {"ping", "x"}, {"echo", "y"},
	{"readonly"}, {"readwrite"}, {"readonly", "x"},
	{"cluster", "Foo", "bar"}, {"cluster", "slots", "x"}, {"cluster", "keyslot"}, {"cluster", "help"}, {"cluster", "help", "x"},
	{"cluster", "nodes"}, {"config", "foo"}, {"config", "help", "x"}, {"command", "foo"}, {"command", "help", "x"}, {"client", "help", "x"},
}

func TestRESP_Node_RepliesLikeRedisServer(t *testing.T) {
	redisAddr := startRedisServer(t)[0]
	n := startRESPNode(t, func(c *node.Config) { c.AllowFlush = true })
	want := replies(t, redisAddr)
	got := replies(t, n.RESPAddr())
	for i, cmd := range diffCommands {
		if got[i].raw != want[i].raw && !(freshPTTL(got, i) && freshPTTL(want, i)) {
			t.Errorf("%q: got %q; want %q (redis-server)", cmd, got[i].raw, want[i].raw)
		}
	}
}

// A client past the client limit reads what redis-server's reads, byte for
// byte, and both count it the same way in INFO.
func TestRESP_Node_RefusesPastMaxClientsLikeRedisServer(t *testing.T) {
	redisAddr := startRedisServer(t, "--maxclients", "2")[0]
	n := startRESPNode(t, func(c *node.Config) { c.RESPMaxClients = 2 })
	// refused holds two clients, returns what a third reads before the
	// server closes it, then the server's INFO.
	refused := func(addr string) (got, info string) {
		var first net.Conn
		var firstBR *bufio.Reader
		for i := range 2 {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			if _, err := nc.Write([]byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := br.ReadString('\n'); err != nil || line != "+PONG\r\n" {
				t.Fatalf("%s: a client within the limit: %q, %v", addr, line, err)
			}
			if i == 0 {
				first, firstBR = nc, br
			}
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(nc)
		if err != nil {
			t.Fatalf("%s: the client past the limit: %v", addr, err)
		}
		if _, err := first.Write([]byte("INFO\r\n")); err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		if err := readRaw(firstBR, &sb); err != nil {
			t.Fatalf("%s: INFO: %v", addr, err)
		}
		return string(b), sb.String()
	}
	want, wantInfo := refused(redisAddr)
	got, gotInfo := refused(n.RESPAddr())
	if got != want {
		t.Errorf("past the limit the node sent %q; redis-server %q", got, want)
	}
	for _, field := range []string{"maxclients:2\r\n", "rejected_connections:1\r\n"} {
		if !strings.Contains(wantInfo, field) {
			t.Fatalf("redis-server's INFO lacks %q; the test's premise is wrong", field)
		}
		if !strings.Contains(gotInfo, field) {
			t.Errorf("the node's INFO lacks %q", field)
		}
	}
}

// freshPTTL reports whether rs[i] answers a PTTL of the key the command
// before it gave a TTL (GETEX ... PX n) with n less at most the time that
// passed from sending that command to reading this reply, plus the
// millisecond a server's clock may round away. Two servers' PTTLs then
// agree as closely as the test's own timing allows: on a loaded machine
// more than a millisecond passes between the two commands.
func freshPTTL(rs []rawReply, i int) bool {
	if i == 0 || diffCommands[i][0] != "pttl" {
		return false
	}
	prev := diffCommands[i-1]
	if len(prev) < 2 || prev[len(prev)-2] != "px" {
		return false
	}
	set, errSet := strconv.Atoi(prev[len(prev)-1])
	got, errGot := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rs[i].raw, ":"), "\r\n"))
	passed := rs[i].read.Sub(rs[i-1].sent)
	return errSet == nil && errGot == nil && got <= set &&
		time.Duration(set-got)*time.Millisecond <= passed+time.Millisecond
}

// A rawReply is one command's raw reply, and when the command was sent and
// its reply read.
type rawReply struct {
	raw        string
	sent, read time.Time
}

// replies sends diffCommands on one connection and returns each raw reply,
// with the fields that must differ (server version, client ID) masked.
func replies(t *testing.T, addr string) []rawReply {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	var out []rawReply
	for _, cmd := range diffCommands {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		sent := time.Now()
		if _, err := nc.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var r strings.Builder
		if err := readRaw(br, &r); err != nil {
			t.Fatalf("%s: %q: %v", addr, cmd, err)
		}
		s := r.String()
		if cmd[0] == "hello" {
			s = maskHello(s)
		}
		out = append(out, rawReply{raw: s, sent: sent, read: time.Now()})
	}
	return out
}

// maskHello replaces the values of "version" and "id" in a HELLO reply.
func maskHello(s string) string {
	parts := strings.Split(s, "\r\n")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i+1] == "version" || parts[i+1] == "id" {
			parts[i+2], parts[i+3] = "<masked>", ""
		}
	}
	return strings.Join(parts, "\r\n")
}

func readRaw(br *bufio.Reader, sb *strings.Builder) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	sb.WriteString(line)
	var n int
	fmt.Sscanf(line[1:], "%d", &n)
	switch line[0] {
	case '$', '=':
		if n >= 0 {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(br, buf); err != nil {
				return err
			}
			sb.Write(buf)
		}
	case '*', '~':
		for range max(n, 0) {
			if err := readRaw(br, sb); err != nil {
				return err
			}
		}
	case '%':
		for range 2 * n {
			if err := readRaw(br, sb); err != nil {
				return err
			}
		}
	}
	return nil
}
