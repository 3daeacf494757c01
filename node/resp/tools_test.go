package resp

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/internal/testtool"
)

func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testtool.Look(t, name, "redis-tools"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestRedisCLI_OneShot(t *testing.T) {
	ts := startServer(t)
	host, port := splitAddr(ts.addr)
	cli := func(args ...string) string {
		return strings.TrimSpace(runTool(t, "", "redis-cli", append([]string{"-h", host, "-p", itoa(port)}, args...)...))
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ping"}, "PONG"},
		{[]string{"set", "k", "v", "ex", "60", "nx"}, "OK"},
		{[]string{"get", "k"}, "v"},
		{[]string{"ttl", "k"}, "60"},
		{[]string{"dbsize"}, "1"},
		{[]string{"del", "k"}, "1"},
		{[]string{"foo"}, "ERR unknown command 'foo', with args beginning with:"},
		{[]string{"--no-raw", "get", "k"}, "(nil)"},
	}
	for _, tc := range cases {
		if got := cli(tc.args...); got != tc.want {
			t.Errorf("redis-cli %q: got %q; want %q", tc.args, got, tc.want)
		}
	}
}

func TestRedisCLI_Interactive(t *testing.T) {
	ts := startServer(t)
	host, port := splitAddr(ts.addr)
	// With stdin not a terminal redis-cli reads commands line by line, after
	// the same start-up (COMMAND DOCS and friends) as an interactive session.
	out := runTool(t, "set greeting \"hello world\"\nget greeting\nclient setname cli\nclient getname\ninfo server\nquit\n",
		"redis-cli", "-h", host, "-p", itoa(port))
	for _, want := range []string{"OK\n", "hello world\n", "cli\n", "redis_version:7.2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("redis-cli session output lacks %q:\n%s", want, out)
		}
	}
}

func TestRedisBenchmark_PingSetGet(t *testing.T) {
	ts := startServer(t)
	host, port := splitAddr(ts.addr)
	out := runTool(t, "", "redis-benchmark", "-h", host, "-p", itoa(port), "-t", "ping,set,get", "-n", "2000", "-c", "10", "-q")
	for _, want := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET"} {
		if !strings.Contains(out, want+": ") {
			t.Errorf("redis-benchmark output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(strings.ToLower(out), "error") {
		t.Errorf("redis-benchmark reported errors:\n%s", out)
	}
}

func TestRedisCLI_InteractiveTerminal(t *testing.T) {
	testtool.Look(t, "redis-cli", "redis-tools")
	script := testtool.Look(t, "script", "bsdutils") // gives redis-cli a terminal
	ts := startServer(t)
	host, port := splitAddr(ts.addr)
	// On a terminal redis-cli starts its interactive mode, which loads
	// command help with COMMAND DOCS.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qec", "redis-cli -h "+host+" -p "+itoa(port), "/dev/null")
	cmd.Env = append(cmd.Environ(), "TERM=dumb")
	cmd.Stdin = strings.NewReader("set k v\r\nhelp get\r\nquit\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli on a terminal: %v\n%s", err, out)
	}
	for _, want := range []string{"OK", "Returns the string value of a key."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("interactive redis-cli output lacks %q:\n%s", want, out)
		}
	}
}
