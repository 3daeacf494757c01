package resp

// The HELP subcommands of CONFIG, COMMAND, CLIENT and CLUSTER, which the
// "Try X HELP." of their unknown-subcommand errors points to. Each lists
// only what this server answers, in Redis's layout: a heading, then each
// subcommand's synopsis with its description indented four spaces below.

var configHelp = []string{
	"GET <pattern> [<pattern> ...]",
	"    Return the parameters whose names match a glob-style <pattern>, with",
	"    their values.",
	"SET <parameter> <value> [<parameter> <value> ...]",
	"    Accepted only when each value is the parameter's current one: the",
	"    node's flags fix its configuration.",
	"RESETSTAT",
	"    Accepted; there are no statistics to reset.",
}

var commandHelp = []string{
	"(no subcommand)",
	"    Describe every command this server knows.",
	"COUNT",
	"    Return how many commands this server knows.",
	"LIST",
	"    Return the name of every command this server knows.",
	"INFO [<command-name> ...]",
	"    Describe the named commands, or every command if none is named.",
	"DOCS [<command-name> ...]",
	"    Return a summary of the named commands, or of every command if none",
	"    is named.",
}

var clientHelp = []string{
	"ID",
	"    Return this connection's ID.",
	"GETNAME",
	"    Return this connection's name.",
	"SETNAME <name>",
	"    Name this connection <name>.",
	"SETINFO (LIB-NAME|LIB-VER) <value>",
	"    Record the name or version of the client library.",
	"INFO",
	"    Describe this connection.",
	"LIST [TYPE <type> | ID <client-id> [<client-id> ...]]",
	"    Describe the connections, all of them or those chosen.",
	"NO-EVICT (ON|OFF)",
	"    Accepted; it has no effect here.",
	"NO-TOUCH (ON|OFF)",
	"    Accepted; it has no effect here.",
}

var clusterHelp = []string{
	"INFO",
	"    Return the state of the cluster.",
	"KEYSLOT <key>",
	"    Return the hash slot of <key>.",
	"MYID",
	"    Return this node's ID.",
	"NODES",
	"    Describe every node, one line each, with the slots it serves.",
	"SHARDS",
	"    Describe each set of slots with the nodes that hold them.",
	"SLOTS",
	"    Return each range of slots with the primary that serves it.",
}

// writeHelp answers cmd's HELP subcommand with lines, the description of
// its other subcommands, as an array of simple strings.
func (c *conn) writeHelp(cmd string, lines []string) {
	c.w.Array(1 + len(lines) + 2)
	c.w.Simple(cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		c.w.Simple(l)
	}
	c.w.Simple("HELP")
	c.w.Simple("    Prints this help.")
}
