package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// A netLab is a small network on this machine for partition tests. Each
// node runs in its own network namespace with one leg ("cluster0") on a
// bridge that lives in a switch namespace of its own, so the root
// namespace's firewall (bridged traffic may pass its FORWARD chain) plays
// no part. The test process reaches the bridge through one veth ("host
// leg") whose root end has the subnet's .1 address. Everything is private
// to namespaces the lab creates; nothing is sent anywhere else.
//
// A node may also get a client link: a second veth straight from the root
// namespace to the node, on a subnet of its own. It stands for an
// application on that node's side of a split, so a test can talk to a node
// whose bridge leg is cut.
type netLab struct {
	t     *testing.T
	nodes []*nsNode
}

// nsNode is one cloakroomd process in its namespace.
type nsNode struct {
	name     string // cloakroomd --name
	ns       string // network namespace
	ip       string // address on the bridge
	clientIP string // address on the client link; "" without one
	cmd      *exec.Cmd
	exited   chan struct{}
	out      *syncBuffer
	direct   *client.Client // one-node client over reach()
}

const (
	labPrefix     = "crkpt-" // every namespace and root link of the lab starts with it
	labSwitch     = labPrefix + "sw"
	labHostLeg    = labPrefix + "h"
	labSubnet     = "10.213.41." // bridge: host .1, node i .10+i
	labClientNet  = "10.213.%d." // client link of node n<k>: 50+k; root .1, node .2
	labCutChain   = "CLOAKROOM-CUT"
	labNativePort = "7400"
	labHTTPPort   = "7480"
	labGossipPort = "7946"
)

func (n *nsNode) native() string { return net.JoinHostPort(n.ip, labNativePort) }

// reach is the host the test process uses for status and probes: the client
// link when the node has one (it survives a cut), else the bridge address.
func (n *nsNode) reach() string {
	if n.clientIP != "" {
		return n.clientIP
	}
	return n.ip
}

// labUnavailable skips the test, or fails it under CI, where the machine
// must provide namespaces and iptables (.ci/run installs iptables).
func labUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("network namespace test cannot run under CI: %s", msg)
	}
	t.Skipf("network namespace test skipped: %s (needs root, ip netns and iptables: apt-get install -y iptables)", msg)
}

// newNetLab checks what the lab needs, takes the machine-wide lab lock,
// clears leftovers of an earlier run that crashed, and builds the switch
// and n node namespaces. Everything is torn down when the test ends.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		labUnavailable(t, "not root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			labUnavailable(t, "%s not found", tool)
		}
	}
	lockLab(t)
	sweepLab()
	lab := &netLab{t: t}
	t.Cleanup(lab.teardown)
	if err := labRun("ip", "netns", "add", labSwitch); err != nil {
		labUnavailable(t, "cannot create a network namespace: %v", err)
	}
	if err := labRun("ip", "netns", "exec", labSwitch, "iptables", "-w", "-L", "-n"); err != nil {
		labUnavailable(t, "iptables does not work in a namespace: %v", err)
	}
	if out, _ := exec.Command("ip", "-o", "addr", "show", "to", labSubnet+"0/24").Output(); len(out) > 0 {
		t.Fatalf("subnet %s0/24 is already in use on this machine:\n%s", labSubnet, out)
	}
	lab.must("ip", "-n", labSwitch, "link", "add", "br0", "type", "bridge")
	lab.must("ip", "-n", labSwitch, "link", "set", "br0", "up")
	lab.must("ip", "link", "add", labHostLeg, "type", "veth", "peer", "name", "host", "netns", labSwitch)
	lab.must("ip", "-n", labSwitch, "link", "set", "host", "master", "br0", "up")
	lab.must("ip", "addr", "add", labSubnet+"1/24", "dev", labHostLeg)
	lab.must("ip", "link", "set", labHostLeg, "up")
	for i := 1; i <= n; i++ {
		nd := &nsNode{name: fmt.Sprintf("n%d", i), ns: fmt.Sprintf("%sn%d", labPrefix, i), ip: labSubnet + strconv.Itoa(10+i)}
		leg := fmt.Sprintf("n%d", i)
		lab.must("ip", "netns", "add", nd.ns)
		lab.must("ip", "-n", nd.ns, "link", "set", "lo", "up")
		lab.must("ip", "-n", labSwitch, "link", "add", leg, "type", "veth", "peer", "name", "cluster0", "netns", nd.ns)
		lab.must("ip", "-n", labSwitch, "link", "set", leg, "master", "br0", "up")
		lab.must("ip", "-n", nd.ns, "addr", "add", nd.ip+"/24", "dev", "cluster0")
		lab.must("ip", "-n", nd.ns, "link", "set", "cluster0", "up")
		lab.nodes = append(lab.nodes, nd)
	}
	return lab
}

// addClientLink gives node i (from 0) a client link; see netLab.
func (l *netLab) addClientLink(i int) {
	l.t.Helper()
	nd := l.nodes[i]
	subnet := fmt.Sprintf(labClientNet, 51+i)
	root := fmt.Sprintf("%sc%d", labPrefix, i+1)
	l.must("ip", "link", "add", root, "type", "veth", "peer", "name", "client0", "netns", nd.ns)
	l.must("ip", "addr", "add", subnet+"1/24", "dev", root)
	l.must("ip", "link", "set", root, "up")
	l.must("ip", "-n", nd.ns, "addr", "add", subnet+"2/24", "dev", "client0")
	l.must("ip", "-n", nd.ns, "link", "set", "client0", "up")
	nd.clientIP = subnet + "2"
}

// start runs cloakroomd in every namespace, each joining the first node,
// and waits until each accepts connections.
func (l *netLab) start(bin string, extra ...string) {
	l.t.Helper()
	for i, nd := range l.nodes {
		args := []string{"netns", "exec", nd.ns, bin,
			"--name", nd.name,
			"--addr", "0.0.0.0:" + labNativePort, // bridge and client link
			"--resp-addr", "",
			"--http-addr", "0.0.0.0:" + labHTTPPort,
			"--gossip-addr", net.JoinHostPort(nd.ip, labGossipPort),
			"--advertise", nd.ip}
		if i > 0 {
			args = append(args, "--join", net.JoinHostPort(l.nodes[0].ip, labGossipPort))
		}
		nd.out = &syncBuffer{}
		cmd := exec.Command("ip", append(args, extra...)...) // ip netns exec execs bin in place
		cmd.Stdout, cmd.Stderr = nd.out, nd.out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphans if the test dies
		if err := cmd.Start(); err != nil {
			l.t.Fatalf("start %s: %v", nd.name, err)
		}
		nd.cmd, nd.exited = cmd, make(chan struct{})
		go func(exited chan struct{}) {
			_ = cmd.Wait()
			close(exited)
		}(nd.exited)
		for _, port := range []string{labNativePort, labHTTPPort} {
			if err := waitForListener(net.JoinHostPort(nd.reach(), port), nd.exited, startupTimeout); err != nil {
				l.t.Fatalf("%s on port %s: %v\n%s", nd.name, port, err, nd.out.String())
			}
		}
		c, err := client.New(client.Config{Addrs: []string{net.JoinHostPort(nd.reach(), labNativePort)}, Direct: true, DialTimeout: time.Second})
		if err != nil {
			l.t.Fatal(err)
		}
		nd.direct = c
	}
}

// isolate cuts node i (from 0) off the bridge: its own namespace drops
// every packet in and out of its bridge leg. Its client link stays up.
func (l *netLab) isolate(i int) {
	l.t.Helper()
	ns := l.nodes[i].ns
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-N", labCutChain)
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-A", labCutChain, "-j", "DROP")
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-I", "INPUT", "-i", "cluster0", "-j", labCutChain)
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-I", "OUTPUT", "-o", "cluster0", "-j", labCutChain)
}

// heal undoes isolate.
func (l *netLab) heal(i int) {
	l.t.Helper()
	ns := l.nodes[i].ns
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-D", "INPUT", "-i", "cluster0", "-j", labCutChain)
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-D", "OUTPUT", "-o", "cluster0", "-j", labCutChain)
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-F", labCutChain)
	l.must("ip", "netns", "exec", ns, "iptables", "-w", "-X", labCutChain)
}

// status asks nd for its own account of the cluster.
func (nd *nsNode) status(ctx context.Context) (*protocol.NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := nd.direct.Do(ctx, &protocol.Request{Op: protocol.OpStatus})
	if err != nil {
		return nil, err
	}
	return protocol.DecodeNodeStatus(r.Value)
}

// labAgree reports nil when every node of set counts exactly the members of
// set, all on the same table version, with nothing under-replicated, and
// answers /readyz with 200.
func labAgree(ctx context.Context, set []*nsNode) error {
	var version uint64
	hc := &http.Client{Timeout: 2 * time.Second}
	for i, nd := range set {
		s, err := nd.status(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("%s: status: %v", nd.name, err)
		case s.Members != len(set):
			return fmt.Errorf("%s sees %d members; want %d", nd.name, s.Members, len(set))
		case !s.Ready:
			return fmt.Errorf("%s not ready: %s", nd.name, s.NotReady)
		case s.UnderReplicated > 0:
			return fmt.Errorf("%s: %d partitions under-replicated", nd.name, s.UnderReplicated)
		case i > 0 && s.TableVersion != version:
			return fmt.Errorf("%s has table %d; %s has %d", nd.name, s.TableVersion, set[0].name, version)
		}
		version = s.TableVersion
		resp, err := hc.Get("http://" + net.JoinHostPort(nd.reach(), labHTTPPort) + "/readyz")
		if err != nil {
			return fmt.Errorf("%s: /readyz: %v", nd.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: /readyz %d", nd.name, resp.StatusCode)
		}
	}
	return nil
}

// labWait polls cond until it returns nil and returns how long that took;
// it fails the test when timeout passes first, or ctx's deadline.
func labWait(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	start := time.Now()
	eventuallyWithin(t, timeout, func() error {
		if err := cond(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return time.Since(start)
}

func (l *netLab) must(args ...string) {
	l.t.Helper()
	if err := labRun(args...); err != nil {
		l.t.Fatal(err)
	}
}

// labRun runs a command and returns its output with any error.
func labRun(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// teardown kills the nodes, shows their logs if the test failed, and
// removes every namespace and link.
func (l *netLab) teardown() {
	for _, nd := range l.nodes {
		if nd.direct != nil {
			nd.direct.Close()
		}
		if nd.cmd == nil {
			continue
		}
		_ = nd.cmd.Process.Kill()
		<-nd.exited
		if l.t.Failed() {
			l.t.Logf("%s output:\n%s", nd.name, lastLines(nd.out.String(), 60))
		}
	}
	sweepLab()
}

// sweepLab removes whatever the lab may have left: processes inside its
// namespaces (by pid), the namespaces (with their links and iptables
// rules) and root links. Best effort: it runs before and after each test,
// under the lab lock, so nothing it finds belongs to a live run.
func sweepLab() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], labPrefix) {
			continue
		}
		pids, _ := exec.Command("ip", "netns", "pids", f[0]).Output()
		for _, p := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = labRun("ip", "netns", "del", f[0])
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(links), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, labPrefix) {
			_ = labRun("ip", "link", "del", name)
		}
	}
}

// lockLab takes a machine-wide lock, so that two runs (the plain and the
// -race run, or two engineers) never share the subnet or sweep each
// other's namespaces. The kernel drops it if the process dies.
func lockLab(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "cloakroom-netlab.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("lab lock: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	eventuallyWithin(t, 5*time.Minute, func() error {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("another run holds %s", f.Name())
		}
		return err
	})
}

// ackedMore returns a condition that holds once count has grown by n from now.
func ackedMore(count func() int64, n int64) func() error {
	from := count()
	return func() error {
		if got := count() - from; got < n {
			return fmt.Errorf("%d of %d more acknowledged", got, n)
		}
		return nil
	}
}

// labMembersAre reports nil when every node of set counts n members.
func labMembersAre(ctx context.Context, set []*nsNode, n int) error {
	for _, nd := range set {
		s, err := nd.status(ctx)
		if err != nil {
			return fmt.Errorf("%s: status: %v", nd.name, err)
		}
		if s.Members != n {
			return fmt.Errorf("%s sees %d members; want %d", nd.name, s.Members, n)
		}
	}
	return nil
}

// splitAckWithin retries op, which leaves o behind, until it is acknowledged or
// timeout passes, recording every attempt in the ledger.
func splitAckWithin(ctx context.Context, l *splitLedger, key string, o splitOutcome, timeout time.Duration, op func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		octx, cancel := context.WithTimeout(ctx, splitOpTimeout)
		err := op(octx)
		cancel()
		l.record(key, o, err)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select { // a call that fails at once is not retried in a busy loop
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logClientStacks logs, when the test has failed, the goroutines of this
// process that are inside the client package (those waiting on a mutex
// only counted): a call that hangs shows where it waits.
func logClientStacks(t *testing.T) {
	if !t.Failed() {
		return
	}
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var stacks []string
	waiting := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case !strings.Contains(g, "cloakroom/client.(*Client)"):
		case strings.Contains(g, "[sync.Mutex.Lock"):
			waiting++
		case len(stacks) < 12:
			stacks = append(stacks, g)
		}
	}
	t.Logf("goroutines in the client package: %d waiting on a mutex, and (up to 12):\n%s", waiting, strings.Join(stacks, "\n\n"))
}
