package resp

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// cmdInfo answers INFO [section ...] with the sections clients look at.
func cmdInfo(ctx context.Context, c *conn, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["default"] || want["everything"]
	var sb strings.Builder
	section := func(name string, lines ...string) {
		if !all && !want[strings.ToLower(name)] {
			return
		}
		if sb.Len() > 0 {
			sb.WriteString("\r\n")
		}
		sb.WriteString("# " + name + "\r\n")
		for _, l := range lines {
			sb.WriteString(l + "\r\n")
		}
	}
	s := c.s
	uptime := int64(s.cfg.Now().Sub(s.start).Seconds())
	mode := "standalone"
	clusterEnabled := "0"
	if s.cfg.ClusterMode {
		mode, clusterEnabled = "cluster", "1"
	}
	port := ""
	if _, p, ok := strings.Cut(c.laddr, "]:"); ok {
		port = p
	} else if i := strings.LastIndexByte(c.laddr, ':'); i >= 0 {
		port = c.laddr[i+1:]
	}
	section("Server",
		"redis_version:"+s.cfg.Version,
		"redis_mode:"+mode,
		"server_name:cloakroom",
		"cloakroom_node:"+s.b.Name(),
		"os:"+runtime.GOOS+" "+runtime.GOARCH,
		"arch_bits:64",
		"process_id:"+strconv.Itoa(os.Getpid()),
		"tcp_port:"+port,
		"uptime_in_seconds:"+strconv.FormatInt(uptime, 10),
		"uptime_in_days:"+strconv.FormatInt(uptime/86400, 10))
	section("Clients",
		"connected_clients:"+strconv.Itoa(s.Clients()),
		"blocked_clients:0",
		"maxclients:"+strconv.Itoa(s.maxClients()))
	if all || want["memory"] {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		section("Memory",
			"used_memory:"+strconv.FormatUint(ms.HeapInuse, 10),
			"used_memory_human:"+human(ms.HeapInuse),
			"used_memory_rss:"+strconv.FormatUint(ms.Sys, 10),
			"maxmemory:0",
			"maxmemory_policy:volatile-ttl")
	}
	section("Persistence", "loading:0", "rdb_changes_since_last_save:0", "aof_enabled:0")
	section("Stats",
		"total_connections_received:"+strconv.FormatInt(s.totalConn.Load(), 10),
		"total_commands_processed:"+strconv.FormatInt(s.commandsProcessed(), 10),
		"rejected_connections:"+strconv.FormatInt(s.refused.Load(), 10))
	section("Replication", "role:master", "connected_slaves:0")
	section("Cluster", "cluster_enabled:"+clusterEnabled)
	if all || want["keyspace"] {
		req := protocol.Request{Op: protocol.OpCount}
		var resp protocol.Response
		s.b.Do(ctx, &req, &resp)
		var lines []string
		if resp.N > 0 {
			// avg_ttl stays 0, as Redis's until its expiry cycle has sampled.
			lines = append(lines, "db0:keys="+strconv.FormatInt(resp.N, 10)+",expires="+strconv.FormatInt(resp.TTLKeys, 10)+",avg_ttl=0")
		}
		section("Keyspace", lines...)
	}
	c.w.Text(sb.String())
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
}

// configValues are the parameters CONFIG GET answers.
func (s *Server) configValues() [][2]string {
	return [][2]string{
		{"save", ""},
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxmemory-policy", "volatile-ttl"},
		{"maxclients", strconv.Itoa(s.maxClients())},
		{"timeout", strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10)},
	}
}

// configSet checks CONFIG SET's parameter-value pairs. Nothing can be
// changed at run time (flags set it all), so a pair that keeps a
// parameter's value is accepted and does nothing: a deploy script that
// turns persistence off with CONFIG SET save "" succeeds, as against Redis.
// Any other value, an unknown parameter or one named twice is refused with
// Redis's wording, and then no pair is taken; so is databases, which Redis
// cannot change at run time either. As Redis, it looks at every name
// before any value: the first unknown, immutable or repeated name (as the
// client spelled it) is the answer, else the first value refused.
func (s *Server) configSet(pairs [][]byte) string {
	if len(pairs)%2 != 0 {
		return string(errSyntax)
	}
	current := make(map[string]string)
	for _, kv := range s.configValues() {
		current[kv[0]] = kv[1]
	}
	seen := make(map[string]bool)
	for i := 0; i < len(pairs); i += 2 {
		name := strings.ToLower(string(pairs[i]))
		if _, ok := current[name]; !ok {
			return "ERR Unknown option or number of arguments for CONFIG SET - '" + trunc(string(pairs[i]), 128) + "'"
		}
		if name == "databases" { // fixed at start in Redis too
			return configSetFailed(string(pairs[i]), "can't set immutable config")
		}
		if seen[name] {
			return configSetFailed(string(pairs[i]), "duplicate parameter")
		}
		seen[name] = true
	}
	for i := 0; i < len(pairs); i += 2 {
		name := strings.ToLower(string(pairs[i]))
		if cur := current[name]; !strings.EqualFold(string(pairs[i+1]), cur) {
			return configSetFailed(name, "cloakroomd cannot change it at run time; it is '"+cur+"'")
		}
	}
	return ""
}

// configSetFailed is Redis's refusal of CONFIG SET for the parameter arg.
func configSetFailed(arg, why string) string {
	return "ERR CONFIG SET failed (possibly related to argument '" + trunc(arg, 128) + "') - " + why
}

// maxClients is the client limit as Redis reports maxclients, which is
// never 0 (monitoring divides by it): with no limit of its own, the server
// is bounded by the open-file limit.
func (s *Server) maxClients() int {
	if s.cfg.MaxClients > 0 {
		return s.cfg.MaxClients
	}
	return s.fileLimit
}

// cmdConfig answers CONFIG GET pattern [pattern ...], CONFIG SET,
// CONFIG RESETSTAT and CONFIG HELP.
func cmdConfig(_ context.Context, c *conn, args [][]byte) {
	switch sub := strings.ToLower(string(args[1])); {
	case sub == "get" && len(args) >= 3:
		var out [][2]string
		for _, kv := range c.s.configValues() {
			for _, p := range args[2:] {
				if protocol.MatchGlob(strings.ToLower(string(p)), kv[0]) {
					out = append(out, kv)
					break
				}
			}
		}
		c.w.Map(len(out))
		for _, kv := range out {
			c.w.BulkString(kv[0])
			c.w.BulkString(kv[1])
		}
	case sub == "get":
		c.w.Error(string(errArity("config|get")))
	case sub == "set" && len(args) >= 4:
		if err := c.s.configSet(args[2:]); err != "" {
			c.w.Error(err)
			return
		}
		c.w.OK()
	case sub == "set":
		c.w.Error(string(errArity("config|set")))
	case sub == "resetstat" && len(args) == 2:
		c.w.OK()
	case sub == "resetstat":
		c.w.Error(string(errArity("config|resetstat")))
	case sub == "help" && len(args) == 2:
		c.writeHelp("CONFIG", configHelp)
	case sub == "help":
		c.w.Error(string(errArity("config|help")))
	default:
		c.w.Error("ERR unknown subcommand '" + trunc(string(args[1]), 128) + "'. Try CONFIG HELP.")
	}
}

func cmdTime(_ context.Context, c *conn, _ [][]byte) {
	now := c.s.cfg.Now()
	c.w.Array(2)
	c.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.BulkString(strconv.Itoa(now.Nanosecond() / 1000))
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND INFO name...,
// COMMAND DOCS [name...], COMMAND LIST and COMMAND HELP, enough for
// redis-cli and cluster clients.
func cmdCommand(_ context.Context, c *conn, args [][]byte) {
	sub := ""
	if len(args) > 1 {
		sub = strings.ToLower(string(args[1]))
	}
	names := make([]string, 0, len(c.s.cmds))
	for n := range c.s.cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	pick := func() []*command {
		var out []*command
		if len(args) <= 2 {
			for _, n := range names {
				out = append(out, c.s.cmds[n])
			}
			return out
		}
		for _, a := range args[2:] {
			out = append(out, c.s.cmds[strings.ToLower(string(a))]) // nil: unknown
		}
		return out
	}
	switch sub {
	case "":
		c.w.Array(len(names))
		for _, n := range names {
			c.commandInfo(c.s.cmds[n])
		}
	case "count":
		if len(args) != 2 {
			c.w.Error(string(errArity("command|count")))
			return
		}
		c.w.Int(int64(len(names)))
	case "info":
		cmds := pick()
		c.w.Array(len(cmds))
		for _, cmd := range cmds {
			if cmd == nil {
				c.w.Null() // as Redis: a null bulk string, not a null array
				continue
			}
			c.commandInfo(cmd)
		}
	case "docs":
		var cmds []*command
		for _, cmd := range pick() {
			if cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
		c.w.Map(len(cmds))
		for _, cmd := range cmds {
			c.w.BulkString(cmd.name)
			c.w.Map(3)
			c.w.BulkString("summary")
			c.w.BulkString(cmd.summary)
			c.w.BulkString("since")
			c.w.BulkString("1.0.0")
			c.w.BulkString("group")
			c.w.BulkString(cmd.group)
		}
	case "list":
		c.w.Strings(names)
	case "help":
		if len(args) != 2 {
			c.w.Error(string(errArity("command|help")))
			return
		}
		c.writeHelp("COMMAND", commandHelp)
	default:
		c.w.Error("ERR unknown subcommand '" + trunc(string(args[1]), 128) + "'. Try COMMAND HELP.")
	}
}

// commandInfo writes one COMMAND entry: name, arity, flags, first key,
// last key, step, ACL categories, tips, key specs, subcommands.
func (c *conn) commandInfo(cmd *command) {
	var flags []string
	if cmd.flags&flagWrite != 0 {
		flags = append(flags, "write")
	}
	if cmd.flags&flagReadonly != 0 {
		flags = append(flags, "readonly")
	}
	if cmd.flags&flagNoAuth != 0 {
		flags = append(flags, "no_auth")
	}
	if cmd.first > 0 {
		flags = append(flags, "fast")
	}
	c.w.Array(10)
	c.w.BulkString(cmd.name)
	c.w.Int(int64(cmd.arity))
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.Simple(f)
	}
	c.w.Int(int64(cmd.first))
	c.w.Int(int64(cmd.last))
	c.w.Int(int64(cmd.step))
	c.w.Set(1)
	c.w.Simple("@" + cmd.group)
	c.w.Array(0)
	c.w.Array(0)
	c.w.Array(0)
}
