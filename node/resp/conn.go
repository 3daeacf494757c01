package resp

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// conn is one client connection. Its event loop owns it, or, while busy,
// the goroutine running its command; CLIENT LIST and INFO read a few
// fields, which are informational.
type conn struct {
	s        *Server
	gc       gnet.Conn // set by OnOpen
	tls      *tlsPipe  // a TLS client's connection, served through a socket pair (tls.go); nil for a plain one
	rd       *Reader
	w        *Writer
	id       int64
	addr     string
	laddr    string
	created  time.Time
	name     string
	libName  string
	libVer   string
	authed   bool
	quit     bool         // close after flushing the current replies
	http     bool         // it sent an HTTP request: close it at once (refuseHTTP)
	readonly bool         // READONLY: reads of slots this node replicates are not redirected
	pend     []byte       // a large command's input, moved out of gnet's buffer (pending.go)
	pendDead int          // bytes of pend's array before pend that have run
	held     atomic.Int64 // its input left buffered unrun, as counted in Server.waiting (holdInput writes it, on its loop)
	evicted  atomic.Bool  // chosen to be closed for MaxWaitingInput (holdInput)
	cmds     atomic.Int64 // commands run; written by the connection, read by INFO

	input     atomic.Bool // it sent input since the idle sweeper last looked (with an idle timeout)
	running   atomic.Bool // a command of its runs on a goroutine: not idle
	lastInput time.Time   // when the sweeper last found input flagged; the sweeper's, under s.mu
	idleCheck atomic.Bool // the sweeper asked its loop to close it if idle (checkIdle)
	unsent    int         // its replies' bytes not yet sent at the last checkIdle (event loop's field)

	onLoop   bool        // running on the event loop: commands that may wait are deferred
	deferred bool        // the last command was not run: it may wait
	busy     bool        // a goroutine runs a command; input waits (event loop's field)
	done     atomic.Bool // that goroutine is done
	closing  bool        // refused for a protocol error: input is discarded
	queued   bool        // in its loop's flush queue (event loop's field)
	gone     bool        // closed by its loop (event loop's field)
	hungUp   atomic.Bool // closed: a command retrying for it stops (retry.go)
	owner    *conn       // a fork's connection (batch.go); nil for a connection
	batchAt  time.Time   // when a fork's batch was built: its retries' window starts then (retry.go)
	delToken []byte      // a fork's DEL run again after its batch's atomic step failed keeps its token (runGroup)
	after    *afterPoll  // its loop's, set by OnOpen

	reqs    []protocol.Request  // the current command's requests
	part    [][]byte            // the arguments of a chunk of a command (runSpread)
	resps   []protocol.Response // their responses; Value buffers are reused
	lower   [32]byte            // scratch for the lower-cased command name
	lastKey string              // the last key seen, see key

	tx txState
}

// errReply is an error reply, starting with its code ("ERR ...").
type errReply string

func (e errReply) Error() string { return string(e) }

const (
	errSyntax     errReply = "ERR syntax error"
	errNotInteger errReply = "ERR value is not an integer or out of range"
	errCrossSlot  errReply = "CROSSSLOT Keys in request don't hash to the same slot"
	errNoAuth     errReply = "NOAUTH Authentication required."
	errWrongPass  errReply = "WRONGPASS invalid username-password pair or user is disabled."
)

func errArity(name string) errReply {
	return errReply("ERR wrong number of arguments for '" + name + "' command")
}

func errExpire(name string) errReply {
	return errReply("ERR invalid expire time in '" + name + "' command")
}

// lookup finds the command named by args[0], case-insensitively.
func (c *conn) lookup(name []byte) *command {
	if len(name) == 3 && name[1]|0x20 == 'e' && name[2]|0x20 == 't' {
		switch name[0] | 0x20 { // GET and SET, the most common, skip the map
		case 'g':
			return c.s.get
		case 's':
			return c.s.set
		}
	}
	if len(name) > len(c.lower) {
		return nil
	}
	b := c.lower[:len(name)]
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
	}
	return c.s.cmds[string(b)]
}

// unknownCommand is Redis's reply to a command it does not know.
func unknownCommand(args [][]byte) errReply {
	var sb strings.Builder
	sb.WriteString("ERR unknown command '")
	sb.WriteString(trunc(string(args[0]), 128))
	sb.WriteString("', with args beginning with: ")
	for _, a := range args[1:] {
		if sb.Len() >= 128+60 {
			break
		}
		sb.WriteString("'" + trunc(string(a), 128) + "' ")
	}
	return errReply(sb.String())
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// dispatch runs one command and writes its reply.
func (c *conn) dispatch(ctx context.Context, args [][]byte) {
	cmd := c.lookup(args[0])
	if cmd == nil {
		if httpCommand(args[0]) {
			c.http = true // the caller closes the connection (refuseHTTP)
			return
		}
		c.queueError(unknownCommand(args))
		return
	}
	if !cmd.arityOK(len(args)) {
		c.refuse(cmd, errArity(cmd.name))
		return
	}
	if !c.authed && cmd.flags&flagNoAuth == 0 {
		c.refuse(cmd, errNoAuth)
		return
	}
	if c.tx.active && cmd.flags&flagTxControl == 0 {
		if c.onLoop && len(args) > maxLoopArgs {
			// Queueing hashes each key and copies each argument: as long
			// as running it, so it leaves the loop too.
			c.deferred = true
			return
		}
		c.enqueue(cmd, args)
		return
	}
	if cmd.first > 0 && !c.tx.active { // WATCH in MULTI: its own error
		if e := c.moved(cmd, args[cmd.first]); e != "" {
			c.w.Error(string(e))
			return
		}
	}
	c.run(ctx, cmd, args)
}

// refuse answers e for cmd, refused before it ran. A refused EXEC ends the
// transaction, if there is one, with Redis's wording for it.
func (c *conn) refuse(cmd *command, e errReply) {
	if cmd.name == "exec" {
		c.resetTx()
		c.w.Error("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(string(e), "ERR "))
		return
	}
	c.queueError(e)
}

// queueError replies with e; inside MULTI it also dooms the transaction.
func (c *conn) queueError(e errReply) {
	if c.tx.active {
		c.tx.dirty = true
	}
	c.w.Error(string(e))
}

// maxLoopArgs is the most arguments a command may have and still run on
// the event loop. A command naming more keys runs on a goroutine, as one
// that may wait does, so that the loop's other clients are not held up
// for it: at about half a microsecond a key, an EXISTS of a million keys
// took the loop for 0.8 s (docs/benchmarks.md, "Commands of many keys off
// the loop"). Handing a command over costs a few microseconds, a small
// part of what one of this size takes.
const maxLoopArgs = 1 + 2*chunkKeys

// run executes cmd outside a transaction. On the event loop, a command
// that may wait, or one of more than maxLoopArgs arguments, is not run: it
// sets c.deferred, having written nothing, and runs again from dispatch on
// a goroutine.
func (c *conn) run(ctx context.Context, cmd *command, args [][]byte) {
	// A command that changes what the loop reads of the connection (AUTH,
	// HELLO: the reader's limits; QUIT) runs there however long.
	long := len(args) > maxLoopArgs && cmd.flags&flagNoAuth == 0
	if c.onLoop && (cmd.flags&flagLoop == 0 && cmd.run != nil || long) {
		c.deferred = true
		return
	}
	if cmd.run != nil {
		cmd.run(ctx, c, args)
		return
	}
	if c.spread(cmd, args) {
		c.runSpread(ctx, cmd, args)
		return
	}
	c.reqs = c.reqs[:0]
	if err := cmd.build(c, args, false); err != nil {
		c.w.Error(err.Error())
		return
	}
	if c.onLoop && !c.local() {
		c.deferred = true
		return
	}
	c.runBuilt(ctx, cmd, args)
}

// runBuilt runs the requests cmd built in c.reqs and replies.
func (c *conn) runBuilt(ctx context.Context, cmd *command, args [][]byte) {
	resps := c.respsFor(len(c.reqs))
	if err := c.exec(ctx, cmd, resps); err != nil {
		c.w.Error(string(backendError(protocol.CodeOf(err), errMsg(err))))
		return
	}
	cmd.reply(c, args, c.reqs, resps)
	c.trim()
}

// Buffers a connection keeps between commands, beyond which they are
// dropped: one large GET or MGET must not pin memory for the connection's
// lifetime.
const (
	keepValue = 64 << 10
	keepReqs  = 256
)

// trim drops request and response buffers grown past what is worth
// keeping.
func (c *conn) trim() {
	if len(c.resps) > keepReqs || cap(c.reqs) > keepReqs {
		c.resps, c.reqs = nil, nil
		return
	}
	for i := range c.resps {
		if cap(c.resps[i].Value) > keepValue {
			c.resps[i].Value = nil
		}
	}
}

// respsFor returns n responses, keeping the value buffers of earlier ones.
func (c *conn) respsFor(n int) []protocol.Response {
	for len(c.resps) < n {
		c.resps = append(c.resps, protocol.Response{})
	}
	return c.resps[:n]
}

// exec runs c.reqs through the backend: one request directly; several
// atomically when the command asks for it and they share a partition, else
// as execAll runs them.
func (c *conn) exec(ctx context.Context, cmd *command, resps []protocol.Response) error {
	reqs := c.reqs
	if cmd.flags&flagAtomic != 0 && len(reqs) > 1 && samePartition(reqs, c.s.b.Partitions()) {
		return c.doAtomic(ctx, allRepeatable(cmd, reqs), reqs, resps)
	}
	rt := c.retrier()
	if len(reqs) == 1 {
		c.s.b.Do(ctx, &reqs[0], &resps[0])
		if changing(resps[0].Code) {
			c.doAgain(ctx, &rt, cmd, &reqs[0], &resps[0])
		}
		return nil
	}
	c.execAll(ctx, resps, cmd.flags&flagWrite != 0, c.local(), -1)
	c.redoFailed(ctx, &rt, cmd, resps)
	return nil
}

// pointers returns pointers to each of reqs and resps, as the backend's
// batch calls take them.
func pointers(reqs []protocol.Request, resps []protocol.Response) ([]*protocol.Request, []*protocol.Response) {
	rq := make([]*protocol.Request, len(reqs))
	rs := make([]*protocol.Response, len(reqs))
	for i := range reqs {
		rq[i], rs[i] = &reqs[i], &resps[i]
	}
	return rq, rs
}

// local reports whether the backend serves every request of c.reqs here
// without waiting.
func (c *conn) local() bool {
	for i := range c.reqs {
		if !c.s.b.Local(&c.reqs[i]) {
			return false
		}
	}
	return true
}

func samePartition(reqs []protocol.Request, n int) bool {
	p := -1
	for i := range reqs {
		q := ring.Partition(reqs[i].Key, n)
		if p >= 0 && q != p {
			return false
		}
		p = q
	}
	return true
}

// add appends a request for op on key and returns it; the pointer is valid
// until the next add.
func (c *conn) add(op protocol.Op, key []byte) *protocol.Request {
	c.reqs = append(c.reqs, protocol.Request{Op: op, Key: c.key(key)})
	return &c.reqs[len(c.reqs)-1]
}

// key returns b as a string, reusing the previous key's string when b is
// the same: session stores send several commands on one key in a row (GET
// then PEXPIRE, SET then PEXPIREAT), and every allocation saved is less
// garbage to collect.
func (c *conn) key(b []byte) string {
	if string(b) != c.lastKey {
		c.lastKey = string(b)
	}
	return c.lastKey
}

// backendError turns a failed response into a Redis error reply.
func backendError(code protocol.Code, msg string) errReply {
	if msg == "" {
		msg = code.Err().Error()
	}
	switch code {
	case protocol.CodeOutOfMemory:
		return "OOM command not allowed when used memory > 'maxmemory'."
	case protocol.CodeUnavailable, protocol.CodeNotOwner:
		return errReply("TRYAGAIN " + msg)
	}
	return errReply("ERR " + msg)
}

func errMsg(err error) string {
	if pe, ok := err.(*protocol.Error); ok {
		return pe.Msg
	}
	return err.Error()
}

// replyErr writes resp's error; it reports whether there was one.
func (c *conn) replyErr(resp *protocol.Response) bool {
	if resp.Code == protocol.CodeOK {
		return false
	}
	c.w.Error(string(backendError(resp.Code, resp.Msg)))
	return true
}
