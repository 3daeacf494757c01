package integration

import (
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/internal/testcert"
	"github.com/cloakroom/cloakroom/internal/testtool"
)

// TestRESP_TLS_RedisTools: redis-cli and redis-benchmark over TLS against
// a cloakroomd process that serves Redis over TLS alone and requires a
// client certificate: one-shot commands, a session read from stdin, and
// redis-benchmark -t ping,set,get; without a client certificate redis-cli
// is refused.
func TestRESP_TLS_RedisTools(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cloakroomd process")
	}
	cli, bench := testtool.Look(t, "redis-cli", "redis-tools"), testtool.Look(t, "redis-benchmark", "redis-tools")
	dir := t.TempDir()
	ca := testcert.NewCA(t, "ca")
	crt, key := ca.Issue(t, "n1")
	ccrt, ckey := ca.Issue(t, "client")
	caFile := testcert.Write(t, dir, "ca.crt", ca.PEM)
	tlsAddr := stableAddr(t)
	c := startProcCluster(t, 1, "--resp-addr=", "--resp-tls-addr", tlsAddr,
		"--resp-tls-cert", testcert.Write(t, dir, "tls.crt", crt), "--resp-tls-key", testcert.Write(t, dir, "tls.key", key),
		"--resp-tls-client-ca", caFile)
	withCert := []string{"--tls", "--cacert", caFile,
		"--cert", testcert.Write(t, dir, "client.crt", ccrt), "--key", testcert.Write(t, dir, "client.key", ckey)}

	tool := func(bin, stdin string, args ...string) string {
		return redisTool(t, bin, tlsAddr, stdin, append(withCert, args...)...)
	}
	if got := tool(cli, "", "set", "sess:tls", "alice", "ex", "60"); got != "OK\n" {
		t.Errorf("redis-cli --tls set: %q; want OK", got)
	}
	if got := tool(cli, "", "get", "sess:tls"); got != "alice\n" {
		t.Errorf("redis-cli --tls get: %q; want alice", got)
	}
	out := tool(cli, "ttl sess:tls\ndel sess:tls\nexists sess:tls\n")
	if f := strings.Fields(out); len(f) != 3 || f[1] != "1" || f[2] != "0" {
		t.Errorf("redis-cli --tls session (ttl, del, exists): %q; want a TTL, 1, 0", out)
	}
	checkBenchmark(t, tool(bench, "", "-t", "ping,set,get", "-n", "2000", "-c", "10", "-q"))

	// Without a client certificate: refused, and the node goes on.
	if out, err := runTool(cli, tlsAddr, "--tls", "--cacert", caFile, "ping"); err == nil && strings.Contains(out, "PONG") {
		t.Errorf("redis-cli --tls without a client certificate: %q; want refused", out)
	}
	if got := tool(cli, "", "ping"); got != "PONG\n" {
		t.Errorf("redis-cli --tls ping after a refused client: %q; want PONG", got)
	}
	if t.Failed() {
		c.logOutputs()
	}
}
