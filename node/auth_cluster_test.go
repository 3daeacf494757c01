package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
)

const clusterPassword = "s3ssions-are-not-for-sharing"

func withPassword(_ int, cfg *node.Config) { cfg.NativePassword = clusterPassword }

// A cluster whose members share a password replicates and moves
// partitions as one without it, and its clients need it.
func TestCluster_nativePassword_membersAndClientsAuthenticate(t *testing.T) {
	c := nodetest.Start(t, 3, withPassword) // Start waits until every partition has its copies
	ctx := ctxFor(t)
	cl, err := client.New(client.Config{Addrs: c.Addrs()[:1], Password: clusterPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 300 {
		if err := cl.Set(ctx, fmt.Sprint("s", i), []byte("coat"), time.Hour); err != nil {
			t.Fatalf("set s%d: %v", i, err)
		}
	}
	for i := range 300 {
		if k := copies(c, fmt.Sprint("s", i)); k != 2 {
			t.Fatalf("s%d has %d copies; want 2", i, k)
		}
	}

	for name, password := range map[string]string{"no password": "", "a wrong password": "hunter2"} {
		before := counter(t, c.Node(0), "cloakroom_native_auth_failures_total")
		bad, err := client.New(client.Config{Addrs: c.Addrs()[:1], Password: password, RetryTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Get(ctx, "s1")
		if !errors.Is(err, client.ErrAuth) || !strings.Contains(err.Error(), "--native-password") {
			t.Errorf("%s: get = %v; want ErrAuth naming --native-password", name, err)
		}
		// A client with no table yet asks its one seed once. (The retry
		// loops are tested below, where the table comes from a node that
		// lets the client in.)
		if got := counter(t, c.Node(0), "cloakroom_native_auth_failures_total") - before; got != 1 {
			t.Errorf("%s: one call made %v refused hellos; want 1", name, got)
		}
		// The refusal is remembered for a second: calls on after it do not
		// each open a connection to be refused.
		start := time.Now()
		for range 500 {
			if _, err := bad.Get(ctx, "s1"); !errors.Is(err, client.ErrAuth) {
				t.Fatalf("%s: get = %v; want ErrAuth", name, err)
			}
		}
		most := 2 + time.Since(start).Seconds() // one a second, and the first
		if got := counter(t, c.Node(0), "cloakroom_native_auth_failures_total") - before; got > most {
			t.Errorf("%s: 501 calls in %v made %v refused hellos; want at most %.0f", name, time.Since(start), got, most)
		}
		bad.Close()
	}
}

// Turning a password on, or changing it, in a running cluster (README,
// "Securing a cluster"): a member restarted with the new one and
// --native-password-optional still takes the others' replication, and
// they take its.
func TestCluster_nativePasswordOptional_letsTheOthersIn(t *testing.T) {
	t.Run("turning it on", func(t *testing.T) {
		testOptional(t, false, func(cfg *node.Config) {}) // the other requires none
	})
	t.Run("changing it", func(t *testing.T) {
		testOptional(t, true, func(cfg *node.Config) { cfg.NativePassword, cfg.NativePasswordOptional = "the old one", true })
	})
}

// testOptional runs a cluster of node-1, restarted with the new password
// and --native-password-optional, and node-2, set by other; otherChecks
// says whether node-2 checks passwords too (and so counts node-1's).
func testOptional(t *testing.T, otherChecks bool, other func(*node.Config)) {
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.NativePassword, cfg.NativePasswordOptional = clusterPassword, true
		} else {
			other(cfg)
		}
	})
	ctx := ctxFor(t)
	for j := range c.Len() { // through each node, so that each is some keys' primary
		cl := nodetest.DirectClient(t, c.Node(j).Addr())
		for i := range 100 {
			if err := cl.Set(ctx, fmt.Sprint("s", j, "-", i), []byte("coat"), time.Hour); err != nil {
				t.Fatalf("set through %s: %v", c.Node(j).Name(), err)
			}
		}
	}
	for j := range c.Len() {
		for i := range 100 {
			if k := copies(c, fmt.Sprint("s", j, "-", i)); k != 2 {
				t.Fatalf("s%d-%d has %d copies; want 2", j, i, k)
			}
		}
	}
	checks := c.Running()
	if !otherChecks {
		checks = checks[:1]
	}
	for _, nd := range checks {
		if got := counter(t, nd, "cloakroom_native_auth_failures_total"); got == 0 {
			t.Errorf("%s let the other's connections in without counting them", nd.Name())
		}
	}
}

// A client left without the password while the cluster moves to one: the
// nodes already requiring it refuse its calls at once, not after retrying
// for RetryTimeout, and the nodes still letting it in serve it.
func TestCluster_clientWithoutThePassword_failsAtOnceWhereItIsRequired(t *testing.T) {
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.NativePassword, cfg.NativePasswordOptional = clusterPassword, i == 0
	})
	ctx := ctxFor(t)
	cl, err := client.New(client.Config{Addrs: c.Addrs()[:1], RetryTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	served, refused := 0, 0
	for i := range 40 {
		before := counter(t, c.Node(1), "cloakroom_native_auth_failures_total")
		err := cl.Set(ctx, fmt.Sprint("s", i), []byte("coat"), time.Hour)
		switch {
		case err == nil:
			served++
		case errors.Is(err, client.ErrAuth):
			refused++
			if got := counter(t, c.Node(1), "cloakroom_native_auth_failures_total") - before; got > 1 {
				t.Fatalf("set s%d made %v refused hellos; want at most 1 (not tried again)", i, got)
			}
		default:
			t.Fatalf("set s%d: %v; want nil or ErrAuth", i, err)
		}
	}
	if served == 0 || refused == 0 {
		t.Fatalf("%d sets served, %d refused; want some of each (keys of either node)", served, refused)
	}
	// A Delete of keys on both nodes is split by node; the part refused
	// fails the call at once too.
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprint("s", i)
	}
	before := counter(t, c.Node(1), "cloakroom_native_auth_failures_total")
	if _, err := cl.Delete(ctx, keys...); !errors.Is(err, client.ErrAuth) {
		t.Fatalf("delete of keys on both nodes = %v; want ErrAuth", err)
	}
	if got := counter(t, c.Node(1), "cloakroom_native_auth_failures_total") - before; got > 1 {
		t.Fatalf("a delete made %v refused hellos; want at most 1 (not tried again)", got)
	}
}
