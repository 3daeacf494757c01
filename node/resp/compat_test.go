package resp

import (
	"strings"
	"testing"
)

// TestServer_ConfigSet_checksEveryNameBeforeAnyValue: as Redis, CONFIG SET
// looks at every parameter's name (unknown, repeated) before any value, and
// names a repeated one as the client spelled it.
func TestServer_ConfigSet_checksEveryNameBeforeAnyValue(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.expect("-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n", "config", "set", "appendonly", "yes", "foo", "1")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'appendonly') - duplicate parameter\r\n", "config", "set", "appendonly", "yes", "appendonly", "no")
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'SAVE') - duplicate parameter\r\n", "config", "set", "save", "", "SAVE", "")
	// A value refused names the parameter in lower case, as Redis does.
	c.expect("-ERR CONFIG SET failed (possibly related to argument 'appendonly') - cloakroomd cannot change it at run time; it is 'no'\r\n", "config", "set", "APPENDONLY", "yes")
}

// TestServer_GetEx_timePastTheTTLBound: a time past protocol.MaxTTL is one
// cloakroomd refuses, yet GETEX of a missing key answers null before it
// looks at the time, as it does for any invalid time (and redis-server
// does); an existing key still gets the refusal. In MULTI the refusal is
// that command's, not the whole transaction's.
func TestServer_GetEx_timePastTheTTLBound(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	const far = "4611686018427387905" // protocol.MaxTTL+1 ms
	refusal := "-ERR ttl 4611686018427387905ms is out of range (at most 4611686018427387904ms either way)\r\n"
	c.expect("$-1\r\n", "getex", "nope", "px", far)
	c.expect("+OK\r\n", "set", "k", "v")
	c.expect(refusal, "getex", "k", "px", far)
	c.expect("$1\r\nv\r\n", "get", "k")
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "getex", "k", "px", far)
	c.expect("+QUEUED\r\n", "del", "k")
	c.expect("+QUEUED\r\n", "getex", "k", "px", far)
	c.expect("*3\r\n"+refusal+":1\r\n$-1\r\n", "exec")
}

// TestServer_TimePastTheTTLBound_FailsOnlyItsCommandInMulti: SET, PSETEX
// and PEXPIRE with a time past protocol.MaxTTL are refused as the command's
// own error, so that in MULTI the other commands still run, as GETEX's do.
func TestServer_TimePastTheTTLBound_FailsOnlyItsCommandInMulti(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	const far = "4611686018427387905" // protocol.MaxTTL+1 ms
	refusal := "-ERR ttl 4611686018427387905ms is out of range (at most 4611686018427387904ms either way)\r\n"
	c.expect(refusal, "set", "k", "v", "px", far)
	c.expect("+OK\r\n", "multi")
	c.expect("+QUEUED\r\n", "set", "k", "v")
	c.expect("+QUEUED\r\n", "set", "k", "w", "px", far)
	c.expect("+QUEUED\r\n", "psetex", "k", far, "w")
	c.expect("+QUEUED\r\n", "pexpire", "k", far)
	c.expect("+QUEUED\r\n", "get", "k")
	c.expect("*5\r\n+OK\r\n"+refusal+refusal+refusal+"$1\r\nv\r\n", "exec")
}

// TestServer_ClientNames_AreBounded: a client's name, library name and
// version are kept for the connection's life, so each is bounded
// (maxClientName); the bound itself is accepted.
func TestServer_ClientNames_AreBounded(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	ok, long := strings.Repeat("n", maxClientName), strings.Repeat("n", maxClientName+1)
	c.expect("+OK\r\n", "client", "setname", ok)
	c.expect("-ERR Client names are limited to 1024 bytes\r\n", "client", "setname", long)
	c.expect("-ERR Client names are limited to 1024 bytes\r\n", "hello", "3", "setname", long)
	c.expect("-ERR lib-name is limited to 1024 bytes\r\n", "client", "setinfo", "lib-name", long)
	c.expect("-ERR lib-ver is limited to 1024 bytes\r\n", "client", "setinfo", "lib-ver", long)
	c.expect("+OK\r\n", "client", "setinfo", "lib-ver", ok)
	c.cmd("client", "getname")
	if got := c.reply(); got != "$1024\r\n"+ok+"\r\n" {
		t.Errorf("CLIENT GETNAME after refusals: %.40q; want the 1024-byte name", got)
	}
}
