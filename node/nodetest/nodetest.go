// Package nodetest starts Cloakroom clusters inside a test binary: several
// nodes on loopback ports picked by the kernel, gossiping with fast failure
// detection, which a test can stop, crash and restart.
//
//	c := nodetest.Start(t, 3)
//	cl, _ := client.New(client.Config{Addrs: c.Addrs()[:1]})
//	c.Crash(1)
//	c.WaitAgreed(t, 2)
package nodetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"go.uber.org/goleak"
)

// Cluster is a set of in-process nodes.
type Cluster struct {
	t     testing.TB
	nodes []*node.Node
	cfgs  []node.Config
}

// Option changes every node's configuration before it starts.
type Option func(i int, cfg *node.Config)

// Start starts n nodes named node-1 … node-n that join the first one, and
// waits until they all agree on one partition table. Every node is closed
// when the test ends.
func Start(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	t.Cleanup(c.closeAll)
	for i := range n {
		cfg := node.DefaultConfig()
		cfg.Name = fmt.Sprintf("node-%d", i+1)
		cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "127.0.0.1:0", "127.0.0.1:0"
		cfg.GossipPreset = "local"
		cfg.ExpiryInterval = 10 * time.Millisecond
		cfg.Logger = testLogger()
		if i > 0 {
			cfg.Join = []string{c.nodes[0].GossipAddr()}
		}
		for _, o := range opts {
			o(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		c.nodes = append(c.nodes, nd)
	}
	c.WaitAgreed(t, n)
	c.WaitReady(t)
	return c
}

func testLogger() *slog.Logger {
	if os.Getenv("CLOAKROOM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Node returns node i (0-based); nil if it is stopped.
func (c *Cluster) Node(i int) *node.Node { return c.nodes[i] }

// Len returns how many nodes the cluster was started with.
func (c *Cluster) Len() int { return len(c.nodes) }

// Addrs returns the native addresses of the running nodes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n.Addr())
		}
	}
	return out
}

// Running returns the running nodes.
func (c *Cluster) Running() []*node.Node {
	var out []*node.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Crash stops node i abruptly: it does not leave the gossip, so the others
// notice only by failure detection.
func (c *Cluster) Crash(i int) {
	if n := c.nodes[i]; n != nil {
		n.Close()
		c.nodes[i] = nil
	}
}

// Stop shuts node i down gracefully.
func (c *Cluster) Stop(i int) {
	if n := c.nodes[i]; n != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx)
		c.nodes[i] = nil
	}
}

// Restart starts node i again under its old name, empty, on new ports,
// joining any running node.
func (c *Cluster) Restart(i int) *node.Node {
	c.t.Helper()
	cfg := c.cfgs[i]
	cfg.Join = nil
	for _, n := range c.Running() {
		cfg.Join = append(cfg.Join, n.GossipAddr())
	}
	nd, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", cfg.Name, err)
	}
	c.nodes[i] = nd
	return nd
}

// WaitAgreed waits until the running nodes count members running nodes and
// report the same table version.
func (c *Cluster) WaitAgreed(t testing.TB, members int) {
	t.Helper()
	WaitFor(t, 20*time.Second, func() error {
		running := c.Running()
		for _, n := range running {
			if got := len(n.Members()); got != members {
				return fmt.Errorf("%s sees %d members; want %d", n.Name(), got, members)
			}
			first := running[0]
			if n.TableVersion() != first.TableVersion() || !slices.Equal(n.Members(), first.Members()) {
				return fmt.Errorf("%s has table %d of %v, %s has %d of %v", first.Name(), first.TableVersion(), first.Members(), n.Name(), n.TableVersion(), n.Members())
			}
		}
		return nil
	})
}

// WaitReady waits until every running node is ready (holds all its
// partitions) and sees nothing under-replicated (transfers done).
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		for _, n := range c.Running() {
			if ok, why := n.Ready(); !ok {
				return fmt.Errorf("%s not ready: %s", n.Name(), why)
			}
			if u := n.Status().UnderReplicated; u > 0 {
				return fmt.Errorf("%s sees %d partitions under-replicated", n.Name(), u)
			}
		}
		return nil
	})
}

// WaitFor polls cond until it returns nil or timeout passes, then fails t
// with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) closeAll() {
	for i, n := range c.nodes {
		if n != nil {
			n.Close()
			c.nodes[i] = nil
		}
	}
}

// LeakOptions are goleak options for tests that run nodes: memberlist's
// probe goroutine, and the one that answers another member's indirect ping
// with a nack, may still be waiting out their timeout (half a second)
// after Shutdown returns; they exit by themselves.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).handleIndirectPing.func2"),
	}
}

// StartNode starts one node, not clustered, with every listener on a
// kernel-chosen loopback port except RESP and HTTP (off), after mutate has
// adjusted its configuration. It is closed when the test ends.
func StartNode(t testing.TB, mutate ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "test"
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "", "127.0.0.1:0"
	cfg.Logger = testLogger()
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// DirectClient returns a client that sends every call to the node at addr
// (client.Config.Direct), as nodes call each other, closed when the test
// ends.
func DirectClient(t testing.TB, addr string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Addrs: []string{addr}, Direct: true})
	if err != nil {
		t.Fatalf("direct client of %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
