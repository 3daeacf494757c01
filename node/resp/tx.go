package resp

import (
	"context"
	"errors"
	"strconv"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// txState is a connection's MULTI queue and WATCHed keys.
type txState struct {
	active    bool
	dirty     bool // a queued command was refused: EXEC aborts
	queue     []queued
	bytes     int               // the queue's size, as txBytes counts it
	partition int               // of the queued keys; -1 while none
	watched   map[string]uint64 // WATCHed key -> the version it had (0: absent)
	wbytes    int               // the watched keys' bytes
}

// maxWatched and maxWatchedBytes bound the distinct keys one connection
// may WATCH, in number and in bytes. EXEC needs them in one partition with
// its commands' keys, so a session store watches a handful; Redis has no
// bound, but there a client that watches key after key without EXEC grows
// the server without end. (By number alone, 65,536 keys of 1 KiB held
// about 100 MB a connection.)
const (
	maxWatched      = 1 << 16
	maxWatchedBytes = 1 << 20
)

// errTooManyWatched is WATCH's answer past maxWatched or maxWatchedBytes.
var errTooManyWatched = "ERR too many watched keys (the limit is " + strconv.Itoa(maxWatched) +
	" keys and " + strconv.Itoa(maxWatchedBytes) + " bytes of keys); UNWATCH first"

type queued struct {
	cmd  *command
	args [][]byte // copies; the reader reuses its buffer
}

func cmdMulti(_ context.Context, c *conn, _ [][]byte) {
	if c.tx.active {
		c.w.Error("ERR MULTI calls can not be nested")
		return
	}
	c.tx.active, c.tx.dirty, c.tx.queue, c.tx.bytes, c.tx.partition = true, false, nil, 0, -1
	c.w.OK()
}

func cmdDiscard(_ context.Context, c *conn, _ [][]byte) {
	if !c.tx.active {
		c.w.Error("ERR DISCARD without MULTI")
		return
	}
	c.resetTx()
	c.w.OK()
}

func (c *conn) resetTx() {
	c.tx = txState{partition: -1}
}

// enqueue queues a command inside MULTI. Every key of the transaction must
// lie in one partition, so that EXEC can run it atomically.
func (c *conn) enqueue(cmd *command, args [][]byte) {
	if cmd.flags&flagNoMulti != 0 {
		c.queueError(errReply("ERR Command not allowed inside a transaction"))
		return
	}
	n := c.s.b.Partitions()
	for _, k := range cmd.keys(args) {
		p := ring.Partition(string(k), n)
		if c.tx.partition >= 0 && p != c.tx.partition {
			c.queueError(errCrossSlot)
			return
		}
		c.tx.partition = p
	}
	size := txBytes(args)
	if limit := c.s.cfg.Limits.MaxBulk + txRoom; c.tx.bytes+size > limit {
		c.queueError(errReply("ERR transaction too large: its commands would take more than " + strconv.Itoa(limit) +
			" bytes, one value's limit and 32 KiB (EXEC sends them as one message); the transaction is discarded"))
		return
	}
	c.tx.bytes += size
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = append([]byte(nil), a...)
	}
	c.tx.queue = append(c.tx.queue, queued{cmd, cp})
	c.w.Simple("QUEUED")
}

// txRoom is what a transaction may take beyond one value's limit: room
// for its keys and other arguments, so that a session store's save (a SET
// of a value up to the limit, and PEXPIREAT) goes through.
const txRoom = 32 << 10

// txBytes is what a queued command counts against a transaction's size:
// its arguments, each with room for the fields that carry it. EXEC sends a
// transaction's keyed commands as one message, to their primary and from
// there to its backups, so its size is bounded by what a message may
// carry: one value's limit (Limits.MaxBulk, --max-value) and txRoom, under
// the frame's 64 KiB beyond a value (protocol.Limits.MaxFrame). Without a
// bound one client could also queue without end.
func txBytes(args [][]byte) int {
	n := 0
	for _, a := range args {
		n += len(a) + 16
	}
	return n
}

// cmdExec runs the queued commands. Keyed commands run as one atomic step
// together with guards for the WATCHed keys; a changed watched key makes
// EXEC answer null and run nothing. Keyless commands (PING, TIME, ...) run
// in order around it.
func cmdExec(ctx context.Context, c *conn, _ [][]byte) {
	if !c.tx.active {
		c.w.Error("ERR EXEC without MULTI")
		return
	}
	tx := c.tx
	c.resetTx()
	if tx.dirty {
		c.w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	// Guards first, then each keyed command's requests.
	c.reqs = c.reqs[:0]
	n, part := c.s.b.Partitions(), tx.partition
	for key, version := range tx.watched {
		if p := ring.Partition(key, n); part < 0 {
			part = p
		} else if p != part {
			c.w.Error(string(errCrossSlot))
			return
		}
		c.reqs = append(c.reqs, protocol.Request{Op: protocol.OpGet, Key: key, Flags: protocol.FlagIfVersion, Version: version})
	}
	type span struct {
		from, to int
		err      error
	}
	spans := make([]span, len(tx.queue))
	again := len(tx.watched) == 0 // a guard's second attempt would fail on its first
	for i, q := range tx.queue {
		if q.cmd.build == nil {
			continue
		}
		from := len(c.reqs)
		err := q.cmd.build(c, q.args, true)
		if err != nil {
			c.reqs = c.reqs[:from]
		}
		spans[i] = span{from, len(c.reqs), err}
		again = again && allRepeatable(q.cmd, c.reqs[from:])
	}
	resps := c.respsFor(len(c.reqs))
	if len(c.reqs) > 0 {
		if err := c.doAtomic(ctx, again, c.reqs, resps); err != nil {
			if errors.Is(err, protocol.ErrConflict) {
				c.w.NullArray()
				return
			}
			c.w.Error(string(backendError(protocol.CodeOf(err), errMsg(err))))
			return
		}
	}
	c.w.Array(len(tx.queue))
	for i, q := range tx.queue {
		sp := spans[i]
		switch {
		case q.cmd.build == nil:
			q.cmd.run(ctx, c, q.args)
		case sp.err != nil:
			c.w.Error(sp.err.Error())
		default:
			q.cmd.reply(c, q.args, c.reqs[sp.from:sp.to], resps[sp.from:sp.to])
		}
	}
	c.trim()
}

// cmdWatch records the current version of each key; EXEC checks them.
func cmdWatch(ctx context.Context, c *conn, args [][]byte) {
	if c.tx.active {
		c.w.Error("ERR WATCH inside MULTI is not allowed")
		return
	}
	if c.watchOverflows(args[1:]) {
		c.w.Error(errTooManyWatched)
		return
	}
	var resp protocol.Response
	for _, k := range args[1:] {
		if _, ok := c.tx.watched[string(k)]; ok {
			continue // as Redis: the version of the first WATCH stands
		}
		// Only the version: a session of 1 MiB need not be copied for it.
		req := protocol.Request{Op: protocol.OpGet, Key: string(k), Flags: protocol.FlagNoValue}
		c.s.b.Do(ctx, &req, &resp)
		var version uint64 // 0: absent
		switch resp.Code {
		case protocol.CodeOK:
			version = resp.Version
		case protocol.CodeNotFound:
		default:
			c.replyErr(&resp)
			return
		}
		if c.tx.watched == nil {
			c.tx.watched = make(map[string]uint64)
		}
		c.tx.watched[req.Key] = version
		c.tx.wbytes += len(req.Key)
	}
	c.w.OK()
}

// watchOverflows reports whether watching keys would take the connection
// past maxWatched distinct keys or maxWatchedBytes of them; then WATCH
// watches none of them.
func (c *conn) watchOverflows(keys [][]byte) bool {
	size := 0
	for _, k := range keys {
		size += len(k)
	}
	if len(c.tx.watched)+len(keys) <= maxWatched && c.tx.wbytes+size <= maxWatchedBytes {
		return false
	}
	fresh := make(map[string]bool)
	size = 0
	for _, k := range keys {
		if _, ok := c.tx.watched[string(k)]; !ok && !fresh[string(k)] {
			fresh[string(k)] = true
			size += len(k)
		}
	}
	return len(c.tx.watched)+len(fresh) > maxWatched || c.tx.wbytes+size > maxWatchedBytes
}

func cmdUnwatch(_ context.Context, c *conn, _ [][]byte) {
	c.tx.watched, c.tx.wbytes = nil, 0
	c.w.OK()
}
