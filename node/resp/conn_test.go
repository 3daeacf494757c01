package resp

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestServer_Auth(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.Password = "sec" })
	c := ts.dial(t)
	c.expect("-NOAUTH Authentication required.\r\n", "get", "a")
	c.expect("-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n", "exec") // as Redis
	c.expect("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n", "hello", "3")
	c.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "auth", "bad")
	c.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "auth", "user", "sec")
	c.send("*11\r\n")
	if got := c.reply(); got != "-ERR Protocol error: unauthenticated multibulk length\r\n" {
		t.Errorf("got %q; want the unauthenticated multibulk error", got)
	}
	d := ts.dial(t)
	d.expect("+OK\r\n", "auth", "sec")
	d.expect("$-1\r\n", "get", "a")
	e := ts.dial(t)
	e.cmd("hello", "3", "auth", "default", "sec", "setname", "app")
	if got := e.reply(); !strings.HasPrefix(got, "%7\r\n") {
		t.Errorf("HELLO 3 AUTH: got %q; want a map", got)
	}
	e.expect("$3\r\napp\r\n", "client", "getname")
	e.expect("_\r\n", "get", "a")
}

func TestServer_Auth_NoPasswordConfigured(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n", "auth", "x")
	c.expect("+OK\r\n", "auth", "default", "anything")
	c.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n", "auth", "other", "x")
	c.cmd("hello", "3", "auth", "default", "x")
	if got := c.reply(); !strings.HasPrefix(got, "%7\r\n") {
		t.Errorf("HELLO 3 AUTH default with no password configured: got %q; want the HELLO map", got)
	}
}

func TestServer_Hello(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.cmd("hello", "2")
	if got := c.reply(); !strings.HasPrefix(got, "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:2\r\n") {
		t.Errorf("HELLO 2: got %q", got)
	}
	c.cmd("hello", "3")
	if got := c.reply(); !strings.Contains(got, "$4\r\nmode\r\n$10\r\nstandalone\r\n") || got[0] != '%' {
		t.Errorf("HELLO 3: got %q", got)
	}
	c.expect("_\r\n", "get", "nope")
	c.expect("%0\r\n", "config", "get", "nothing")
	c.expect("%2\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", "config", "get", "save", "appendonly")
}

func TestServer_Client(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("$-1\r\n", "client", "getname")
	c.expect("+OK\r\n", "client", "setname", "web-1")
	c.expect("$5\r\nweb-1\r\n", "client", "getname")
	c.expect("+OK\r\n", "client", "setinfo", "lib-name", "go-redis")
	c.expect("+OK\r\n", "CLIENT", "SETINFO", "LIB-VER", "9.23.0")
	c.cmd("client", "id")
	if got := c.reply(); got[0] != ':' {
		t.Errorf("CLIENT ID: got %q; want an integer", got)
	}
	c.expect("+OK\r\n", "select", "0")
	c.expect("$2\r\nhi\r\n", "echo", "hi")
	c.expect("$2\r\nhi\r\n", "ping", "hi")
	// Not OK, then a reply to each command after all: a client counting on
	// OFF would read them out of step.
	c.expect("-ERR CLIENT REPLY is not supported: every command is answered\r\n", "client", "reply", "off")
	c.expect("+PONG\r\n", "ping")
}

// CLIENT LIST lists every connection in the order they came, or those
// its TYPE or ID filter names, as Redis 7.0 does.
func TestServer_ClientList_filters(t *testing.T) {
	ts := startServer(t)
	var ids []string
	var conns []*rawConn
	for range 3 {
		c := ts.dial(t)
		c.cmd("client", "id")
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(c.reply(), ":"), "\r\n"))
		conns = append(conns, c)
	}
	c := conns[0]
	list := func(args ...string) []string {
		t.Helper()
		c.cmd(append([]string{"client", "list"}, args...)...)
		var got []string
		for _, f := range strings.Fields(c.reply()) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				got = append(got, id)
			}
		}
		return got
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, ids},
		{[]string{"TYPE", "normal"}, ids},
		{[]string{"type", "pubsub"}, nil},
		{[]string{"id", ids[2], ids[0]}, []string{ids[2], ids[0]}}, // in the order asked
		{[]string{"id", ids[1], ids[1]}, []string{ids[1], ids[1]}}, // and as often
		{[]string{"ID", ids[1], "999999"}, ids[1:2]},
		{[]string{"id", "0", "-1"}, nil},
	} {
		if got := list(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("CLIENT LIST %q: ids %v; want %v", tc.args, got, tc.want)
		}
	}
}

// TestServer_InfoKeyspace_CountsKeysWithTTL: INFO keyspace's expires=
// counts the keys with a TTL, as each command gives or takes one.
func TestServer_InfoKeyspace_CountsKeysWithTTL(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	keyspace := func(want string) {
		t.Helper()
		c.cmd("info", "keyspace")
		if got := c.reply(); !strings.Contains(got, want) {
			t.Errorf("INFO keyspace: got %q; want %q", got, want)
		}
	}
	c.expect("+OK\r\n", "set", "a", "v")
	c.expect("+OK\r\n", "set", "b", "v", "ex", "100")
	c.expect("+OK\r\n", "set", "c", "v", "px", "100000")
	keyspace("db0:keys=3,expires=2,avg_ttl=0\r\n")
	c.expect(":1\r\n", "expire", "a", "100")
	keyspace("db0:keys=3,expires=3,")
	c.expect(":1\r\n", "persist", "b")
	c.expect("+OK\r\n", "set", "c", "w", "keepttl")
	keyspace("db0:keys=3,expires=2,")
	c.expect("+OK\r\n", "set", "c", "v")
	c.expect("$1\r\nv\r\n", "getex", "a", "persist")
	keyspace("db0:keys=3,expires=0,")
	c.expect("$1\r\nv\r\n", "getex", "b", "ex", "100")
	c.expect(":1\r\n", "del", "c")
	keyspace("db0:keys=2,expires=1,")

	// Under RESP3, INFO and CLIENT INFO are verbatim text, as Redis's.
	c.cmd("hello", "3")
	c.reply()
	want := "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
	keyspace(fmt.Sprintf("=%d\r\ntxt:%s\r\n", 4+len(want), want))
	c.cmd("client", "info")
	if got := c.reply(); !strings.HasPrefix(got, "=") || !strings.Contains(got, "\r\ntxt:id=") {
		t.Errorf("CLIENT INFO under RESP3: got %q; want verbatim text", got)
	}
}

func TestServer_Introspection(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "k", "v")
	c.cmd("info")
	info := c.reply()
	for _, want := range []string{"# Server\r\n", "redis_version:7.2.0\r\n", "# Clients\r\n", "connected_clients:1\r\n", "# Memory\r\n", "used_memory:", "loading:0\r\n", "# Keyspace\r\n", "db0:keys=1,"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	c.cmd("info", "keyspace")
	if got := c.reply(); strings.Contains(got, "# Server") || !strings.Contains(got, "db0:keys=1") {
		t.Errorf("INFO keyspace: got %q", got)
	}
	c.cmd("command", "count")
	n := c.reply()
	c.cmd("command")
	if got := c.reply(); !strings.HasPrefix(got, "*"+strings.TrimSuffix(n[1:], "\r\n")+"\r\n") {
		t.Errorf("COMMAND: got %.40q; want %s entries", got, n)
	}
	c.cmd("command", "docs", "get")
	if got := c.reply(); !strings.HasPrefix(got, "*2\r\n$3\r\nget\r\n") {
		t.Errorf("COMMAND DOCS get: got %q", got)
	}
	c.cmd("time")
	if got := c.reply(); !strings.HasPrefix(got, "*2\r\n$10\r\n") {
		t.Errorf("TIME: got %q", got)
	}
	c.expect("+OK\r\n", "quit")
	if !c.closed() {
		t.Error("QUIT: connection still open")
	}
}

func TestServer_Cluster(t *testing.T) {
	var addr string
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	addr = ts.addr
	host, port := splitAddr(addr)
	c := ts.dial(t)
	c.expect(":12182\r\n", "cluster", "keyslot", "foo")
	c.expect(":12182\r\n", "cluster", "keyslot", "{foo}bar")
	c.expect("-ERR unknown subcommand 'foo'. Try CLUSTER HELP.\r\n", "cluster", "foo")
	c.expect("-ERR wrong number of arguments for 'cluster|myid' command\r\n", "cluster", "myid", "x")
	c.expect("+OK\r\n", "readonly")
	c.expect("+OK\r\n", "readwrite")
	id := nodeID("node-a")
	c.expect("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$"+itoa(len(host))+"\r\n"+host+"\r\n:"+itoa(port)+"\r\n$40\r\n"+id+"\r\n", "cluster", "slots")
	c.cmd("cluster", "nodes")
	if got := c.reply(); !strings.Contains(got, id+" "+addr+"@0,node-a myself,master - 0 0 1 connected 0-16383\n") {
		t.Errorf("CLUSTER NODES: got %q", got)
	}
	c.cmd("cluster", "info")
	if got := c.reply(); !strings.Contains(got, "cluster_state:ok") || !strings.Contains(got, "cluster_slots_assigned:16384") {
		t.Errorf("CLUSTER INFO: got %q", got)
	}
	c.cmd("cluster", "shards")
	if got := c.reply(); !strings.Contains(got, "$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n") {
		t.Errorf("CLUSTER SHARDS: got %q", got)
	}
	c.expect("+OK\r\n", "set", "foo", "v")

	// Slots served elsewhere are redirected, once every node has the
	// layout.
	split := Topology{Epoch: 2, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{0, 8191}}, Primary: Peer{Name: "node-a", Addr: addr}},
		{Slots: [][2]uint16{{8192, 16383}}, Primary: Peer{Name: "node-b", Addr: "10.0.0.2:6379"}},
	}}
	ts.b.topo.Store(&split)
	c.expect("-MOVED 12182 10.0.0.2:6379\r\n", "get", "foo")
	c.expect("-MOVED 12182 10.0.0.2:6379\r\n", "set", "{foo}x", "v")
	c.expect("$-1\r\n", "get", "a{b}") // slot 3300

	// After READONLY, reads of a slot this node replicates are served
	// here; writes, and reads after READWRITE, are redirected. Inside
	// MULTI nothing is: WATCH there gets its own error.
	replica := split
	replica.Epoch = 5
	replica.Shards = []Shard{split.Shards[0], {Slots: split.Shards[1].Slots, Primary: split.Shards[1].Primary, Replicas: []Peer{{Name: "node-a", Addr: addr}}}}
	ts.b.topo.Store(&replica)
	c.expect("-MOVED 12182 10.0.0.2:6379\r\n", "get", "foo")
	c.expect("+OK\r\n", "readonly")
	c.expect("$1\r\nv\r\n", "get", "foo")
	c.expect("-MOVED 12182 10.0.0.2:6379\r\n", "set", "foo", "w")
	c.expect("+OK\r\n", "readwrite")
	c.expect("-MOVED 12182 10.0.0.2:6379\r\n", "get", "foo")
	c.expect("+OK\r\n", "multi")
	c.expect("-ERR WATCH inside MULTI is not allowed\r\n", "watch", "foo")
	c.expect("+OK\r\n", "discard")

	// While nodes disagree on the layout the node serves every slot
	// itself (its backend forwards), so that no client is sent back and
	// forth; CLUSTER SLOTS still shows the layout.
	unsettled := split
	unsettled.Epoch, unsettled.Settled = 3, false
	ts.b.topo.Store(&unsettled)
	c.expect("$1\r\nv\r\n", "get", "foo")
	c.cmd("cluster", "slots")
	if got := c.reply(); !strings.Contains(got, "10.0.0.2") {
		t.Errorf("CLUSTER SLOTS while unsettled: got %q; want node-b's slots", got)
	}

	// A primary without a Redis address cannot be redirected to.
	noAddr := split
	noAddr.Epoch, noAddr.Shards = 4, []Shard{split.Shards[0], {Slots: split.Shards[1].Slots, Primary: Peer{Name: "node-b"}}}
	ts.b.topo.Store(&noAddr)
	c.expect("$1\r\nv\r\n", "get", "foo")
}
