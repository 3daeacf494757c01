package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, nodetest.LeakOptions()...) }

// startNode starts a single in-process node on kernel-chosen loopback ports
// and returns its native address.
func startNode(t *testing.T) string {
	t.Helper()
	return nodetest.StartNode(t).Addr()
}

// result is what one cloakctl invocation produced.
type result struct {
	code           int
	stdout, stderr string
}

// cloakctl runs the CLI in-process with args, the environment env (pairs of
// name, value) and stdin.
func cloakctl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestCloakctl_SetThenGet_printsValue(t *testing.T) {
	addr := startNode(t)
	if r := cloakctl(t, nil, "", "--addr", addr, "set", "session:1", "coat", "--ttl", "1m"); r.code != exitOK || r.stdout != "OK\n" {
		t.Fatalf("set = %+v; want exit 0 and OK", r)
	}
	r := cloakctl(t, nil, "", "get", "--addr", addr, "session:1")
	if r.code != exitOK || r.stdout != "coat\n" {
		t.Fatalf("get = %+v; want exit 0 and coat", r)
	}
}

func TestCloakctl_AddrFromEnvironment(t *testing.T) {
	addr := startNode(t)
	env := map[string]string{"CLOAKROOM_ADDR": addr}
	if r := cloakctl(t, env, "", "set", "k", "v"); r.code != exitOK {
		t.Fatalf("set with CLOAKROOM_ADDR = %+v; want exit 0", r)
	}
	if r := cloakctl(t, env, "", "get", "k"); r.stdout != "v\n" {
		t.Fatalf("get with CLOAKROOM_ADDR = %+v; want v", r)
	}
}

func TestCloakctl_Password_fromFlagOrEnvironment(t *testing.T) {
	addr := nodetest.StartNode(t, func(cfg *node.Config) { cfg.NativePassword = "pw" }).Addr()
	if r := cloakctl(t, nil, "", "--addr", addr, "set", "k", "v"); r.code != exitFailure || !strings.Contains(r.stderr, "authentication failed") {
		t.Fatalf("set without a password = %+v; want exit 3 and authentication failed", r)
	}
	if r := cloakctl(t, nil, "", "--addr", addr, "--password", "pw", "set", "k", "v"); r.code != exitOK {
		t.Fatalf("set --password = %+v; want exit 0", r)
	}
	env := map[string]string{"CLOAKROOM_ADDR": addr, "CLOAKROOM_NATIVE_PASSWORD": "pw"}
	if r := cloakctl(t, env, "", "get", "k"); r.stdout != "v\n" {
		t.Fatalf("get with CLOAKROOM_NATIVE_PASSWORD = %+v; want v", r)
	}
	if r := cloakctl(t, env, "", "status"); r.code != exitOK {
		t.Fatalf("status with CLOAKROOM_NATIVE_PASSWORD = %+v; want exit 0", r)
	}
	// Usage text never shows it, from the environment or the command line.
	for _, args := range [][]string{{"get", "--bogus", "k"}, {"ping", "-h"}, {"--password", "pw", "get", "--bogus", "k"}} {
		if r := cloakctl(t, env, "", args...); strings.Contains(r.stdout+r.stderr, "pw") {
			t.Errorf("cloakctl %q printed the password: %q", args, r.stderr)
		}
	}
}

func TestCloakctl_SetDash_readsValueFromStdin(t *testing.T) {
	addr := startNode(t)
	if r := cloakctl(t, nil, `{"user":7}`, "--addr", addr, "set", "k", "-"); r.code != exitOK {
		t.Fatalf("set - = %+v; want exit 0", r)
	}
	if r := cloakctl(t, nil, "", "--addr", addr, "get", "k"); r.stdout != "{\"user\":7}\n" {
		t.Fatalf("get = %q; want the stdin value", r.stdout)
	}
}

func TestCloakctl_GetMissing_exitsOneWithMessage(t *testing.T) {
	addr := startNode(t)
	r := cloakctl(t, nil, "", "--addr", addr, "get", "nope")
	if r.code != exitNotFound {
		t.Fatalf("exit = %d; want %d", r.code, exitNotFound)
	}
	if r.stdout != "" || !strings.Contains(r.stderr, `"nope": not found`) {
		t.Fatalf("output = %+v; want a not-found message on stderr only", r)
	}
}

func TestCloakctl_TTL(t *testing.T) {
	addr := startNode(t)
	cloakctl(t, nil, "", "--addr", addr, "set", "k", "v", "--ttl", "1h")
	r := cloakctl(t, nil, "", "--addr", addr, "ttl", "k")
	d, err := time.ParseDuration(strings.TrimSpace(r.stdout))
	if r.code != exitOK || err != nil || d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("ttl = %+v; want about 1h", r)
	}
	if r := cloakctl(t, nil, "", "--addr", addr, "ttl", "missing"); r.code != exitNotFound {
		t.Fatalf("ttl missing exit = %d; want %d", r.code, exitNotFound)
	}
}

func TestCloakctl_DelSeveralKeys_printsHowManyExisted(t *testing.T) {
	addr := startNode(t)
	for _, k := range []string{"a", "b"} {
		cloakctl(t, nil, "", "--addr", addr, "set", k, "v")
	}
	r := cloakctl(t, nil, "", "--addr", addr, "del", "a", "b", "c")
	if r.code != exitOK || r.stdout != "2\n" {
		t.Fatalf("del = %+v; want exit 0 and 2", r)
	}
	if r := cloakctl(t, nil, "", "--addr", addr, "get", "a"); r.code != exitNotFound {
		t.Fatalf("get after del exit = %d; want %d", r.code, exitNotFound)
	}
}

func TestCloakctl_BadUsage_exitsTwo(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"get without key", []string{"get"}},
		{"set without value", []string{"set", "k"}},
		{"set with zero ttl", []string{"set", "k", "v", "--ttl", "0s"}},
		{"del without keys", []string{"del"}},
		{"unknown flag", []string{"get", "--nope", "k"}},
		{"bench with bad ratio", []string{"bench", "--ratio", "half"}},
		{"bench with bad target", []string{"bench", "--target", "memcached"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cloakctl(t, nil, "", tc.args...)
			if r.code != exitUsage {
				t.Fatalf("exit = %d; want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			if r.stderr == "" {
				t.Fatal("stderr is empty; want an explanation")
			}
		})
	}
}

func TestCloakctl_Help_exitsZero(t *testing.T) {
	r := cloakctl(t, nil, "", "help")
	if r.code != exitOK || !strings.Contains(r.stderr, "bench") {
		t.Fatalf("help = %+v; want exit 0 and the command list", r)
	}
}

func TestCloakctl_NodeDown_exitsThree(t *testing.T) {
	r := cloakctl(t, nil, "", "--addr", "127.0.0.1:1", "--timeout", "2s", "get", "k")
	if r.code != exitFailure || !strings.Contains(r.stderr, "cloakctl get:") {
		t.Fatalf("get from a dead address = %+v; want exit %d and a message", r, exitFailure)
	}
}
