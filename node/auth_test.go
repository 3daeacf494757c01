package node

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testPassword = "correct horse battery staple"

// helloWith dials n and sends a hello giving password, then ping, in one
// write, as a client that does not wait for the hello's answer would.
func helloWith(t *testing.T, n *Node, password string) (*rawConn, *protocol.Response) {
	t.Helper()
	rc := dialRaw(t, n)
	hello := &protocol.Request{ID: 1, Op: protocol.OpHello, Version: protocol.Version, Value: []byte(password)}
	b, err := protocol.AppendFrame(nil, hello)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = protocol.AppendFrame(b, &protocol.Request{ID: 2, Op: protocol.OpSet, Key: "sess:1", Value: []byte("stolen"), TTL: 60_000}); err != nil {
		t.Fatal(err)
	}
	rc.sendRaw(b)
	return rc, rc.recv()
}

// value reads a counter or a gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestNative_password_isRequiredInTheHello(t *testing.T) {
	n := startTestNode(t, func(cfg *Config) { cfg.NativePassword = testPassword })
	for name, given := range map[string]string{
		"none":   "",
		"wrong":  "correct horse battery stapl",
		"longer": testPassword + " ",
		"case":   strings.ToUpper(testPassword),
	} {
		rc, resp := helloWith(t, n, given)
		expectCode(t, name, resp, protocol.CodeAuth)
		if !strings.Contains(resp.Msg, "--native-password") {
			t.Errorf("%s: message %q does not name --native-password", name, resp.Msg)
		}
		rc.expectClosed() // the set sent behind the hello did not run
	}
	if got := value(t, n.metrics.authFailures); got != 4 {
		t.Errorf("auth failures metric = %v; want 4", got)
	}
	if _, ok := n.Store().Entry("sess:1"); ok {
		t.Fatal("a set sent behind a refused hello was stored")
	}

	rc, resp := helloWith(t, n, testPassword)
	expectCode(t, "the password", resp, protocol.CodeOK)
	expectCode(t, "set after the hello", rc.recv(), protocol.CodeOK)
	// A later hello on the same connection is checked again.
	expectCode(t, "a second hello, wrong", rc.do(&protocol.Request{ID: 3, Op: protocol.OpHello, Version: protocol.Version}), protocol.CodeAuth)
	rc.expectClosed()
}

func TestNative_passwordOptional_letsInCountsAndLogs(t *testing.T) {
	warns := &warnCounter{prefix: "native: let in a connection"}
	n := startTestNode(t, func(cfg *Config) {
		cfg.NativePassword, cfg.NativePasswordOptional = testPassword, true
		cfg.Logger = slog.New(warns)
	})
	var conns []*rawConn
	for _, given := range []string{"", "old password", "", testPassword} {
		rc, resp := helloWith(t, n, given)
		expectCode(t, "hello giving "+given, resp, protocol.CodeOK)
		expectCode(t, "set after it", rc.recv(), protocol.CodeOK)
		conns = append(conns, rc)
	}
	if got := value(t, n.metrics.authFailures); got != 3 {
		t.Errorf("auth failures metric = %v; want 3 (the right password is not one)", got)
	}
	if got := warns.n.Load(); got != 1 {
		t.Errorf("%d warnings for 3 hellos without the password; want 1 (every 10 s)", got)
	}
	// The gauge an operator watches before requiring the password: the
	// connections let in without it, while they are open.
	if got := value(t, n.metrics.unauthConns); got != 3 {
		t.Errorf("connections without the password = %v; want 3", got)
	}
	for _, rc := range conns {
		rc.c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for value(t, n.metrics.unauthConns) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connections without the password = %v after they closed; want 0", value(t, n.metrics.unauthConns))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNative_noPassword_ignoresOneGiven(t *testing.T) {
	n := startTestNode(t)
	_, resp := helloWith(t, n, "anything")
	expectCode(t, "a hello giving a password to a node that requires none", resp, protocol.CodeOK)
	if got := value(t, n.metrics.authFailures); got != 0 {
		t.Errorf("auth failures metric = %v; want 0", got)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7946": true, "127.0.0.9:0": true, "[::1]:7946": true, "localhost:7946": true,
		":7946": false, "0.0.0.0:7946": false, "10.0.0.7:7946": false, "node-a:7946": false, "[::]:7946": false,
	} {
		if got := loopbackOnly(addr); got != want {
			t.Errorf("loopbackOnly(%q) = %v; want %v", addr, got, want)
		}
	}
}

func TestPasswordWithoutGossipKey(t *testing.T) {
	for _, tc := range []struct {
		password, gossip string
		key              []byte
		want             bool
	}{
		{"pw", "0.0.0.0:7946", nil, true},
		{"pw", "10.0.0.7:7946", nil, true},
		{"pw", "0.0.0.0:7946", make([]byte, 32), false},
		{"pw", "127.0.0.1:7946", nil, false},
		{"pw", "", nil, false},
		{"", "0.0.0.0:7946", nil, false},
	} {
		cfg := Config{NativePassword: tc.password, GossipAddr: tc.gossip, GossipKey: tc.key}
		if got := passwordWithoutGossipKey(&cfg); got != tc.want {
			t.Errorf("password %q, gossip %q, key %d bytes: %v; want %v", tc.password, tc.gossip, len(tc.key), got, tc.want)
		}
	}
}

func TestConfig_passwordOptionalNeedsAPassword(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NativePasswordOptional = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "native-password-optional") {
		t.Fatalf("Validate = %v; want an error naming native-password-optional", err)
	}
}

// A member started without the cluster's password is refused by the
// others, and says so in its log rather than only failing its transfers.
func TestCluster_memberWithoutThePassword_isRefusedAndSaysSo(t *testing.T) {
	first := startTestNode(t, func(cfg *Config) { cfg.Name, cfg.NativePassword = "node-1", testPassword })
	errs := &warnCounter{prefix: "member refused this node's --native-password"}
	cfg := first.cfg // its listeners' addresses are ":0"
	cfg.Name, cfg.NativePassword, cfg.Join, cfg.Logger = "node-2", "", []string{first.GossipAddr()}, slog.New(errs)
	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() }) // before first's, whose leak check covers both
	deadline := time.Now().Add(30 * time.Second)
	for len(second.Members()) != 2 || errs.n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node-2 sees members %v and logged %d refusals of its hello; want 2 members and a refusal", second.Members(), errs.n.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := value(t, first.metrics.authFailures); got == 0 {
		t.Error("node-1 counted no refused hello")
	}
	if ok, _ := second.Ready(); ok {
		t.Error("node-2 is ready though it could fetch none of its partitions")
	}
}

// Before its hello a connection's frames are limited to helloMaxFrame, so
// that one that has given no password cannot make the node buffer a frame
// of up to the frame limit (1 MiB and more) for it; the longest password
// a node accepts still fits, and after the hello the frame limit applies.
func TestNative_helloFrameIsSmall(t *testing.T) {
	longest := strings.Repeat("p", maxPasswordLen)
	n := startTestNode(t, func(cfg *Config) { cfg.NativePassword = longest })

	// A header declaring 1 MiB is refused at once, not read (the hello's
	// deadline, 10 s, would close the connection without a word).
	rc := dialRaw(t, n)
	rc.sendRaw(append(binary.BigEndian.AppendUint32(nil, 1<<20), make([]byte, 100)...))
	resp := rc.recv()
	expectCode(t, "a 1 MiB frame before the hello", resp, protocol.CodeTooLarge)
	if !strings.Contains(resp.Msg, "before the hello") || !strings.Contains(resp.Msg, fmt.Sprint(helloMaxFrame)) {
		t.Errorf("message %q does not say the hello's limit", resp.Msg)
	}
	rc.expectClosed()

	// A hello carrying the longest member name and password is let in, and
	// what follows it may be as large as the frame limit allows.
	rc = dialRaw(t, n)
	hello := &protocol.Request{ID: 1, Op: protocol.OpHello, Version: protocol.Version, Key: strings.Repeat("n", maxNameLen), Value: []byte(longest)}
	expectCode(t, "the longest hello", rc.do(hello), protocol.CodeOK)
	expectCode(t, "a 900 KB SET after it", rc.do(&protocol.Request{ID: 2, Op: protocol.OpSet, Key: "k", Value: make([]byte, 900_000), TTL: 60_000}), protocol.CodeOK)
}

func TestConfig_nameAndPasswordLengths(t *testing.T) {
	for _, tc := range []struct {
		name, password, want string
	}{
		{strings.Repeat("n", maxNameLen), strings.Repeat("p", maxPasswordLen), ""},
		{strings.Repeat("n", maxNameLen+1), "", "name: 256 bytes; must be at most 255"},
		{"n1", strings.Repeat("p", maxPasswordLen+1), "native-password: 4097 bytes; must be at most 4096"},
	} {
		cfg := DefaultConfig()
		cfg.Name, cfg.NativePassword = tc.name, tc.password
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("name of %d bytes, password of %d: %v", len(tc.name), len(tc.password), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("name of %d bytes, password of %d: got %v; want %q", len(tc.name), len(tc.password), err, tc.want)
		}
	}
}
