package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/internal/testtool"
)

// A target is one kind of server the compatibility suites run against. start
// launches it (one process or several), registers its shutdown with
// t.Cleanup and returns the RESP address of every node; a client may dial
// any of them.
//
// To run every suite against another deployment (a 3-node cluster, say),
// append a target to compatTargets: the suites need no change.
type target struct {
	name  string
	start func(t *testing.T) []string
}

// compatTargets lists the servers every suite runs against, reference first:
// a test that fails on redis-server is a wrong test, not a Cloakroom bug.
var compatTargets = []target{
	{name: "redis-server", start: func(t *testing.T) []string { return startRedisServer(t) }},
	{name: "cloakroomd", start: func(t *testing.T) []string { return []string{startCloakroomd(t)} }},
	{name: "cloakroomd-3", start: startCloakroomdCluster},
}

// startCloakroomdCluster starts three cloakroomd processes with two copies
// of every session and returns their RESP addresses: suites dial the first
// and inspect through the last, so requests cross nodes.
func startCloakroomdCluster(t *testing.T) []string {
	t.Helper()
	c := startProcCluster(t, 3, "--replicas", "2", "--gossip-preset", "local")
	var addrs []string
	for _, p := range c.procs {
		addrs = append(addrs, p.resp)
	}
	return addrs
}

// externalTarget is a server someone else runs (a debugger, a proxy that
// records commands): COMPAT_ADDRS=host:port[,host:port...] adds it.
func externalTarget() (target, bool) {
	v := os.Getenv("COMPAT_ADDRS")
	if v == "" {
		return target{}, false
	}
	return target{name: "external", start: func(*testing.T) []string { return strings.Split(v, ",") }}, true
}

// forEachTarget runs fn once per target, as a subtest named after it, with a
// fresh server started for that subtest.
func forEachTarget(t *testing.T, fn func(t *testing.T, addrs []string)) {
	t.Helper()
	targets := compatTargets
	if ext, ok := externalTarget(); ok {
		targets = append(slices.Clip(targets), ext)
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			fn(t, tg.start(t))
		})
	}
}

const (
	// startupTimeout bounds how long a server may take to accept connections.
	startupTimeout = 15 * time.Second
	// listenerGrace bounds how long a server that already accepts on one
	// listener may take to accept on the next.
	listenerGrace = 3 * time.Second
)

// handedOut remembers every port freeAddr and stableAddr returned in this
// test binary: each probe releases its port, so without it two addresses of
// one cluster (a node's native and RESP ports, say) could share a port, and
// the second bind would fail with "address already in use".
var handedOut struct {
	sync.Mutex
	ports map[int]bool // guarded by the mutex
}

// claimPort reports whether port was never handed out before, and marks it.
func claimPort(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	handedOut.ports[port] = true
	return true
}

// freeAddr returns a loopback address with a port the kernel just handed out
// and released, for a child process to bind; never one returned before.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		ln.Close()
		if claimPort(addr.Port) {
			return addr.String()
		}
	}
	t.Fatal("the kernel keeps handing out ports this test binary already used")
	return ""
}

// stableAddr returns a loopback address whose port is free for TCP and UDP
// now, was never returned before, and lies below the kernel's ephemeral
// range (32768-60999 on Linux), so that a node restarted on it does not find
// it taken by some process's outgoing connection, as a port from freeAddr
// can be once its node exits.
func stableAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		if claimPort(port) {
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// startRedisServer starts a reference redis-server with no persistence,
// and extra arguments if any. When the binary is missing it skips, unless
// CI is set, where it fails.
func startRedisServer(t *testing.T, extra ...string) []string {
	t.Helper()
	bin := testtool.Look(t, "redis-server", "redis-server")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startProcess(t, []string{addr}, bin, append([]string{
		"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no"}, extra...)...)
	return []string{addr}
}

// startCloakroomd builds cloakroomd, starts one node on free loopback ports
// and returns its RESP address.
func startCloakroomd(t *testing.T) string {
	t.Helper()
	bin := buildCloakroomd(t)
	native, resp := freeAddr(t), freeAddr(t)
	startProcess(t, []string{native, resp}, bin,
		"--name", "compat-"+strconv.Itoa(os.Getpid()),
		"--addr", native,
		"--resp-addr", resp,
		"--http-addr", "",
		"--gossip-addr", freeAddr(t),
		"--allow-flush")
	return resp
}

// buildCloakroomd compiles cmd/cloakroomd into the test's temporary folder.
// The build cache makes every build after the first a link step.
// CLOAKROOMD=path runs that binary instead (a build of another revision).
func buildCloakroomd(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CLOAKROOMD"); bin != "" {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "cloakroomd")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/cloakroom/cloakroom/cmd/cloakroomd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cloakroomd: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProcess runs bin with args, waits until every address in addrs
// accepts TCP connections (the first within startupTimeout, each later one
// within listenerGrace, since by then the process is up) and stops the
// process when the test ends (SIGTERM, then SIGKILL). The process's output is
// logged if the test fails.
func startProcess(t *testing.T, addrs []string, bin string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	name := filepath.Base(bin)
	t.Cleanup(func() {
		if !stopProcess(cmd, exited) {
			t.Logf("%s did not stop within %v of SIGTERM; killed it", name, stopGrace)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	timeout := startupTimeout
	for _, addr := range addrs {
		err := waitForListener(addr, exited, timeout)
		if errors.Is(err, errExited) { // waitErr is final once exited is closed
			t.Fatalf("%s exited before accepting on %s (%v):\n%s", name, addr, waitErr, out.String())
		}
		if err != nil {
			t.Fatalf("%s is not listening on %s: %v", name, addr, err)
		}
		timeout = listenerGrace
	}
}

var errExited = errors.New("process exited")

// waitForListener polls addr until a TCP connection succeeds, the process
// exits, or timeout passes.
func waitForListener(addr string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("nothing accepted within %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// stopGrace is how long a process may take to stop after SIGTERM.
const stopGrace = 5 * time.Second

// stopProcess asks the process to stop and kills it if it has not exited
// within stopGrace; it returns once the process is gone, and false if it had
// to be killed.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}) bool {
	select {
	case <-exited:
		return true
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return true
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-exited
		return false
	}
}

// TestAddrs_neverRepeat: a cluster takes a dozen addresses, each probed and
// released before its node binds it; two alike make a node fail to start.
func TestAddrs_neverRepeat(t *testing.T) {
	seen := make(map[string]bool)
	for i := range 600 {
		addr := freeAddr(t)
		if i%2 == 1 {
			addr = stableAddr(t)
		}
		if seen[addr] {
			t.Fatalf("address %s handed out twice (after %d)", addr, i)
		}
		seen[addr] = true
	}
}
