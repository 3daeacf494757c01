package resp

import (
	"context"

	"github.com/cloakroom/cloakroom/protocol"
)

// cmdFlags describe how the server treats a command.
type cmdFlags uint16

const (
	flagNoAuth    cmdFlags = 1 << iota // allowed before authentication
	flagWrite                          // modifies keys
	flagReadonly                       // only reads keys
	flagTxControl                      // MULTI/EXEC/...: runs at once even inside MULTI
	flagAtomic                         // its requests run as one step when they share a partition
	flagNoMulti                        // refused inside MULTI
	flagLoop                           // a run command that never calls the backend: runs on the event loop
	flagSpread                         // its keys may be many, on any nodes: it runs in chunks (runSpread)
	flagCounts                         // answers only how many keys it deleted: may be sent again (retry.go)
)

// command is one entry of the command table. A keyed command has build and
// reply: build turns arguments into store requests (in c.reqs), reply turns
// their responses into the RESP reply, so the same command runs alone or
// queued in a transaction. Other commands have run.
type command struct {
	name              string
	arity             int // as in Redis: exact if positive, minimum if negative
	flags             cmdFlags
	first, last, step int // key positions, as in COMMAND; 0 = no keys
	group, summary    string

	run   func(ctx context.Context, c *conn, args [][]byte)
	build func(c *conn, args [][]byte, atomic bool) error
	reply func(c *conn, args [][]byte, reqs []protocol.Request, resps []protocol.Response)
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// keys returns the key arguments of args.
func (cmd *command) keys(args [][]byte) [][]byte {
	if cmd.first <= 0 || cmd.first >= len(args) {
		return nil
	}
	last := cmd.last
	if last < 0 {
		last = len(args) + last
	}
	last = min(last, len(args)-1)
	var ks [][]byte
	for i := cmd.first; i <= last; i += max(cmd.step, 1) {
		ks = append(ks, args[i])
	}
	return ks
}

// commandTable returns every command the server knows, by lower-case name.
func commandTable() map[string]*command {
	const (
		conn_ = "connection"
		str   = "string"
		gen   = "generic"
		srv   = "server"
		tx    = "transactions"
		clu   = "cluster"
		ro    = flagReadonly
		wr    = flagWrite
	)
	k1 := func(c *command) *command { c.first, c.last, c.step = 1, 1, 1; return c }
	all := func(c *command) *command { c.first, c.last, c.step = 1, -1, 1; return c }
	list := []*command{
		// Connection.
		{name: "ping", arity: -1, flags: flagLoop, group: conn_, summary: "Returns the server's liveliness response.", run: cmdPing},
		{name: "echo", arity: 2, flags: flagLoop, group: conn_, summary: "Returns the given string.", run: cmdEcho},
		{name: "quit", arity: -1, flags: flagLoop | flagNoAuth | flagTxControl, group: conn_, summary: "Closes the connection.", run: cmdQuit},
		{name: "hello", arity: -1, flags: flagLoop | flagNoAuth | flagNoMulti, group: conn_, summary: "Handshakes with the server.", run: cmdHello},
		{name: "auth", arity: -2, flags: flagLoop | flagNoAuth | flagNoMulti, group: conn_, summary: "Authenticates the connection.", run: cmdAuth},
		{name: "select", arity: 2, flags: flagLoop, group: conn_, summary: "Changes the selected database (only 0 exists).", run: cmdSelect},
		{name: "client", arity: -2, flags: flagLoop, group: conn_, summary: "Client connection commands.", run: cmdClient},
		{name: "readonly", arity: 1, flags: flagLoop, group: clu, summary: "Enables read-only queries to replicas.", run: cmdReadOnly},
		{name: "readwrite", arity: 1, flags: flagLoop, group: clu, summary: "Disables read-only queries.", run: cmdReadOnly},
		// Server.
		{name: "info", arity: -1, group: srv, summary: "Returns information and statistics about the server.", run: cmdInfo},
		{name: "config", arity: -2, flags: flagLoop, group: srv, summary: "Reads the configuration (GET); SET accepts only the values it already has.", run: cmdConfig},
		{name: "command", arity: -1, flags: flagLoop, group: srv, summary: "Returns detailed information about all commands.", run: cmdCommand},
		{name: "dbsize", arity: 1, flags: ro, group: srv, summary: "Returns the number of keys.", run: cmdDBSize},
		{name: "time", arity: 1, flags: flagLoop, group: srv, summary: "Returns the server time.", run: cmdTime},
		{name: "flushall", arity: -1, flags: wr, group: srv, summary: "Removes all keys (when the node allows it).", run: cmdFlushAll},
		{name: "flushdb", arity: -1, flags: wr, group: srv, summary: "Removes all keys (when the node allows it).", run: cmdFlushAll},
		// Strings.
		k1(&command{name: "get", arity: 2, flags: ro, group: str, summary: "Returns the string value of a key.", build: buildGet, reply: replyValue}),
		k1(&command{name: "set", arity: -3, flags: wr | flagAtomic, group: str, summary: "Sets the string value of a key.", build: buildSet, reply: replySet}),
		k1(&command{name: "setex", arity: 4, flags: wr, group: str, summary: "Sets the value and expiration in seconds.", build: buildSetEx, reply: replyOK}),
		k1(&command{name: "psetex", arity: 4, flags: wr, group: str, summary: "Sets the value and expiration in milliseconds.", build: buildSetEx, reply: replyOK}),
		k1(&command{name: "setnx", arity: 3, flags: wr, group: str, summary: "Sets the value only when the key does not exist.", build: buildSetNX, reply: replyChanged}),
		k1(&command{name: "getex", arity: -2, flags: wr, group: str, summary: "Returns the value and optionally sets its expiration.", build: buildGetEx, reply: replyGetEx}),
		k1(&command{name: "getdel", arity: 2, flags: wr, group: str, summary: "Returns the value and deletes the key.", build: buildGetDel, reply: replyValue}),
		k1(&command{name: "getset", arity: 3, flags: wr, group: str, summary: "Sets a new value and returns the old one.", build: buildGetSet, reply: replyOld}),
		all(&command{name: "mget", arity: -2, flags: ro | flagSpread, group: str, summary: "Returns the values of keys.", build: buildMGet, reply: replyMGet}),
		{name: "mset", arity: -3, flags: wr | flagAtomic | flagSpread, first: 1, last: -1, step: 2, group: str, summary: "Sets several keys.", build: buildMSet, reply: replyOK},
		// Generic.
		all(&command{name: "del", arity: -2, flags: wr | flagCounts, group: gen, summary: "Deletes keys.", build: buildDel, reply: replyCount}),
		all(&command{name: "unlink", arity: -2, flags: wr | flagCounts, group: gen, summary: "Deletes keys.", build: buildDel, reply: replyCount}),
		all(&command{name: "exists", arity: -2, flags: ro, group: gen, summary: "Counts the keys that exist.", build: buildExists, reply: replyCount}),
		k1(&command{name: "expire", arity: -3, flags: wr, group: gen, summary: "Sets a key's time to live in seconds.", build: buildExpire, reply: replyChanged}),
		k1(&command{name: "pexpire", arity: -3, flags: wr, group: gen, summary: "Sets a key's time to live in milliseconds.", build: buildExpire, reply: replyChanged}),
		k1(&command{name: "expireat", arity: -3, flags: wr, group: gen, summary: "Sets a key's expiry as a Unix time in seconds.", build: buildExpire, reply: replyChanged}),
		k1(&command{name: "pexpireat", arity: -3, flags: wr, group: gen, summary: "Sets a key's expiry as a Unix time in milliseconds.", build: buildExpire, reply: replyChanged}),
		k1(&command{name: "persist", arity: 2, flags: wr, group: gen, summary: "Removes a key's expiry.", build: buildPersist, reply: replyChanged}),
		k1(&command{name: "ttl", arity: 2, flags: ro, group: gen, summary: "Returns a key's time to live in seconds.", build: buildTTL, reply: replyTTL}),
		k1(&command{name: "pttl", arity: 2, flags: ro, group: gen, summary: "Returns a key's time to live in milliseconds.", build: buildTTL, reply: replyTTL}),
		k1(&command{name: "type", arity: 2, flags: ro, group: gen, summary: "Returns the type of a key.", build: buildTTL, reply: replyType}),
		{name: "keys", arity: 2, flags: ro, group: gen, summary: "Returns the keys matching a pattern.", run: cmdKeys},
		{name: "scan", arity: -2, flags: ro, group: gen, summary: "Iterates over the keys.", run: cmdScan},
		// Transactions.
		{name: "multi", arity: 1, flags: flagLoop | flagTxControl, group: tx, summary: "Starts a transaction.", run: cmdMulti},
		{name: "exec", arity: 1, flags: flagTxControl, group: tx, summary: "Runs the queued commands.", run: cmdExec},
		{name: "discard", arity: 1, flags: flagLoop | flagTxControl, group: tx, summary: "Discards a transaction.", run: cmdDiscard},
		all(&command{name: "watch", arity: -2, flags: flagTxControl | ro, group: tx, summary: "Watches keys for changes before EXEC.", run: cmdWatch}),
		{name: "unwatch", arity: 1, flags: flagLoop | flagTxControl, group: tx, summary: "Forgets watched keys.", run: cmdUnwatch},
		// Cluster.
		{name: "cluster", arity: -2, flags: flagLoop, group: clu, summary: "Cluster topology commands.", run: cmdCluster},
	}
	t := make(map[string]*command, len(list))
	for _, c := range list {
		t[c.name] = c
	}
	return t
}
