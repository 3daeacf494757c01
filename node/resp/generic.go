package resp

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strconv"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

func buildMGet(c *conn, args [][]byte, _ bool) error {
	for _, k := range args[1:] {
		c.add(protocol.OpGet, k)
	}
	return nil
}

func replyMGet(c *conn, _ [][]byte, _ []protocol.Request, resps []protocol.Response) {
	size := 0
	for i := range resps {
		if r := &resps[i]; r.Code != protocol.CodeOK && r.Code != protocol.CodeNotFound {
			c.replyErr(r)
			return
		}
		size += len(resps[i].Value)
	}
	if size > maxReply { // in a transaction; runSpread checks it as it goes
		c.w.Error(string(errReplyTooLarge))
		return
	}
	c.w.Array(len(resps))
	for i := range resps {
		c.replyOptional(&resps[i])
	}
}

func buildMSet(c *conn, args [][]byte, _ bool) error {
	if len(args)%2 == 0 {
		return errArity("mset")
	}
	for i := 1; i < len(args); i += 2 {
		r := c.add(protocol.OpSet, args[i])
		r.Value, r.Flags = args[i+1], protocol.FlagNoTTL
	}
	return nil
}

// buildDel deletes every key in one request, which the node splits across
// owners; inside a transaction each key is its own single-key step, which
// reports whether the key was there but not its value.
func buildDel(c *conn, args [][]byte, atomic bool) error {
	return c.multiKey(args, atomic, protocol.OpDelete, protocol.OpGetAndDelete, protocol.FlagNoValue)
}

func buildExists(c *conn, args [][]byte, atomic bool) error {
	return c.multiKey(args, atomic, protocol.OpExists, protocol.OpTTL, 0)
}

// multiKey builds one request of op many for every key, or in a
// transaction one of op single (with flags) for each. A DEL's key named
// again gets no second request there: it would find the DEL's own
// tombstone and count twice (the store skips it in one request).
func (c *conn) multiKey(args [][]byte, atomic bool, many, single protocol.Op, flags protocol.Flags) error {
	var token []byte // a DEL's, for its attempts (doAgain, redo, runGroup)
	if many == protocol.OpDelete {
		if token = c.delToken; token == nil {
			token = protocol.NewDeleteToken()
		}
	}
	if atomic {
		var seen map[string]bool // a long DEL's keys; a short one's are searched
		if token != nil && len(args) > 9 {
			seen = make(map[string]bool, len(args)-1)
		}
		for i, k := range args[1:] {
			if token != nil && named(args[1:1+i], k, seen) {
				continue
			}
			r := c.add(single, k)
			r.Flags, r.Value = flags, token
		}
		return nil
	}
	keys := make([]string, len(args)-1)
	for i, k := range args[1:] {
		keys[i] = string(k)
	}
	c.reqs = append(c.reqs, protocol.Request{Op: many, Keys: keys, Value: token})
	return nil
}

// named reports whether key is among earlier, or, if seen is not nil, in
// seen, which it then adds key to.
func named(earlier [][]byte, key []byte, seen map[string]bool) bool {
	if seen == nil {
		return slices.ContainsFunc(earlier, func(e []byte) bool { return bytes.Equal(e, key) })
	}
	if seen[string(key)] {
		return true
	}
	seen[string(key)] = true
	return false
}

// replyCount answers how many keys the requests found.
func replyCount(c *conn, _ [][]byte, reqs []protocol.Request, resps []protocol.Response) {
	if op := reqs[0].Op; op == protocol.OpDelete || op == protocol.OpExists {
		if !c.replyErr(&resps[0]) {
			c.w.Int(resps[0].N)
		}
		return
	}
	var n int64
	for i := range resps {
		switch resps[i].Code {
		case protocol.CodeOK:
			n++
		case protocol.CodeNotFound:
		default:
			c.replyErr(&resps[i])
			return
		}
	}
	c.w.Int(n)
}

// buildExpire parses EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key time
// [NX|XX|GT|LT]. As Redis, it checks the options before the time.
func buildExpire(c *conn, args [][]byte, _ bool) error {
	name := cmdName(args)
	var flags protocol.Flags
	for _, a := range args[3:] {
		switch upper(a) {
		case "NX":
			flags |= protocol.FlagTTLIfNone
		case "XX":
			flags |= protocol.FlagTTLIfSet
		case "GT":
			flags |= protocol.FlagTTLIfGreater
		case "LT":
			flags |= protocol.FlagTTLIfLess
		default:
			return errReply("ERR Unsupported option " + string(a))
		}
	}
	if flags&protocol.FlagTTLIfNone != 0 && flags != protocol.FlagTTLIfNone {
		return errReply("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if flags&protocol.FlagTTLIfGreater != 0 && flags&protocol.FlagTTLIfLess != 0 {
		return errReply("ERR GT and LT options at the same time are not compatible")
	}
	n, ok := parseInt(args[2])
	if !ok {
		return errNotInteger
	}
	if name == "expire" || name == "expireat" {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			return errExpire(name)
		}
		n *= 1000
	}
	now := c.s.cfg.Now().UnixMilli()
	if name == "expireat" || name == "pexpireat" {
		// Any time before the epoch is past; clamping it keeps n - now from
		// wrapping around to a TTL of centuries.
		n = max(n, 0) - now
	} else if n > math.MaxInt64-now {
		return errExpire(name)
	}
	if err := checkTTL(n); err != nil {
		return err
	}
	r := c.add(protocol.OpTouch, args[1])
	r.TTL, r.Flags = n, flags|protocol.FlagAllowPast
	return nil
}

func buildPersist(c *conn, args [][]byte, _ bool) error {
	c.add(protocol.OpTouch, args[1]).Flags = protocol.FlagNoTTL
	return nil
}

func buildTTL(c *conn, args [][]byte, _ bool) error {
	c.add(protocol.OpTTL, args[1])
	return nil
}

func replyTTL(c *conn, args [][]byte, _ []protocol.Request, resps []protocol.Response) {
	r := &resps[0]
	switch {
	case r.Code == protocol.CodeNotFound:
		c.w.Int(-2)
	case c.replyErr(r):
	case r.TTL < 0:
		c.w.Int(-1)
	case len(args[0]) == 4: // PTTL
		c.w.Int(r.TTL)
	default:
		c.w.Int((r.TTL + 500) / 1000)
	}
}

func replyType(c *conn, _ [][]byte, _ []protocol.Request, resps []protocol.Response) {
	r := &resps[0]
	switch {
	case r.Code == protocol.CodeNotFound:
		c.w.Simple("none")
	case c.replyErr(r):
	default:
		c.w.Simple("string")
	}
}

// A scan cursor names a partition and a position within it, so it stays
// valid while partitions move between nodes. It must fit in 53 bits, because
// some clients (node-redis 4) parse cursors as JavaScript numbers: the
// partition takes the 14 bits above cursorPosBits, and the position is kept
// to a multiple of 1<<posShift (a page ends on such a boundary; see scan).
const (
	cursorPosBits = 53 - 14
	posShift      = store.ScanPosBits - cursorPosBits
	cursorPosMask = 1<<cursorPosBits - 1
	posWindow     = 1<<posShift - 1
)

// The partition must fit in the 14 bits above the position.
var _ [1<<14 - ring.MaxPartitions]struct{}

func encodeCursor(partition, pos uint64) uint64 { return partition<<cursorPosBits | pos>>posShift }

func decodeCursor(c uint64) (partition, pos uint64) {
	return c >> cursorPosBits, (c & cursorPosMask) << posShift
}

// scan collects up to count keys matching pattern from the global cursor
// on, and returns the next cursor (0 once the keyspace ends). Every key
// present throughout the iteration is returned exactly once.
//
// Its work is bounded as Redis bounds a SCAN's: once its pages have
// examined ten times count keys (OpScan's reply N), it returns what it
// has, few keys or none, with a cursor. A SCAN whose pattern matched
// nothing used to walk the whole keyspace in one call (300,000 keys, 10 s
// with a costly pattern).
func (c *conn) scan(ctx context.Context, cursor uint64, pattern string, count int) ([]string, uint64, error) {
	parts := uint64(c.s.b.Partitions())
	var keys []string
	p, pos := decodeCursor(cursor)
	var resp protocol.Response
	rt := c.retrier() // one window for the whole call, as for a pipeline
	next := func(n int) error {
		req := protocol.Request{Op: protocol.OpScan, Partition: int32(p), Cursor: pos, Count: int32(n), Pattern: pattern}
		c.s.b.Do(ctx, &req, &resp)
		// A partition still arriving, or a table changing, is refused
		// Unavailable or NotOwner: try again, as any read.
		for c.again(ctx, &rt, req.Repeatable(), nil, resp.Code) {
			c.s.b.Do(ctx, &req, &resp)
		}
		return resp.Err()
	}
	budget := int64(store.ScanExamine(count)) // for the whole call, as for one page
	for p < parts && len(keys) < count && budget > 0 {
		if err := next(count - len(keys)); err != nil {
			return nil, 0, err
		}
		keys = append(keys, resp.Keys...)
		budget -= resp.N
		if resp.Cursor == 0 {
			p, pos = p+1, 0
		} else {
			pos = resp.Cursor
		}
	}
	// A page that ends inside a position window goes on, key by key, to the
	// window's end, which the cursor can name exactly: rounding the position
	// down would return keys twice, rounding it up would skip them.
	if p < parts && pos&posWindow != 0 {
		end := (pos>>posShift + 1) << posShift
		for {
			if err := next(1); err != nil {
				return nil, 0, err
			}
			if resp.Cursor == 0 { // the partition's last keys
				keys = append(keys, resp.Keys...)
				p, pos = p+1, 0
				break
			}
			if resp.Cursor > end {
				pos = end // those keys come with the next call
				break
			}
			keys = append(keys, resp.Keys...)
			if pos = resp.Cursor; pos == end {
				break
			}
		}
	}
	if p >= parts {
		return keys, 0, nil
	}
	return keys, encodeCursor(p, pos), nil
}

func cmdKeys(ctx context.Context, c *conn, args [][]byte) {
	pattern := string(args[1])
	switch pattern {
	case "": // only the empty key, which no node stores
		c.w.Strings(nil)
		return
	case "*":
		pattern = "" // to the store: every key
	}
	var all []string
	for cursor := uint64(0); ; {
		keys, next, err := c.scan(ctx, cursor, pattern, 1000)
		if err != nil {
			c.w.Error(string(backendError(protocol.CodeOf(err), errMsg(err))))
			return
		}
		all = append(all, keys...)
		if next == 0 {
			break
		}
		cursor = next
	}
	c.w.Strings(all)
}

// parseCursor reads a SCAN cursor as Redis does, with C's strtoul: decimal
// digits after an optional sign, a negative cursor wrapping around (-1 is
// 2^64-1, past every key); nothing at all reads as 0.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	digits, neg := b, false
	if b[0] == '+' || b[0] == '-' {
		digits, neg = b[1:], b[0] == '-'
	}
	v, err := strconv.ParseUint(string(digits), 10, 64) // no second sign, nor none at all
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// cmdScan answers SCAN cursor [MATCH pattern] [COUNT n] [TYPE type].
func cmdScan(ctx context.Context, c *conn, args [][]byte) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		c.w.Error("ERR invalid cursor")
		return
	}
	pattern, count, typ := "*", store.DefaultScanCount, ""
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.w.Error(string(errSyntax))
			return
		}
		switch upper(args[i]) {
		case "MATCH":
			pattern = string(args[i+1])
		case "COUNT":
			n, ok := parseInt(args[i+1])
			if !ok {
				c.w.Error(string(errNotInteger))
				return
			}
			if n < 1 {
				c.w.Error(string(errSyntax))
				return
			}
			count = int(min(n, 1<<20))
		case "TYPE":
			typ = string(args[i+1])
		default:
			c.w.Error(string(errSyntax))
			return
		}
	}
	var keys []string
	var err error
	next := uint64(0)
	// MATCH "" matches only the empty key, which no node stores (to the
	// store an empty pattern means every key).
	if (typ == "" || typ == "string") && pattern != "" {
		if pattern == "*" {
			pattern = ""
		}
		if keys, next, err = c.scan(ctx, cursor, pattern, count); err != nil {
			c.w.Error(string(backendError(protocol.CodeOf(err), errMsg(err))))
			return
		}
	}
	c.w.Array(2)
	c.w.BulkString(strconv.FormatUint(next, 10))
	c.w.Strings(keys)
}

func cmdDBSize(ctx context.Context, c *conn, _ [][]byte) {
	req := protocol.Request{Op: protocol.OpCount}
	var resp protocol.Response
	c.s.b.Do(ctx, &req, &resp)
	if !c.replyErr(&resp) {
		c.w.Int(resp.N)
	}
}

// cmdFlushAll answers FLUSHALL/FLUSHDB [ASYNC|SYNC]; the node refuses
// unless started with --allow-flush.
func cmdFlushAll(ctx context.Context, c *conn, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && upper(args[1]) != "ASYNC" && upper(args[1]) != "SYNC") {
		c.w.Error(string(errSyntax))
		return
	}
	req := protocol.Request{Op: protocol.OpFlush}
	var resp protocol.Response
	c.s.b.Do(ctx, &req, &resp)
	if resp.Code == protocol.CodeDisabled {
		c.w.Error("ERR " + cmdName(args) + " is disabled on this node; start it with --allow-flush")
		return
	}
	if !c.replyErr(&resp) {
		c.w.OK()
	}
}
