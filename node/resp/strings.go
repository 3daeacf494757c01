package resp

import (
	"bytes"
	"math"
	"strings"

	"github.com/cloakroom/cloakroom/protocol"
)

// expiry is a parsed EX/PX/EXAT/PXAT option.
type expiry struct {
	kind string // "EX", "PX", "EXAT", "PXAT"; "" for none
	arg  []byte
}

// option takes the expiry option opt, whose time is args[i+1], as SET and
// GETEX parse it: the same option again replaces the time, and only the
// last is checked, as in Redis. It reports false, for a syntax error, if
// another kind was given before or the time is missing.
func (e *expiry) option(opt string, args [][]byte, i int) bool {
	if e.kind != "" && e.kind != opt || i+1 >= len(args) {
		return false
	}
	*e = expiry{opt, args[i+1]}
	return true
}

// millis converts e to a TTL in milliseconds from now. For EX and PX the
// TTL must be positive; an absolute time in the past gives a TTL <= 0.
// Errors use Redis's wording for command name, but for a TTL past
// protocol.MaxTTL (checkTTL).
func (c *conn) millis(e expiry, name string) (int64, error) {
	n, ok := parseInt(e.arg)
	if !ok {
		return 0, errNotInteger
	}
	if n <= 0 {
		return 0, errExpire(name)
	}
	seconds := e.kind == "EX" || e.kind == "EXAT"
	if seconds {
		if n > math.MaxInt64/1000 {
			return 0, errExpire(name)
		}
		n *= 1000
	}
	now := c.s.cfg.Now().UnixMilli()
	if e.kind == "EXAT" || e.kind == "PXAT" {
		n -= now
	} else if n > math.MaxInt64-now {
		return 0, errExpire(name)
	}
	return n, checkTTL(n)
}

// checkTTL refuses a TTL the backend would refuse (past protocol.MaxTTL,
// about 146 million years) as the command's own error, with the backend's
// wording: inside MULTI it then fails that command alone, not the whole
// transaction, and GETEX of a missing key still answers null.
func checkTTL(ttl int64) error {
	if err := protocol.CheckTTL(ttl); err != nil {
		return backendError(protocol.CodeOf(err), errMsg(err))
	}
	return nil
}

// upper returns b upper-cased, for option matching.
func upper(b []byte) string {
	if len(b) > 8 {
		return "" // no option is longer
	}
	return string(bytes.ToUpper(b))
}

func cmdName(args [][]byte) string { return strings.ToLower(string(args[0])) }

func buildGet(c *conn, args [][]byte, _ bool) error {
	c.add(protocol.OpGet, args[1])
	return nil
}

// buildSet parses SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL].
func buildSet(c *conn, args [][]byte, _ bool) error {
	var flags protocol.Flags
	var exp expiry
	keep := false
	for i := 3; i < len(args); i++ {
		switch opt := upper(args[i]); opt {
		case "NX", "XX":
			f := protocol.FlagIfAbsent
			if opt == "XX" {
				f = protocol.FlagIfPresent
			}
			if flags&(protocol.FlagIfAbsent|protocol.FlagIfPresent)&^f != 0 {
				return errSyntax
			}
			flags |= f
		case "GET":
			flags |= protocol.FlagReturnOld
		case "KEEPTTL":
			if exp.kind != "" {
				return errSyntax
			}
			keep = true
		case "EX", "PX", "EXAT", "PXAT":
			if keep || !exp.option(opt, args, i) {
				return errSyntax
			}
			i++
		default:
			return errSyntax
		}
	}
	var ttl int64
	switch {
	case keep:
		flags |= protocol.FlagKeepTTL
	case exp.kind == "":
		flags |= protocol.FlagNoTTL
	default:
		var err error
		if ttl, err = c.millis(exp, "set"); err != nil {
			return err
		}
	}
	if exp.kind != "" && ttl <= 0 {
		// An absolute time already past: Redis sets the key and expires it
		// at once, which comes down to one read or read-and-delete.
		op := protocol.OpGetAndDelete
		if flags&protocol.FlagIfAbsent != 0 {
			op = protocol.OpGet
		}
		if flags&protocol.FlagReturnOld == 0 {
			flags |= protocol.FlagNoValue // only whether the key was there
		}
		c.add(op, args[1]).Flags = flags &^ protocol.FlagNoTTL
		return nil
	}
	if flags&protocol.FlagIfAbsent != 0 && flags&protocol.FlagReturnOld != 0 {
		// NX GET on an existing key answers its value: read it in the
		// same atomic step.
		c.add(protocol.OpGet, args[1])
	}
	r := c.add(protocol.OpSet, args[1])
	r.Value, r.Flags, r.TTL = args[2], flags, ttl
	return nil
}

func replySet(c *conn, _ [][]byte, reqs []protocol.Request, resps []protocol.Response) {
	q, r := &reqs[len(reqs)-1], &resps[len(resps)-1]
	get := q.Flags&protocol.FlagReturnOld != 0
	found := r.Code == protocol.CodeOK
	if !found && r.Code != protocol.CodeNotFound && r.Code != protocol.CodeExists {
		c.replyErr(r)
		return
	}
	switch q.Op {
	case protocol.OpSet:
		switch {
		case len(reqs) == 2: // NX GET
			c.replyOptional(&resps[0])
		case !found:
			c.w.Null()
		case get && r.N == 1:
			c.w.Bulk(r.Value)
		case get:
			c.w.Null()
		default:
			c.w.OK()
		}
	case protocol.OpGet: // NX with a past time
		switch {
		case get && found:
			c.w.Bulk(r.Value)
		case get, found:
			c.w.Null()
		default:
			c.w.OK()
		}
	case protocol.OpGetAndDelete: // plain or XX with a past time
		switch {
		case get && found:
			c.w.Bulk(r.Value)
		case get, q.Flags&protocol.FlagIfPresent != 0 && !found:
			c.w.Null()
		default:
			c.w.OK()
		}
	}
}

// replyOptional writes r's value, or null when the key was not found.
func (c *conn) replyOptional(r *protocol.Response) {
	switch r.Code {
	case protocol.CodeOK:
		c.w.Bulk(r.Value)
	case protocol.CodeNotFound:
		c.w.Null()
	default:
		c.replyErr(r)
	}
}

func replyValue(c *conn, _ [][]byte, _ []protocol.Request, resps []protocol.Response) {
	c.replyOptional(&resps[0])
}

func replyOld(c *conn, _ [][]byte, _ []protocol.Request, resps []protocol.Response) {
	r := &resps[0]
	switch {
	case c.replyErr(r):
	case r.N == 1:
		c.w.Bulk(r.Value)
	default:
		c.w.Null()
	}
}

func replyOK(c *conn, _ [][]byte, _ []protocol.Request, resps []protocol.Response) {
	for i := range resps {
		if c.replyErr(&resps[i]) {
			return
		}
	}
	c.w.OK()
}

// buildSetEx parses SETEX key seconds value and PSETEX key ms value.
func buildSetEx(c *conn, args [][]byte, _ bool) error {
	name := cmdName(args)
	kind := "EX"
	if name == "psetex" {
		kind = "PX"
	}
	ttl, err := c.millis(expiry{kind, args[2]}, name)
	if err != nil {
		return err
	}
	r := c.add(protocol.OpSet, args[1])
	r.Value, r.TTL = args[3], ttl
	return nil
}

func buildSetNX(c *conn, args [][]byte, _ bool) error {
	r := c.add(protocol.OpSet, args[1])
	r.Value, r.Flags = args[2], protocol.FlagIfAbsent|protocol.FlagNoTTL
	return nil
}

func buildGetSet(c *conn, args [][]byte, _ bool) error {
	r := c.add(protocol.OpSet, args[1])
	r.Value, r.Flags = args[2], protocol.FlagReturnOld|protocol.FlagNoTTL
	return nil
}

func buildGetDel(c *conn, args [][]byte, _ bool) error {
	c.add(protocol.OpGetAndDelete, args[1])
	return nil
}

// getExOptions parses GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST].
// PERSIST may be repeated, as Redis accepts it.
func getExOptions(args [][]byte) (exp expiry, persist bool, err error) {
	for i := 2; i < len(args); i++ { // options repeat as SET's do
		switch opt := upper(args[i]); opt {
		case "PERSIST":
			if exp.kind != "" {
				return exp, false, errSyntax
			}
			persist = true
		case "EX", "PX", "EXAT", "PXAT":
			if persist || !exp.option(opt, args, i) {
				return exp, false, errSyntax
			}
			i++
		default:
			return exp, false, errSyntax
		}
	}
	return exp, persist, nil
}

func buildGetEx(c *conn, args [][]byte, _ bool) error {
	exp, persist, err := getExOptions(args)
	if err != nil {
		return err
	}
	switch {
	case persist:
		c.add(protocol.OpGetAndTouch, args[1]).Flags = protocol.FlagNoTTL
	case exp.kind != "":
		ttl, err := c.millis(exp, "getex")
		if err != nil {
			// Redis answers a missing key's null before it checks the
			// time: ask only whether the key exists (replyGetEx).
			c.add(protocol.OpTTL, args[1])
			return nil
		}
		r := c.add(protocol.OpGetAndTouch, args[1])
		r.TTL, r.Flags = max(ttl, 0), protocol.FlagAllowPast
	default:
		c.add(protocol.OpGet, args[1])
	}
	return nil
}

// replyGetEx answers GETEX. One whose time is invalid asked whether its
// key exists (buildGetEx): a missing key's answer is null, else the time's
// error.
func replyGetEx(c *conn, args [][]byte, reqs []protocol.Request, resps []protocol.Response) {
	if reqs[0].Op != protocol.OpTTL {
		c.replyOptional(&resps[0])
		return
	}
	r := &resps[0]
	switch {
	case r.Code == protocol.CodeNotFound:
		c.w.Null()
	case c.replyErr(r):
	default:
		exp, _, _ := getExOptions(args)
		_, err := c.millis(exp, "getex")
		if err == nil { // a PXAT just past MaxTTL that the clock has since brought within it
			err = errExpire("getex")
		}
		c.w.Error(err.Error())
	}
}

// replyChanged answers 1 or 0: a Set that happened, or a Touch that
// changed the TTL.
func replyChanged(c *conn, _ [][]byte, reqs []protocol.Request, resps []protocol.Response) {
	r := &resps[0]
	switch {
	case r.Code == protocol.CodeNotFound, r.Code == protocol.CodeExists:
		c.w.Int(0)
	case c.replyErr(r):
	case reqs[0].Op == protocol.OpSet:
		c.w.Int(1)
	default:
		c.w.Int(r.N)
	}
}
