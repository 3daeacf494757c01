package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cloakroom/cloakroom/client"
)

// Exit codes; see the package doc.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitFailure  = 3
)

// defaultAddr is the node cloakctl talks to unless --addr or
// CLOAKROOM_ADDR says otherwise; it matches cloakroomd's default.
const defaultAddr = "127.0.0.1:7400"

// env is what a command may touch: its streams, the environment and the
// options shared by every command.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	addr     string        // --addr: comma-separated native addresses
	password string        // --password: the nodes' --native-password
	timeout  time.Duration // --timeout: bound on one command's requests

	cmd command // the command being run, for its usage text
}

// command is one subcommand. run gets the arguments after the command name
// and returns an exit code.
type command struct {
	usage   string // arguments, for help
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands lists the subcommands.
var commands = map[string]command{
	"status": {"", "show members, partitions owned and backed up, transfers in flight", cmdStatus},
	"ping":   {"", "check that the node answers and is ready (exit 0) or not (exit 3)", cmdPing},
	"get":    {"KEY", "print the session stored under KEY", cmdGet},
	"set":    {"KEY VALUE [--ttl 24h]", "store VALUE under KEY (VALUE - reads stdin)", cmdSet},
	"del":    {"KEY...", "delete sessions; prints how many existed", cmdDel},
	"ttl":    {"KEY", "print the remaining time to live of KEY", cmdTTL},
	"bench":  {"[flags]", "generate load and report ops/s and latency", cmdBench},
}

// run parses the global flags, then runs the named command.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("cloakctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e.commonFlags(fs)
	fs.Usage = func() { e.usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		e.usage(fs)
		return exitUsage
	}
	name := fs.Arg(0)
	if name == "help" {
		e.usage(fs)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "cloakctl: unknown command %q\n", name)
		e.usage(fs)
		return exitUsage
	}
	e.cmd = cmd
	return cmd.run(ctx, e, fs.Args()[1:])
}

// commonFlags registers the options every command accepts, so that they may
// come before or after the command name.
func (e *env) commonFlags(fs *flag.FlagSet) {
	if e.addr == "" {
		e.addr = defaultAddr
		if v := e.getenv("CLOAKROOM_ADDR"); v != "" {
			e.addr = v
		}
	}
	if e.password == "" {
		e.password = e.getenv("CLOAKROOM_NATIVE_PASSWORD")
	}
	if e.timeout == 0 {
		e.timeout = 5 * time.Second
	}
	fs.StringVar(&e.addr, "addr", e.addr, "node native address(es), comma-separated (env CLOAKROOM_ADDR)")
	fs.Var(secret{&e.password}, "password", "`password` of the nodes (their --native-password); better given as env CLOAKROOM_NATIVE_PASSWORD, which other users cannot read in the process list")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "time limit for a command's requests")
}

// secret is a string flag whose value is never shown: usage text prints a
// flag's current value as its default, and a password must not appear.
type secret struct{ s *string }

func (v secret) String() string     { return "" }
func (v secret) Set(s string) error { *v.s = s; return nil }

func (e *env) usage(fs *flag.FlagSet) {
	w := e.stderr
	fmt.Fprintln(w, "usage: cloakctl [--addr host:port] <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-6s %-24s %s\n", n, c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 not found, 2 usage, 3 failure")
}

// addrs splits --addr into node addresses.
func (e *env) addrs() []string {
	var out []string
	for _, a := range strings.Split(e.addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// parseArgs parses flags that may be interleaved with positional arguments
// ("set k v --ttl 1m") and returns the positional ones. On bad usage the
// flag package has printed why; usageCode gives the exit code.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageCode is the exit code for a flag parsing error: success for -h.
func usageCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// subcommand prepares the flag set of command name.
func (e *env) subcommand(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cloakctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.commonFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: cloakctl %s %s\n\n%s\n\nflags:\n", name, e.cmd.usage, e.cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// usageError reports bad usage of command name.
func (e *env) usageError(name, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "cloakctl %s: %s\n", name, fmt.Sprintf(format, args...))
	fmt.Fprintf(e.stderr, "usage: cloakctl %s %s\n", name, e.cmd.usage)
	return exitUsage
}

// fail reports err from command name and returns its exit code.
func (e *env) fail(name string, err error) int {
	fmt.Fprintf(e.stderr, "cloakctl %s: %v\n", name, err)
	if errors.Is(err, client.ErrNotFound) {
		return exitNotFound
	}
	return exitFailure
}

// failKey reports err from command name about key; a missing session gets
// a plain message and exitNotFound.
func (e *env) failKey(name, key string, err error) int {
	if errors.Is(err, client.ErrNotFound) {
		fmt.Fprintf(e.stderr, "cloakctl %s: %q: not found\n", name, key)
		return exitNotFound
	}
	return e.fail(name, fmt.Errorf("%q: %w", key, err))
}

// client returns a client of the nodes at addrs, with --password.
func (e *env) client(addrs []string, direct bool) (*client.Client, error) {
	return client.New(client.Config{Addrs: addrs, Direct: direct, Password: e.password})
}

// dial returns a client for --addr and a context bounded by --timeout.
func (e *env) dial(ctx context.Context) (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := e.client(e.addrs(), false)
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	return c, cctx, func() { cancel(); c.Close() }, nil
}

func cmdGet(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("get")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) != 1 {
		return e.usageError("get", "want one KEY, got %d arguments", len(pos))
	}
	c, cctx, done, err := e.dial(ctx)
	if err != nil {
		return e.fail("get", err)
	}
	defer done()
	v, err := c.Get(cctx, pos[0])
	if err != nil {
		return e.failKey("get", pos[0], err)
	}
	e.stdout.Write(v)
	fmt.Fprintln(e.stdout)
	return exitOK
}

func cmdSet(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("set")
	ttl := fs.Duration("ttl", 24*time.Hour, "time to live; must be positive")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) != 2 {
		return e.usageError("set", "want KEY and VALUE, got %d arguments", len(pos))
	}
	if *ttl <= 0 {
		return e.usageError("set", "--ttl %v: must be positive", *ttl)
	}
	value := []byte(pos[1])
	if pos[1] == "-" {
		var err error
		if value, err = io.ReadAll(e.stdin); err != nil {
			return e.fail("set", fmt.Errorf("read stdin: %w", err))
		}
	}
	c, cctx, done, err := e.dial(ctx)
	if err != nil {
		return e.fail("set", err)
	}
	defer done()
	if err := c.Set(cctx, pos[0], value, *ttl); err != nil {
		return e.fail("set", fmt.Errorf("%q: %w", pos[0], err))
	}
	fmt.Fprintln(e.stdout, "OK")
	return exitOK
}

func cmdDel(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("del")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) == 0 {
		return e.usageError("del", "want at least one KEY")
	}
	c, cctx, done, err := e.dial(ctx)
	if err != nil {
		return e.fail("del", err)
	}
	defer done()
	n, err := c.Delete(cctx, pos...)
	if err != nil {
		return e.fail("del", err)
	}
	fmt.Fprintln(e.stdout, n)
	return exitOK
}

func cmdTTL(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("ttl")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) != 1 {
		return e.usageError("ttl", "want one KEY, got %d arguments", len(pos))
	}
	c, cctx, done, err := e.dial(ctx)
	if err != nil {
		return e.fail("ttl", err)
	}
	defer done()
	d, err := c.TTL(cctx, pos[0])
	if err != nil {
		return e.failKey("ttl", pos[0], err)
	}
	if d < 0 {
		fmt.Fprintln(e.stdout, "no expiry")
		return exitOK
	}
	fmt.Fprintln(e.stdout, d.Round(time.Millisecond))
	return exitOK
}
