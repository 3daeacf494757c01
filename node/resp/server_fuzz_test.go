package resp

import (
	"bufio"
	"bytes"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// Most commands and arguments a fuzz input turns into, so that one input
// stays quick to run.
const (
	fuzzMaxCommands = 8
	fuzzMaxArgs     = 8
)

// fuzzCommands turns fuzz bytes into commands: 0x00 separates commands,
// 0x01 their words. A command's first word picks a name from names by its
// first byte, so that the fuzzer reaches every command's arguments without
// having to spell its name; a first word that starts with 0xff is taken as
// it is, after that byte (unknown names, odd case).
func fuzzCommands(data []byte, names []string) [][][]byte {
	var cmds [][][]byte
	for _, c := range bytes.SplitN(data, []byte{0}, fuzzMaxCommands) {
		words := bytes.SplitN(c, []byte{1}, fuzzMaxArgs+1)
		switch first := words[0]; {
		case len(first) > 0 && first[0] == 0xff:
			words[0] = first[1:]
		case len(first) > 0:
			words[0] = []byte(names[int(first[0])%len(names)])
		default:
			words[0] = []byte("ping")
		}
		cmds = append(cmds, words)
	}
	return cmds
}

// fuzzInput encodes commands written as words for fuzzCommands, each name
// as its index in names.
func fuzzInput(names []string, cmds ...[]string) []byte {
	var b []byte
	for i, c := range cmds {
		if i > 0 {
			b = append(b, 0)
		}
		i := slices.Index(names, c[0])
		if i < 0 {
			panic("fuzz seed names no command: " + c[0])
		}
		b = append(b, byte(i))
		for _, w := range c[1:] {
			b = append(append(b, 1), w...)
		}
	}
	return b
}

func encodeCommand(args [][]byte) []byte {
	b := []byte("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+itoa(len(a))+"\r\n"...)
		b = append(append(b, a...), "\r\n"...)
	}
	return b
}

// fuzzPassword is the password of FuzzServerCommands's second server.
const fuzzPassword = "fuzz-secret"

// FuzzServerCommands sends commands built from the fuzzer's bytes (any
// command, any arguments: wrong arities, types, numbers, flags and their
// combinations, transactions) to a server over TCP, pipelined, then PING.
// The first byte picks the server: without a password, or with
// fuzzPassword (which some seeds give to AUTH or HELLO), where a client
// that has not authenticated is answered NOAUTH, and so is its PING.
// Every command must get exactly one well-formed reply, in order, within
// a few seconds, and PING must find the connection still in step: a
// handler that panics would take the whole node down (it runs on the event
// loop or a worker, where nothing recovers), one that answers twice or
// not at all would shift every later reply to the wrong command. QUIT ends
// the input early. The store is flushed before each input, so that an
// input that fails fails again alone.
//
//	go test ./node/resp -run '^$' -fuzz '^FuzzServerCommands$' -fuzztime 5m
func FuzzServerCommands(f *testing.F) {
	names := slices.Sorted(maps.Keys(commandTable()))
	for _, seed := range [][][]string{
		{{"set", "k", "v", "EX", "10", "NX", "GET"}, {"get", "k"}, {"getex", "k", "PERSIST"}, {"pttl", "k"}},
		{{"set", "k", "v", "KEEPTTL", "XX"}, {"setex", "k", "-1", "v"}, {"psetex", "k", "0", "v"}},
		{{"expire", "k", "10", "GT"}, {"pexpireat", "k", "99999999999999999999"}, {"ttl", "k"}, {"persist", "k"}},
		{{"mset", "a", "1", "b"}, {"mget", "a", "b", "c"}, {"del", "a", "b"}, {"unlink"}, {"exists", "a", "a"}},
		{{"multi"}, {"set", "{t}a", "1"}, {"get", "{t}b"}, {"exec"}, {"watch", "k"}, {"multi"}, {"discard"}, {"unwatch"}},
		{{"multi"}, {"set", "a", "1"}, {"set", "b", "2"}, {"exec"}},
		{{"scan", "0", "MATCH", "*[a-", "COUNT", "0"}, {"keys", "[^"}, {"scan", "18446744073709551616"}, {"type", "k"}},
		{{"hello", "3", "SETNAME", "x"}, {"client", "list", "ID", "1", "2"}, {"client", "info"}, {"client", "no-such"}},
		{{"hello", "2", "AUTH", "u", "p"}, {"auth", "p"}, {"select", "1"}, {"config", "get", "*"}, {"info", "all"}},
		{{"command", "docs", "get"}, {"command", "count"}, {"command", "info"}, {"cluster", "keyslot", "k"}, {"cluster", "shards"}},
		{{"getset", "k", "v"}, {"getdel", "k"}, {"setnx", "k", "v"}, {"dbsize"}, {"time"}, {"echo", "x"}},
		{{"flushall", "ASYNC"}, {"flushdb"}, {"readonly"}, {"readwrite"}, {"quit"}, {"ping"}},
		{{"get", "k"}, {"auth", "wrong"}, {"auth", "default", fuzzPassword}, {"get", "k"}},
		{{"hello", "3", "AUTH", "default", fuzzPassword}, {"set", "k", "v"}, {"client", "setname", "x"}},
		{{"hello", "3"}, {"multi"}, {"auth", fuzzPassword}, {"exec"}},
	} {
		f.Add(append([]byte{0}, fuzzInput(names, seed...)...))
		f.Add(append([]byte{1}, fuzzInput(names, seed...)...))
	}
	servers := []*testServer{startServer(f), startServer(f, func(cfg *Config, _ *storeBackend) { cfg.Password = fuzzPassword })}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		ts := servers[data[0]&1]
		ts.b.st.Flush()
		cmds := fuzzCommands(data[1:], names)
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		// Closed with a reset: a fuzzer's hundreds of thousands of
		// connections would otherwise fill the loopback ports with
		// TIME_WAIT.
		nc.(*net.TCPConn).SetLinger(0)
		defer nc.Close()
		var out []byte
		for _, c := range cmds {
			out = append(out, encodeCommand(c)...)
		}
		out = append(out, encodeCommand([][]byte{[]byte("PING")})...)
		if _, err := nc.Write(out); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(nc)
		for i, c := range cmds {
			var sb strings.Builder
			if err := readReply(br, &sb); err != nil {
				t.Fatalf("command %d of %q: no whole reply: %v (so far %q)", i, cmds, err, sb.String())
			}
			if !wellFormed(sb.String()) {
				t.Fatalf("command %d of %q: malformed reply %q", i, cmds, sb.String())
			}
			if strings.EqualFold(string(c[0]), "quit") && sb.String() == "+OK\r\n" {
				return
			}
		}
		var sb strings.Builder
		if err := readReply(br, &sb); err != nil {
			t.Fatalf("after %q, PING: no reply: %v", cmds, err)
		}
		if got := sb.String(); got != "+PONG\r\n" && got != "+QUEUED\r\n" && (ts == servers[0] || !strings.HasPrefix(got, "-NOAUTH ")) {
			t.Fatalf("after %q, PING answered %q: the replies are out of step", cmds, got)
		}
	})
}

// wellFormed reports whether a reply readReply took whole starts with a
// RESP2 or RESP3 type byte that readReply frames, and ends in CRLF.
func wellFormed(reply string) bool {
	if reply == "" || !strings.ContainsRune("+-:$*_#,(=%~>", rune(reply[0])) {
		return false
	}
	return strings.HasSuffix(reply, "\r\n")
}
