package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
)

// env is a fake environment for parseFlags.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// contractFlags are the flags of the design brief, each with a value to set
// and the field it must land in.
var contractFlags = []struct {
	name, value string
	field       func(*node.Config) any
	want        any
}{
	{"name", "n7", func(c *node.Config) any { return c.Name }, "n7"},
	{"addr", "127.0.0.1:17400", func(c *node.Config) any { return c.Addr }, "127.0.0.1:17400"},
	{"resp-addr", "127.0.0.1:16379", func(c *node.Config) any { return c.RESPAddr }, "127.0.0.1:16379"},
	{"http-addr", "127.0.0.1:17480", func(c *node.Config) any { return c.HTTPAddr }, "127.0.0.1:17480"},
	{"gossip-addr", "127.0.0.1:17946", func(c *node.Config) any { return c.GossipAddr }, "127.0.0.1:17946"},
	{"advertise", "10.0.0.7", func(c *node.Config) any { return c.Advertise }, "10.0.0.7"},
	{"join", "10.0.0.1:7946, 10.0.0.2:7946", func(c *node.Config) any { return c.Join }, []string{"10.0.0.1:7946", "10.0.0.2:7946"}},
	{"replicas", "3", func(c *node.Config) any { return c.Replicas }, 3},
	{"partitions", "1021", func(c *node.Config) any { return c.Partitions }, 1021},
	{"max-memory", "512MiB", func(c *node.Config) any { return c.MaxMemory }, int64(512 << 20)},
}

func envName(flag string) string {
	return "CLOAKROOM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func parse(t *testing.T, args []string, e env) *options {
	t.Helper()
	var stderr bytes.Buffer
	o, err := parseFlags(args, e.get, &stderr)
	if err != nil {
		t.Fatalf("parseFlags(%q, %v) = %v; want success (stderr: %s)", args, e, err, stderr.String())
	}
	return o
}

func TestParseFlags_noFlags_givesTheDefaults(t *testing.T) {
	o := parse(t, nil, env{})
	c := o.cfg
	want := node.DefaultConfig()
	if c.Addr != "127.0.0.1:7400" || c.RESPAddr != "127.0.0.1:6379" || c.HTTPAddr != "127.0.0.1:7480" ||
		c.GossipAddr != "127.0.0.1:7946" || c.Replicas != 2 || c.Partitions != 271 || c.MaxMemory != 0 || c.Name != want.Name {
		t.Errorf("defaults: got %+v; want the design brief's defaults", c)
	}
	if len(c.Join) != 0 || c.Advertise != "" {
		t.Errorf("defaults: got join %q advertise %q; want none", c.Join, c.Advertise)
	}
}

func TestParseFlags_everyContractFlag_fromCommandLine(t *testing.T) {
	for _, f := range contractFlags {
		t.Run(f.name, func(t *testing.T) {
			o := parse(t, []string{"--" + f.name, f.value}, env{})
			if got := f.field(&o.cfg); !reflect.DeepEqual(got, f.want) {
				t.Errorf("--%s %s: got %#v; want %#v", f.name, f.value, got, f.want)
			}
		})
	}
}

func TestParseFlags_everyContractFlag_fromEnvironment(t *testing.T) {
	for _, f := range contractFlags {
		t.Run(f.name, func(t *testing.T) {
			o := parse(t, nil, env{envName(f.name): f.value})
			if got := f.field(&o.cfg); !reflect.DeepEqual(got, f.want) {
				t.Errorf("%s=%s: got %#v; want %#v", envName(f.name), f.value, got, f.want)
			}
		})
	}
}

func TestParseFlags_commandLineWinsOverEnvironment(t *testing.T) {
	e := env{}
	for _, f := range contractFlags {
		e[envName(f.name)] = "from-env-and-invalid"
	}
	var args []string
	for _, f := range contractFlags {
		args = append(args, "--"+f.name+"="+f.value)
	}
	o := parse(t, args, e)
	for _, f := range contractFlags {
		if got := f.field(&o.cfg); !reflect.DeepEqual(got, f.want) {
			t.Errorf("--%s with %s set: got %#v; want %#v", f.name, envName(f.name), got, f.want)
		}
	}
}

func TestParseFlags_emptyFlagDisablesListener(t *testing.T) {
	o := parse(t, []string{"--resp-addr=", "--http-addr="}, env{})
	if o.cfg.RESPAddr != "" || o.cfg.HTTPAddr != "" {
		t.Errorf("got resp-addr %q http-addr %q; want both disabled", o.cfg.RESPAddr, o.cfg.HTTPAddr)
	}
}

func TestParseFlags_otherFlags(t *testing.T) {
	o := parse(t, []string{"--max-key-size", "256", "--max-value-size", "64KiB", "--allow-flush", "--log-level", "debug",
		"--log-format", "json", "--drain-timeout", "5s", "--check-config"}, env{})
	if o.cfg.Limits.MaxKey != 256 || o.cfg.Limits.MaxValue != 64<<10 || !o.cfg.AllowFlush || !o.checkConfig ||
		o.drainTimeout.Seconds() != 5 || o.logFormat != "json" {
		t.Errorf("got %+v; want every flag applied", o)
	}
}

func TestParseFlags_nativePassword(t *testing.T) {
	o := parse(t, nil, env{"CLOAKROOM_NATIVE_PASSWORD": "pw", "CLOAKROOM_NATIVE_PASSWORD_OPTIONAL": "true"})
	if o.cfg.NativePassword != "pw" || !o.cfg.NativePasswordOptional {
		t.Errorf("from the environment: got %q, optional %v; want pw, true", o.cfg.NativePassword, o.cfg.NativePasswordOptional)
	}
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"--native-password-optional"}, env{}.get, &stderr); err == nil || !strings.Contains(err.Error(), "needs native-password") {
		t.Errorf("--native-password-optional alone: %v; want an error saying it needs --native-password", err)
	}
}

func TestParseFlags_respIdleSpin(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 20 * time.Microsecond},
		{[]string{"--resp-idle-spin", "50us"}, 50 * time.Microsecond},
		{[]string{"--resp-idle-spin", "0"}, -1}, // node.Config: negative disables
	} {
		if got := parse(t, tc.args, env{}).cfg.RESPIdleSpin; got != tc.want {
			t.Errorf("%q: RESPIdleSpin = %v; want %v", tc.args, got, tc.want)
		}
	}
	var stderr bytes.Buffer
	for _, bad := range []string{"-1us", "2ms"} {
		if _, err := parseFlags([]string{"--resp-idle-spin", bad}, env{}.get, &stderr); err == nil ||
			!strings.Contains(err.Error(), "resp-idle-spin") {
			t.Errorf("--resp-idle-spin %s: got %v; want an error naming the flag", bad, err)
		}
	}
}

func TestParseFlags_respMaxClients(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want int
	}{
		{nil, env{}, 10000},
		{[]string{"--resp-max-clients", "500"}, env{}, 500},
		{nil, env{"CLOAKROOM_RESP_MAX_CLIENTS": "64"}, 64},
		{[]string{"--resp-max-clients", "0"}, env{}, -1}, // node.Config: negative is no limit
	} {
		if got := parse(t, tc.args, tc.env).cfg.RESPMaxClients; got != tc.want {
			t.Errorf("%q %v: RESPMaxClients = %d; want %d", tc.args, tc.env, got, tc.want)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"--resp-max-clients", "-5"}, env{}.get, &stderr); err == nil ||
		!strings.Contains(err.Error(), "resp-max-clients") {
		t.Errorf("--resp-max-clients -5: got %v; want an error naming the flag", err)
	}
}

func TestParseFlags_respIdleTimeout(t *testing.T) {
	if got := parse(t, nil, env{}).cfg.RESPIdleTimeout; got != 0 {
		t.Errorf("default RESPIdleTimeout = %v; want 0 (never)", got)
	}
	if got := parse(t, []string{"--resp-idle-timeout", "5m"}, env{}).cfg.RESPIdleTimeout; got != 5*time.Minute {
		t.Errorf("--resp-idle-timeout 5m: RESPIdleTimeout = %v", got)
	}
	if got := parse(t, nil, env{"CLOAKROOM_RESP_IDLE_TIMEOUT": "300s"}).cfg.RESPIdleTimeout; got != 5*time.Minute {
		t.Errorf("CLOAKROOM_RESP_IDLE_TIMEOUT=300s: RESPIdleTimeout = %v", got)
	}
}

func TestParseFlags_respRetryWindow(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want time.Duration
	}{
		{nil, env{}, 10 * time.Second},
		{[]string{"--resp-retry-window", "30s"}, env{}, 30 * time.Second},
		{nil, env{"CLOAKROOM_RESP_RETRY_WINDOW": "2s"}, 2 * time.Second},
		{[]string{"--resp-retry-window", "0"}, env{}, -1}, // node.Config: negative is never
	} {
		if got := parse(t, tc.args, tc.env).cfg.RESPRetryWindow; got != tc.want {
			t.Errorf("%q %v: RESPRetryWindow = %v; want %v", tc.args, tc.env, got, tc.want)
		}
	}
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"--resp-retry-window", "-1s"}, env{}.get, &stderr); err == nil ||
		!strings.Contains(err.Error(), "resp-retry-window") {
		t.Errorf("--resp-retry-window -1s: got %v; want an error naming the flag", err)
	}
}

func TestParseFlags_badValues_reportEveryProblem(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseFlags([]string{"--max-memory", "lots", "--max-value-size", "huge", "--log-format", "xml",
		"--replicas", "0", "--partitions", "0", "--addr", "nowhere"}, env{}.get, &stderr)
	if err == nil {
		t.Fatal("parseFlags with bad values: got nil; want an error")
	}
	for _, want := range []string{"max-memory", "max-value-size", "log-format", "addr"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to mention %q", err, want)
		}
	}
}

func TestParseFlags_badEnvironmentValue_namesTheVariable(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseFlags(nil, env{"CLOAKROOM_REPLICAS": "two"}.get, &stderr)
	if err == nil || !strings.Contains(err.Error(), "CLOAKROOM_REPLICAS") {
		t.Errorf("CLOAKROOM_REPLICAS=two: got %v; want an error naming the variable", err)
	}
}

func TestParseFlags_unknownFlagAndStrayArguments_areRefused(t *testing.T) {
	var stderr bytes.Buffer
	if _, err := parseFlags([]string{"--no-such-flag"}, env{}.get, &stderr); err == nil {
		t.Error("--no-such-flag: got nil; want an error")
	}
	if _, err := parseFlags([]string{"stray"}, env{}.get, &stderr); err == nil {
		t.Error("stray argument: got nil; want an error")
	}
	if _, err := parseFlags([]string{"-h"}, env{}.get, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v; want flag.ErrHelp", err)
	}
}

// TestREADME_documentsEveryFlag keeps the README's flag table complete: every
// flag cloakroomd defines must appear there with its environment variable.
func TestREADME_documentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, env{}.get, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v; want flag.ErrHelp", err)
	}
	var names []string
	for _, line := range strings.Split(usage.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			names = append(names, strings.Fields(line)[0][1:])
		}
	}
	if len(names) < len(contractFlags) {
		t.Fatalf("found %d flags in the usage text; want at least %d:\n%s", len(names), len(contractFlags), usage.String())
	}
	for _, name := range names {
		for _, want := range []string{"`--" + name + "`", "`" + envName(name) + "`"} {
			if !bytes.Contains(readme, []byte(want)) {
				t.Errorf("README.md does not mention %s; add --%s to its flag table", want, name)
			}
		}
	}
}
