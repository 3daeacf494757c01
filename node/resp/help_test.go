package resp

import (
	"strings"
	"testing"
)

// helpLines splits a HELP reply into its lines, failing unless it is an
// array of simple strings.
func helpLines(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n")
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "*") || parts[0][1:] != itoa(len(parts)-1) {
		t.Fatalf("got %q; want an array of simple strings", raw)
	}
	lines := parts[1:]
	for i, l := range lines {
		if !strings.HasPrefix(l, "+") {
			t.Fatalf("line %d: got %q; want a simple string", i, l)
		}
		lines[i] = l[1:]
	}
	return lines
}

// TestServer_Help_listsOnlyWhatIsAnswered checks that the HELP the
// unknown-subcommand errors point to exists, is laid out as Redis's
// (heading first, HELP last, each description indented under its
// subcommand), and names no subcommand the server calls unknown.
func TestServer_Help_listsOnlyWhatIsAnswered(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	for _, cmd := range []string{"CONFIG", "COMMAND", "CLIENT", "CLUSTER"} {
		t.Run(cmd, func(t *testing.T) {
			c := ts.dial(t)
			c.cmd(strings.ToLower(cmd), "help")
			lines := helpLines(t, c.reply())
			if want := cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"; lines[0] != want {
				t.Errorf("first line: got %q; want %q", lines[0], want)
			}
			if n := len(lines); n < 3 || lines[n-2] != "HELP" || lines[n-1] != "    Prints this help." {
				t.Errorf("last lines: got %q; want HELP and its description", lines[max(n-2, 0):])
			}
			for i, l := range lines[1:] {
				if strings.HasPrefix(l, "    ") {
					continue
				}
				if i+2 >= len(lines) || !strings.HasPrefix(lines[i+2], "    ") {
					t.Errorf("%q has no description under it", l)
				}
				sub, _, _ := strings.Cut(l, " ")
				if sub == "(no" {
					continue // COMMAND alone
				}
				c.cmd(strings.ToLower(cmd), sub)
				if got := c.reply(); strings.Contains(got, "unknown subcommand") {
					t.Errorf("%s HELP lists %s, which answers %q", cmd, sub, got)
				}
			}
			c.expect("-ERR wrong number of arguments for '"+strings.ToLower(cmd)+"|help' command\r\n", strings.ToLower(cmd), "help", "x")
		})
	}
}
