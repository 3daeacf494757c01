package resp

import (
	"cmp"
	"context"
	"crypto/subtle"
	"slices"
	"strconv"
	"strings"
)

func cmdPing(_ context.Context, c *conn, args [][]byte) {
	switch len(args) {
	case 1:
		c.w.Simple("PONG")
	case 2:
		c.w.Bulk(args[1])
	default:
		c.w.Error(string(errArity("ping")))
	}
}

func cmdEcho(_ context.Context, c *conn, args [][]byte) { c.w.Bulk(args[1]) }

func cmdQuit(_ context.Context, c *conn, _ [][]byte) {
	c.w.OK()
	c.quit = true
}

func cmdSelect(_ context.Context, c *conn, args [][]byte) {
	n, ok := parseInt(args[1])
	switch {
	case !ok || n < math32Min || n > math32Max:
		c.w.Error(string(errNotInteger))
	case n != 0:
		c.w.Error("ERR DB index is out of range")
	default:
		c.w.OK()
	}
}

const (
	math32Min = -1 << 31
	math32Max = 1<<31 - 1
)

// checkPassword authenticates the connection when user and password match
// the configured password (user "default", as in Redis without ACLs).
func (c *conn) checkPassword(user, pass []byte) error {
	want := c.s.cfg.Password
	if want == "" {
		// As Redis: the default user takes any password; AUTH with only
		// a password is a configuration mistake worth saying so.
		switch {
		case user == nil:
			return errReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		case string(user) != "default":
			return errWrongPass
		}
		return nil
	}
	userOK := user == nil || string(user) == "default"
	if subtle.ConstantTimeCompare(pass, []byte(want)) != 1 || !userOK {
		return errWrongPass
	}
	if !c.authed {
		c.authed = true
		c.rd.SetLimits(c.s.cfg.Limits)
	}
	return nil
}

// cmdAuth answers AUTH password and AUTH username password.
func cmdAuth(_ context.Context, c *conn, args [][]byte) {
	var err error
	switch len(args) {
	case 2:
		err = c.checkPassword(nil, args[1])
	case 3:
		err = c.checkPassword(args[1], args[2])
	default:
		err = errSyntax
	}
	if err != nil {
		c.w.Error(err.Error())
		return
	}
	c.w.OK()
}

// cmdHello answers HELLO [protover [AUTH username password] [SETNAME name]].
func cmdHello(_ context.Context, c *conn, args [][]byte) {
	proto := c.w.Proto()
	if len(args) > 1 {
		n, ok := parseInt(args[1])
		if !ok {
			c.w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if n != 2 && n != 3 {
			c.w.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(n)
	}
	var name []byte
	setName := false
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch opt := upper(args[i]); {
		case opt == "AUTH" && more >= 2:
			if err := c.checkPassword(args[i+1], args[i+2]); err != nil {
				c.w.Error(err.Error())
				return
			}
			i += 2
		case opt == "SETNAME" && more >= 1:
			name, setName = args[i+1], true
			i++
		default:
			c.w.Error("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if !c.authed {
		c.w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if err := validName(name); err != nil {
			c.w.Error(err.Error())
			return
		}
		c.name = string(name)
	}
	c.w.SetProto(proto)
	mode := "standalone"
	if c.s.cfg.ClusterMode {
		mode = "cluster"
	}
	c.w.Map(7)
	c.w.BulkString("server")
	c.w.BulkString("redis")
	c.w.BulkString("version")
	c.w.BulkString(c.s.cfg.Version)
	c.w.BulkString("proto")
	c.w.Int(int64(proto))
	c.w.BulkString("id")
	c.w.Int(c.id)
	c.w.BulkString("mode")
	c.w.BulkString(mode)
	c.w.BulkString("role")
	c.w.BulkString("master")
	c.w.BulkString("modules")
	c.w.Array(0)
}

// maxClientName bounds a client's name, library name and library version.
// Redis has no bound; a connection keeps them for its life, so without
// one 10,000 connections could hold 30 GB of them (each may be as long as
// a command, 1 MiB). Libraries send names of a few dozen bytes.
const maxClientName = 1024

var errNameTooLong = errReply("ERR Client names are limited to " + strconv.Itoa(maxClientName) + " bytes")

// validName accepts client names as Redis does, printable and without
// spaces, up to maxClientName bytes.
func validName(b []byte) error {
	if len(b) > maxClientName {
		return errNameTooLong
	}
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return errReply("ERR Client names cannot contain spaces, newlines or special characters.")
		}
	}
	return nil
}

// cmdClient answers CLIENT ID, SETNAME, GETNAME, SETINFO, INFO, LIST and
// a few no-ops; anything else is an error, never a hang.
func cmdClient(_ context.Context, c *conn, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"id": 2, "setname": 3, "getname": 2, "setinfo": 4, "info": 2, "list": -2,
		"no-evict": 3, "no-touch": 3, "reply": 3, "help": 2}
	want, known := arity[sub]
	if !known {
		c.w.Error("ERR unknown subcommand '" + trunc(string(args[1]), 128) + "'. Try CLIENT HELP.")
		return
	}
	if (want > 0 && len(args) != want) || (want < 0 && len(args) < -want) {
		c.w.Error(string(errArity("client|" + sub)))
		return
	}
	switch sub {
	case "id":
		c.w.Int(c.id)
	case "setname":
		if err := validName(args[2]); err != nil {
			c.w.Error(err.Error())
			return
		}
		c.name = string(args[2])
		c.w.OK()
	case "getname":
		if c.name == "" {
			c.w.Null()
			return
		}
		c.w.BulkString(c.name)
	case "setinfo":
		switch attr := strings.ToLower(string(args[2])); attr {
		case "lib-name", "lib-ver":
			switch err := validName(args[3]); {
			case err == errNameTooLong:
				c.w.Error("ERR " + attr + " is limited to " + strconv.Itoa(maxClientName) + " bytes")
				return
			case err != nil:
				c.w.Error("ERR " + attr + " cannot contain spaces, newlines or special characters.")
				return
			}
			if attr == "lib-name" {
				c.libName = string(args[3])
			} else {
				c.libVer = string(args[3])
			}
			c.w.OK()
		default:
			c.w.Error("ERR Unrecognized option '" + string(args[2]) + "'")
		}
	case "info":
		c.w.Text(c.describe())
	case "list":
		only, err := listFilter(args[2:])
		if err != "" {
			c.w.Error(err)
			return
		}
		var sb strings.Builder
		for _, o := range c.s.snapshotConns(only) {
			sb.WriteString(o)
		}
		c.w.Text(sb.String())
	case "no-evict", "no-touch":
		if v := strings.ToLower(string(args[2])); v != "on" && v != "off" {
			c.w.Error(string(errSyntax))
			return
		}
		c.w.OK()
	case "reply":
		// Answering OK and replying on would leave a client that counts on
		// OFF or SKIP a reply out of step.
		c.w.Error("ERR CLIENT REPLY is not supported: every command is answered")
	case "help":
		c.writeHelp("CLIENT", clientHelp)
	}
}

// describe is the connection's CLIENT INFO line: every field of Redis
// 7.2's, in its order, since clients parse them all (redis-py 4 and 5's
// client_info() converts id, age, idle, db, sub, psub, multi, qbuf,
// qbuf-free, obl, argv-mem, oll, omem and tot-mem to integers and fails
// on a missing one). What the node does not keep per connection (its
// buffers and their memory) reads 0; idle is 0 and cmd client|info, as in
// Redis, since this is the command running.
func (c *conn) describe() string {
	age := int64(c.s.cfg.Now().Sub(c.created).Seconds())
	fd, flags, multi := -1, "", -1
	if c.gc != nil {
		fd = c.gc.Fd()
	}
	if c.tx.active {
		flags, multi = "x", len(c.tx.queue)
	}
	if c.readonly {
		flags += "r"
	}
	if flags == "" {
		flags = "N"
	}
	return "id=" + strconv.FormatInt(c.id, 10) + " addr=" + c.addr + " laddr=" + c.laddr +
		" fd=" + strconv.Itoa(fd) + " name=" + c.name + " age=" + strconv.FormatInt(age, 10) +
		" idle=0 flags=" + flags + " db=0 sub=0 psub=0 ssub=0 multi=" + strconv.Itoa(multi) +
		" qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=" + strconv.Itoa(c.tx.bytes) +
		" rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=default redir=-1" +
		" resp=" + strconv.Itoa(c.w.Proto()) + " lib-name=" + c.libName + " lib-ver=" + c.libVer + "\n"
}

// listFilter parses CLIENT LIST's options as Redis 7.0 does: TYPE t alone,
// or ID followed by one or more IDs. It returns the IDs to list, in order
// and repeats included (nil: all; empty: none), or the error to answer.
func listFilter(args [][]byte) (only []int64, err string) {
	switch {
	case len(args) == 0:
		return nil, ""
	case len(args) == 2 && strings.EqualFold(string(args[0]), "type"):
		switch t := strings.ToLower(string(args[1])); t {
		case "normal":
			return nil, ""
		case "master", "replica", "slave", "pubsub":
			return []int64{}, "" // no such clients here
		default:
			return nil, "ERR Unknown client type '" + trunc(string(args[1]), 128) + "'"
		}
	case len(args) >= 2 && strings.EqualFold(string(args[0]), "id"):
		only = make([]int64, 0, len(args)-1)
		for _, a := range args[1:] {
			id, ok := parseInt(a)
			if !ok {
				return nil, "ERR Invalid client ID"
			}
			only = append(only, id)
		}
		return only, ""
	}
	return nil, string(errSyntax)
}

// snapshotConns returns a CLIENT LIST line per connection: every one in
// the order they connected if only is nil, else one for each ID of only
// that is connected, in only's order, as Redis lists them.
func (s *Server) snapshotConns(only []int64) []string {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock() // a connection's id and addr never change
	if only == nil {
		slices.SortFunc(conns, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	} else {
		byID := make(map[int64]*conn, len(conns))
		for _, c := range conns {
			byID[c.id] = c
		}
		conns = conns[:0]
		for _, id := range only {
			if c := byID[id]; c != nil {
				conns = append(conns, c)
			}
		}
	}
	out := make([]string, len(conns))
	for i, c := range conns {
		out[i] = "id=" + strconv.FormatInt(c.id, 10) + " addr=" + c.addr + " db=0\n"
	}
	return out
}
