package resp

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node/store"
)

func TestServer_ErrorWording(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"foo"}, "-ERR unknown command 'foo', with args beginning with: \r\n"},
		{[]string{"foo", "a", "b"}, "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"},
		{[]string{"get"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"GET", "a", "b"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"set", "k", "v", "ex", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"set", "k", "v", "ex", "0"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "px", "-1"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "exat", "0"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "ex", "99999999999999999"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"set", "k", "v", "px", "9999999999999999999"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"set", "k", "v", "nx", "xx"}, "-ERR syntax error\r\n"},
		{[]string{"set", "k", "v", "ex", "10", "px", "10"}, "-ERR syntax error\r\n"},
		{[]string{"set", "k", "v", "keepttl", "ex", "10"}, "-ERR syntax error\r\n"},
		{[]string{"set", "k", "v", "ex"}, "-ERR syntax error\r\n"},
		{[]string{"setex", "k", "0", "v"}, "-ERR invalid expire time in 'setex' command\r\n"},
		{[]string{"psetex", "k", "0", "v"}, "-ERR invalid expire time in 'psetex' command\r\n"},
		{[]string{"setex", "k", "abc", "v"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"expire", "k", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"expire", "k", "10", "nx", "xx"}, "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
		{[]string{"expire", "k", "10", "gt", "lt"}, "-ERR GT and LT options at the same time are not compatible\r\n"},
		{[]string{"expire", "k", "10", "foo"}, "-ERR Unsupported option foo\r\n"},
		{[]string{"expire", "k", "1e3", "zz"}, "-ERR Unsupported option zz\r\n"}, // options first, as Redis
		{[]string{"expire", "k", "99999999999999999"}, "-ERR invalid expire time in 'expire' command\r\n"},
		{[]string{"pexpire", "k", "9223372036854775807"}, "-ERR invalid expire time in 'pexpire' command\r\n"},
		{[]string{"getex", "k", "ex", "0"}, "$-1\r\n"}, // a missing key's null before the time's check, as Redis
		{[]string{"set", "e", "v"}, "+OK\r\n"},
		{[]string{"getex", "e", "ex", "0"}, "-ERR invalid expire time in 'getex' command\r\n"},
		{[]string{"getex", "e", "px", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"getex", "k", "persist", "ex", "1"}, "-ERR syntax error\r\n"},
		{[]string{"getex", "k", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"getex", "k", "persist", "persist", "ex"}, "-ERR syntax error\r\n"},
		{[]string{"client", "no-evict", "maybe"}, "-ERR syntax error\r\n"},
		{[]string{"client", "no-touch"}, "-ERR wrong number of arguments for 'client|no-touch' command\r\n"},
		{[]string{"select", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"select", "1"}, "-ERR DB index is out of range\r\n"},
		{[]string{"client", "foo"}, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"},
		{[]string{"client", "setname"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		{[]string{"client", "setname", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"client", "setinfo", "foo", "x"}, "-ERR Unrecognized option 'foo'\r\n"},
		{[]string{"client", "list", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"client", "list", "id"}, "-ERR syntax error\r\n"},
		{[]string{"client", "list", "id", "1", "abc"}, "-ERR Invalid client ID\r\n"},
		{[]string{"client", "list", "id", "+1"}, "-ERR Invalid client ID\r\n"},
		{[]string{"client", "list", "id", "+1234567890123456789"}, "-ERR Invalid client ID\r\n"},
		{[]string{"client", "list", "id", "01"}, "-ERR Invalid client ID\r\n"},
		{[]string{"client", "list", "type", "foo"}, "-ERR Unknown client type 'foo'\r\n"},
		{[]string{"client", "list", "type", "normal", "id", "1"}, "-ERR syntax error\r\n"},
		{[]string{"auth", "x"}, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"},
		{[]string{"hello", "4"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"hello", "abc"}, "-ERR Protocol version is not an integer or out of range\r\n"},
		{[]string{"hello", "2", "foo"}, "-ERR Syntax error in HELLO option 'foo'\r\n"},
		{[]string{"scan", "abc"}, "-ERR invalid cursor\r\n"},
		{[]string{"scan", "0", "count", "0"}, "-ERR syntax error\r\n"},
		{[]string{"scan", "0", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"mset", "a"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"mset", "a", "b", "c"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"ping", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
		{[]string{"flushall", "x"}, "-ERR syntax error\r\n"},
		{[]string{"exec"}, "-ERR EXEC without MULTI\r\n"},
		{[]string{"discard"}, "-ERR DISCARD without MULTI\r\n"},
		{[]string{"cluster", "slots"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"readonly"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"readwrite"}, "-ERR This instance has cluster support disabled\r\n"},
		// Unknown subcommands and wrong arities before cluster support
		// disabled, as Redis 7.0; KEYSLOT is answered (Redis refuses it).
		{[]string{"cluster", "Foo", "bar"}, "-ERR unknown subcommand 'Foo'. Try CLUSTER HELP.\r\n"},
		{[]string{"cluster", "slots", "x"}, "-ERR wrong number of arguments for 'cluster|slots' command\r\n"},
		{[]string{"cluster", "keyslot"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
		{[]string{"cluster", "help"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"cluster", "nodes"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"cluster", "keyslot", "foo"}, ":12182\r\n"},
		{[]string{"config", "foo"}, "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n"},
		{[]string{"command", "foo"}, "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n"},
		{[]string{"config", "set", "a", "b"}, "-ERR Unknown option or number of arguments for CONFIG SET - 'a'\r\n"},
		{[]string{"config", "set", "save", ""}, "+OK\r\n"}, // what it is already
		{[]string{"config", "set", "appendonly", "yes"}, "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - cloakroomd cannot change it at run time; it is 'no'\r\n"},
		{[]string{"config", "set", "save", "", "maxmemory-policy", "noeviction"}, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - cloakroomd cannot change it at run time; it is 'volatile-ttl'\r\n"},
		{[]string{"command", "count", "x"}, "-ERR wrong number of arguments for 'command|count' command\r\n"},
		{[]string{"set", "k", "v", "get", "get"}, "$-1\r\n"},
	}
	for _, tc := range cases {
		c.expect(tc.want, tc.args...)
	}
}

func TestServer_Set_Options(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "v")
	c.expect("$-1\r\n", "set", "k", "w", "nx")
	c.expect("$1\r\nv\r\n", "set", "k", "w", "nx", "get")
	c.expect("$1\r\nv\r\n", "set", "k", "w", "get")
	c.expect("$-1\r\n", "set", "absent", "w", "xx")
	c.expect("$-1\r\n", "set", "absent", "w", "xx", "get")
	c.expect(":0\r\n", "exists", "absent")
	c.expect("+OK\r\n", "set", "k", "w", "xx", "px", "100000")
	c.expect("+OK\r\n", "set", "k", "x", "keepttl")
	if got := c.ttl("k"); got < 90 || got > 100 {
		t.Errorf("TTL after KEEPTTL: got %d; want about 100", got)
	}
	c.expect("+OK\r\n", "set", "k", "y")
	c.expect(":-1\r\n", "ttl", "k")
	c.expect("+OK\r\n", "set", "k", "y", "exat", "99999999999")
	c.expect("+OK\r\n", "set", "k", "y", "pxat", "1")
	c.expect(":0\r\n", "exists", "k")
	c.expect("$-1\r\n", "set", "k", "y", "pxat", "1", "xx")
	c.expect("+OK\r\n", "set", "k", "y")
	c.expect("$1\r\ny\r\n", "set", "k", "z", "exat", "1", "get")
	c.expect(":0\r\n", "exists", "k")
}

func TestServer_Set_NXKeepsTTL(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "v", "EX", "60", "NX")
	if got := c.ttl("k"); got != 60 {
		t.Errorf("TTL: got %d; want 60", got)
	}
	c.expect("$-1\r\n", "SET", "k", "w", "EX", "60", "NX")
	c.expect("$1\r\nv\r\n", "get", "k")
}

func (c *rawConn) ttl(key string) int {
	c.t.Helper()
	c.cmd("ttl", key)
	r := c.reply()
	n, ok := parseInt([]byte(strings.TrimSuffix(strings.TrimPrefix(r, ":"), "\r\n")))
	if !ok {
		c.t.Fatalf("ttl %s: got %q; want an integer", key, r)
	}
	return int(n)
}

func TestServer_Strings(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect(":1\r\n", "setnx", "k", "v")
	c.expect(":0\r\n", "setnx", "k", "w")
	c.expect("$1\r\nv\r\n", "getset", "k", "w")
	c.expect("$-1\r\n", "getset", "new", "x")
	c.expect("$1\r\nw\r\n", "getdel", "k")
	c.expect("$-1\r\n", "getdel", "k")
	c.expect("+OK\r\n", "setex", "k", "100", "v")
	c.expect("+OK\r\n", "psetex", "p", "100000", "v")
	c.expect(":100\r\n", "ttl", "p")
	c.expect("$1\r\nv\r\n", "getex", "k", "persist")
	c.expect(":-1\r\n", "ttl", "k")
	c.expect("$1\r\nv\r\n", "getex", "k", "persist", "PERSIST") // repeated, as Redis accepts
	c.expect("+OK\r\n", "client", "no-evict", "on")
	c.expect("$1\r\nv\r\n", "getex", "k", "ex", "50")
	c.expect(":50\r\n", "ttl", "k")
	c.expect("$1\r\nv\r\n", "getex", "k", "pxat", "1")
	c.expect(":-2\r\n", "ttl", "k")
	c.expect("$-1\r\n", "getex", "k")
	c.expect("+OK\r\n", "mset", "a", "1", "b", "2", "{a}c", "3")
	c.expect("*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n3\r\n", "mget", "a", "b", "nope", "{a}c")
	c.expect(":3\r\n", "exists", "a", "a", "b")
	c.expect(":2\r\n", "del", "a", "b", "nope")
	c.expect(":1\r\n", "unlink", "{a}c")
	c.expect("+string\r\n", "type", "new")
	c.expect("+none\r\n", "type", "nope")
}

// A key a DEL names twice counts once, as in Redis: alone, in a
// transaction and pipelined (each key its own request there), and with
// more keys than a short list (the store and the RESP layer search those).
func TestServer_DelOfAKeyNamedTwice_countsItOnce(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	mset := func() { c.expect("+OK\r\n", "mset", "a", "1", "{a}b", "2") }
	mset()
	c.expect(":2\r\n", "del", "a", "{a}b", "a", "nope", "{a}b")
	mset()
	c.expect(":2\r\n", "del", "a", "a", "a", "a", "a", "a", "a", "a", "a", "a", "{a}b", "a")
	mset()
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "del", "a", "a", "{a}b")
	c.expect("+QUEUED\r\n", "del", "a")
	c.expect("*2\r\n:2\r\n:0\r\n", "exec")
	mset()
	c.send("*3\r\n$3\r\ndel\r\n$1\r\na\r\n$1\r\na\r\n*3\r\n$3\r\ndel\r\n$4\r\n{a}b\r\n$4\r\n{a}b\r\n")
	for i := range 2 {
		if got := c.reply(); got != ":1\r\n" {
			t.Errorf("pipelined DEL %d of a key named twice: got %q; want :1", i, got)
		}
	}
}

func TestServer_Expire_Options(t *testing.T) {
	// The store's clock stands still, so that a TTL reads back exactly
	// (with the system clock, 2 ms passed under -race on a loaded machine).
	now := time.Now()
	ts := startServer(t, func(_ *Config, b *storeBackend) {
		b.st = store.New(store.Config{Partitions: 271, Now: func() time.Time { return now }})
	})
	c := ts.dial(t)
	c.expect(":0\r\n", "expire", "nope", "10")
	c.expect(":0\r\n", "persist", "nope")
	c.expect("+OK\r\n", "set", "k", "v")
	c.expect(":0\r\n", "persist", "k")
	c.expect(":0\r\n", "expire", "k", "50", "gt") // no TTL counts as infinite
	c.expect(":0\r\n", "expire", "k", "50", "xx")
	c.expect(":1\r\n", "expire", "k", "50", "lt")
	c.expect(":0\r\n", "expire", "k", "60", "nx")
	c.expect(":1\r\n", "expire", "k", "100", "gt")
	c.expect(":0\r\n", "expire", "k", "80", "gt")
	c.expect(":1\r\n", "pexpire", "k", "70000", "lt", "xx")
	c.expect(":70000\r\n", "pttl", "k")
	c.expect(":1\r\n", "persist", "k")
	c.expect(":-1\r\n", "pttl", "k")
	c.expect(":1\r\n", "expireat", "k", "99999999999")
	c.expect(":1\r\n", "pexpireat", "k", "1")
	c.expect(":0\r\n", "exists", "k")
	c.expect("+OK\r\n", "set", "k", "v")
	c.expect(":1\r\n", "expire", "k", "0")
	c.expect(":-2\r\n", "ttl", "k")
}

func TestServer_Keys_Scan(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	want := map[string]bool{}
	for i := range 120 {
		k := "sess:" + itoa(i)
		c.expect("+OK\r\n", "set", k, "v")
		want[k] = true
	}
	c.expect("+OK\r\n", "set", "other", "v")
	c.expect(":121\r\n", "dbsize")
	c.cmd("keys", "sess:*")
	if got := strings.Count(c.reply(), "sess:"); got != 120 {
		t.Errorf("KEYS sess:*: got %d keys; want 120", got)
	}
	seen := map[string]bool{}
	cursor := "0"
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("SCAN did not finish")
		}
		c.cmd("scan", cursor, "match", "sess:*", "count", "7")
		lines := strings.Split(c.reply(), "\r\n")
		cursor = lines[2]
		for _, l := range lines[4:] {
			if strings.HasPrefix(l, "sess:") {
				seen[l] = true
			} else if l == "other" {
				t.Errorf("SCAN MATCH sess:* returned %q", l)
			}
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != len(want) {
		t.Errorf("SCAN saw %d keys; want %d", len(seen), len(want))
	}
	c.expect("*2\r\n$1\r\n0\r\n*0\r\n", "scan", "0", "type", "hash")
	// An empty pattern matches only the empty key, as in Redis: not every
	// key (every session ID, here).
	c.expect("*0\r\n", "keys", "")
	c.expect("*2\r\n$1\r\n0\r\n*0\r\n", "scan", "0", "match", "")
	c.cmd("scan", "0", "match", "*", "count", "1000")
	if got := strings.Count(c.reply(), "\r\n$"); got != 122 { // the cursor and 121 keys
		t.Errorf("SCAN MATCH *: %d bulk strings; want the cursor and 121 keys", got)
	}
}

// A SCAN whose pattern matches nothing returns after examining about ten
// times COUNT keys, with no keys and a cursor, as Redis's does: it used to
// walk the whole keyspace in one call. Paging on finds every match.
func TestServer_Scan_boundsItsWorkPerCall(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	for i := range 3000 {
		c.expect("+OK\r\n", "set", "other:"+itoa(i), "v")
	}
	c.expect("+OK\r\n", "set", "user:1", "v")
	calls, found := 0, 0
	for cursor := "0"; ; calls++ {
		if calls > 10_000 {
			t.Fatal("SCAN did not finish")
		}
		c.cmd("scan", cursor, "match", "user:*", "count", "10")
		lines := strings.Split(c.reply(), "\r\n")
		cursor = lines[2]
		found += strings.Count(strings.Join(lines[3:], "\n"), "user:1")
		if calls == 0 && cursor == "0" {
			t.Fatal("the first SCAN MATCH of 3,001 keys finished the iteration; want a cursor after about 100 keys")
		}
		if cursor == "0" {
			break
		}
	}
	if found != 1 {
		t.Errorf("paging found user:1 %d times; want once", found)
	}
	if calls < 3001/200 {
		t.Errorf("%d calls for 3,001 keys; want each to examine about 100", calls+1)
	}
}

func TestServer_FlushAll(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "v")
	c.expect("+OK\r\n", "flushall")
	c.expect(":0\r\n", "dbsize")

	off := startServer(t, func(_ *Config, b *storeBackend) { b.allowFlush = false })
	d := off.dial(t)
	d.expect("-ERR flushall is disabled on this node; start it with --allow-flush\r\n", "flushall")
}

func TestServer_BinarySafe(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	key, val := "k\x00\r\n\xff", "\x00\r\n$3\r\nbin\xfe"
	c.expect("+OK\r\n", "set", key, val)
	c.expect("$"+itoa(len(val))+"\r\n"+val+"\r\n", "get", key)
}

func TestServer_Scan_CursorsFitAJavaScriptNumber(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	for i := range 2000 {
		c.expect("+OK\r\n", "set", "s:"+itoa(i), "v")
	}
	seen := map[string]int{}
	cursor := "0"
	for range 10000 {
		c.cmd("scan", cursor, "count", "3")
		lines := strings.Split(c.reply(), "\r\n")
		cursor = lines[2]
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil || n > 1<<53-1 {
			t.Fatalf("cursor %s: want an integer of at most 2^53-1", cursor)
		}
		for _, l := range lines[4:] {
			if strings.HasPrefix(l, "s:") {
				seen[l]++
				if seen[l] > 1 {
					t.Errorf("SCAN returned %s twice", l)
				}
			}
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != 2000 {
		t.Errorf("SCAN saw %d keys; want 2000", len(seen))
	}
}

func TestScanCursor_RoundTrip(t *testing.T) {
	for _, tc := range []struct{ p, pos uint64 }{{0, 0}, {1, 0}, {0, 1 << posShift}, {270, 1 << 46}, {16383, 1<<46 + 1<<posShift}} {
		c := encodeCursor(tc.p, tc.pos)
		if p, pos := decodeCursor(c); c > 1<<53-1 || p != tc.p || pos != tc.pos {
			t.Errorf("cursor(%d, %d) = %d decodes to (%d, %d)", tc.p, tc.pos, c, p, pos)
		}
	}
}
