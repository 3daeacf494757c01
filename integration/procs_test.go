package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
)

// proc is one cloakroomd process of a cluster that a test can kill and
// restart on the same addresses, as an operator would.
type proc struct {
	name                       string
	native, resp, http, gossip string
	args                       []string
	cmd                        *exec.Cmd
	exited                     chan struct{}
	out                        *syncBuffer
	paused                     bool // by pause: alive, but answers nothing
}

// procCluster is a cluster of cloakroomd processes on loopback.
type procCluster struct {
	t     *testing.T
	bin   string
	procs []*proc
	extra []string // flags every node gets, for nodes added later
	// password is the --native-password the test's own clients give
	// (direct), for a test that sets one on its nodes.
	password string
}

// direct returns a client of the node at addr alone (client.Config.Direct),
// giving c.password, closed when the test ends.
func (c *procCluster) direct(addr string) *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addrs: []string{addr}, Direct: true, Password: c.password})
	if err != nil {
		c.t.Fatalf("direct client of %s: %v", addr, err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// startProcCluster starts n cloakroomd processes that join the first one,
// with extra flags for every node, and waits until each is ready.
func startProcCluster(t *testing.T, n int, extra ...string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: buildCloakroomd(t), extra: extra}
	t.Cleanup(c.stopAll)
	for i := range n {
		p := &proc{name: fmt.Sprintf("n%d", i+1)}
		p.readdress(t)
		if i > 0 {
			p.args = append(p.args, "--join", c.procs[0].gossip)
		}
		p.args = append(p.args, extra...)
		c.procs = append(c.procs, p)
		c.start(p)
	}
	c.waitReady()
	return c
}

// readdress gives p new loopback addresses, and the flags for its name and
// them.
func (p *proc) readdress(t *testing.T) {
	p.native, p.resp, p.http, p.gossip = stableAddr(t), stableAddr(t), stableAddr(t), stableAddr(t)
	p.args = []string{"--name", p.name, "--addr", p.native, "--resp-addr", p.resp,
		"--http-addr", p.http, "--gossip-addr", p.gossip, "--allow-flush"}
}

func (c *procCluster) start(p *proc) {
	c.t.Helper()
	p.out = &syncBuffer{}
	p.cmd = exec.Command(c.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", p.name, err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	for _, a := range []string{p.native, p.http} {
		if err := waitForListener(a, p.exited, startupTimeout); err != nil {
			c.t.Fatalf("%s on %s: %v\n%s", p.name, a, err, p.out.String())
		}
	}
}

// kill sends SIGKILL to node i and waits for it to die.
func (c *procCluster) kill(i int) {
	p := c.procs[i]
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// pause sends SIGSTOP to node i: it keeps its sockets open and answers
// nothing, as a node stuck in a long pause or cut off by a firewall that
// drops packets. It counts as not running until resume, which the test's
// end does if the test does not.
func (c *procCluster) pause(i int) {
	p := c.procs[i]
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	p.paused = true
	c.t.Cleanup(func() { c.resume(i) })
}

// resume sends SIGCONT to node i after pause.
func (c *procCluster) resume(i int) {
	p := c.procs[i]
	if p.paused {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.paused = false
	}
}

// stop sends SIGTERM to node i and waits until it has exited, as an
// operator's graceful shutdown would; it fails the test if the node is still
// running after timeout (and kills it then).
func (c *procCluster) stop(i int, timeout time.Duration) {
	c.t.Helper()
	p := c.procs[i]
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		c.t.Fatalf("%s still running %v after SIGTERM; killed\n%s", p.name, timeout, lastLines(p.out.String(), 40))
	}
}

// restart starts node i again, empty, on its old addresses.
func (c *procCluster) restart(i int) {
	c.t.Helper()
	c.start(c.procs[i])
}

// running returns the nodes whose process is alive and not paused.
func (c *procCluster) running() []*proc {
	var out []*proc
	for _, p := range c.procs {
		select {
		case <-p.exited:
		default:
			if !p.paused {
				out = append(out, p)
			}
		}
	}
	return out
}

func (c *procCluster) nativeAddrs() []string {
	var out []string
	for _, p := range c.running() {
		out = append(out, p.native)
	}
	return out
}

// waitReady waits until every running node answers /readyz with 200.
func (c *procCluster) waitReady() {
	c.t.Helper()
	eventuallyWithin(c.t, 60*time.Second, func() error {
		for _, p := range c.running() {
			resp, err := http.Get("http://" + p.http + "/readyz")
			if err != nil {
				return fmt.Errorf("%s: %v", p.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: /readyz %d", p.name, resp.StatusCode)
			}
		}
		return nil
	})
}

func (c *procCluster) stopAll() {
	for _, p := range c.procs {
		stopProcess(p.cmd, p.exited)
		if c.t.Failed() {
			c.t.Logf("%s output:\n%s", p.name, lastLines(p.out.String(), 40))
		}
	}
}

func lastLines(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}

// eventuallyWithin polls cond until it returns nil or timeout passes.
func eventuallyWithin(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited %v: %v", timeout, err)
		case <-tick.C:
		}
	}
}
