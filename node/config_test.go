package node

import (
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

func TestConfig_Validate_defaultsAreValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v; want nil", err)
	}
	if err := (Config{Addr: "127.0.0.1:0"}).Validate(); err != nil {
		t.Errorf("Validate of a config with only Addr = %v; want nil (zero fields mean defaults)", err)
	}
}

func TestConfig_Validate_reportsEveryProblemAtOnce(t *testing.T) {
	cfg := Config{
		Name:            "n1",
		Addr:            "",
		RESPAddr:        "no-port",
		HTTPAddr:        "127.0.0.1:99999",
		GossipAddr:      "127.0.0.1:http",
		Join:            []string{"ok:1", "bad"},
		Replicas:        -1,
		Partitions:      -5,
		MaxMemory:       -1,
		Limits:          protocol.Limits{MaxKey: 1 << 16, MaxValue: 1 << 30},
		ExpiryInterval:  -1,
		RESPIdleSpin:    2 * time.Millisecond,
		RESPIdleTimeout: 500 * time.Millisecond,
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want every problem")
	}
	for _, want := range []string{
		"addr: required", `resp-addr "no-port"`, `http-addr "127.0.0.1:99999"`, `gossip-addr "127.0.0.1:http"`,
		`join "bad"`, "replicas: -1", "partitions: -5", "max-memory: -1", "max key size", "max value size", "expiry interval",
		"resp-idle-spin", "resp-idle-timeout",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q; want it to mention %q", err, want)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 13 {
		t.Errorf("Validate() reported %d problems; want 13:\n%v", got, err)
	}
}

func TestConfig_Validate_emptyOptionalListenersAreFine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RESPAddr, cfg.HTTPAddr = "", ""
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() with RESP and HTTP disabled = %v; want nil", err)
	}
}

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"512MiB", 512 << 20},
		{"512mib", 512 << 20},
		{" 2 GiB ", 2 << 30},
		{"1GB", 1e9},
		{"64k", 64 << 10},
		{"64KB", 64e3},
		{"3M", 3 << 20},
		{"1t", 1 << 40},
		{"100b", 100},
	}
	for _, c := range cases {
		got, err := ParseBytes(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, nil", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "-1MiB", "1.5GiB", "12 parsecs", "9223372036854775807k", "0x10"} {
		if got, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) = %d, nil; want an error", bad, got)
		}
	}
}
