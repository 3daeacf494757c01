package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cloakroom/cloakroom/internal/testcert"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/ring"
)

// tlsFiles writes a certificate for 127.0.0.1 signed by ca, and its key,
// to dir; it returns their paths.
func tlsFiles(t *testing.T, ca *testcert.CA, dir, cn string) (cert, key string) {
	t.Helper()
	c, k := ca.Issue(t, cn)
	return testcert.Write(t, dir, "tls.crt", c), testcert.Write(t, dir, "tls.key", k)
}

func TestConfig_RESPTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "node")
	otherKey := testcert.Write(t, dir, "other.key", func() []byte { _, k := ca.Issue(t, "other"); return k }())
	caFile := testcert.Write(t, dir, "ca.crt", ca.PEM)
	for _, tc := range []struct {
		name    string
		mutate  func(*node.Config)
		wantErr string // "" for valid
	}{
		{"TLS only", func(c *node.Config) {
			c.RESPAddr, c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey, c.RESPTLSClientCA = "", "127.0.0.1:0", cert, key, caFile
		}, ""},
		{"cluster mode over TLS only", func(c *node.Config) {
			c.RESPAddr, c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey, c.RESPClusterMode = "", "127.0.0.1:0", cert, key, true
		}, ""},
		{"files without a listener", func(c *node.Config) { c.RESPTLSCert, c.RESPTLSKey = cert, key }, "need resp-tls-addr"},
		{"a listener without files", func(c *node.Config) { c.RESPTLSAddr = "127.0.0.1:0" }, "needs resp-tls-cert and resp-tls-key"},
		{"a missing file", func(c *node.Config) {
			c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey = "127.0.0.1:0", filepath.Join(dir, "nope.crt"), key
		}, "nope.crt: no such file"},
		{"a key of another certificate", func(c *node.Config) {
			c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey = "127.0.0.1:0", cert, otherKey
		}, "private key does not match public key"},
		{"a client CA file with no certificate", func(c *node.Config) {
			c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey, c.RESPTLSClientCA = "127.0.0.1:0", cert, key, key
		}, "no PEM certificate"},
		{"a bad port", func(c *node.Config) {
			c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey = "127.0.0.1:99999", cert, key
		}, "resp-tls-addr"},
	} {
		c := node.DefaultConfig()
		tc.mutate(&c)
		err := c.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v; want valid", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// notAfter reads when the PEM certificate in file expires, in Unix seconds.
func notAfter(t *testing.T, file string) float64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return float64(c.NotAfter.Unix())
}

// servedSerial dials addr over TLS and returns the serial number of the
// certificate the server presents.
func servedSerial(addr string, cfg *tls.Config) (string, error) {
	d := &tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	return nc.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// A node serving Redis over TLS alone: clients that trust its CA and
// present a certificate it signed work as over plain TCP; a renewed
// certificate is served without a restart.
func TestRESPTLS_onlyTLS_clientCertificates_renewal(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "node-1")
	caFile := testcert.Write(t, dir, "ca.crt", ca.PEM)
	n := nodetest.StartNode(t, func(c *node.Config) {
		c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey, c.RESPTLSClientCA = "127.0.0.1:0", cert, key, caFile
		c.HTTPAddr = "127.0.0.1:0"
	})
	const expiry = "cloakroom_resp_tls_cert_expiry_timestamp_seconds"
	if got, want := counter(t, n, expiry), notAfter(t, cert); got != want {
		t.Errorf("%s = %v; want %v, the certificate's", expiry, got, want)
	}
	if n.RESPAddr() != "" || n.RESPTLSAddr() == "" {
		t.Fatalf("RESPAddr %q, RESPTLSAddr %q; want TLS only", n.RESPAddr(), n.RESPTLSAddr())
	}
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{ca.Pair(t, "client")}}
	rdb := goredis.NewClient(&goredis.Options{Addr: n.RESPTLSAddr(), TLSConfig: cfg, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := ctxFor(t)
	if err := rdb.Set(ctx, "sess:1", "alice", time.Minute).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if v, err := rdb.Get(ctx, "sess:1").Result(); err != nil || v != "alice" {
		t.Fatalf("GET over TLS: %q, %v", v, err)
	}
	if got := counter(t, n, "cloakroom_resp_tls_clients"); got != 1 {
		t.Errorf("cloakroom_resp_tls_clients = %v with one go-redis connection; want 1", got)
	}

	anonymous := goredis.NewClient(&goredis.Options{Addr: n.RESPTLSAddr(), TLSConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}, MaxRetries: -1})
	t.Cleanup(func() { anonymous.Close() })
	if err := anonymous.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("PING without a client certificate: %v; want refused for it", err)
	}

	before, err := servedSerial(n.RESPTLSAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Renewed in place, as cert-manager does, for longer: the metric
	// follows it without a handshake, and so do the handshakes.
	c, k := ca.IssueUntil(t, "node-1", time.Now().Add(48*time.Hour))
	testcert.Write(t, dir, "tls.crt", c)
	testcert.Write(t, dir, "tls.key", k)
	nodetest.WaitFor(t, 10*time.Second, func() error {
		if got, want := counter(t, n, expiry), notAfter(t, cert); got != want {
			return fmt.Errorf("%s = %v; want %v, the renewed certificate's", expiry, got, want)
		}
		return nil
	})
	nodetest.WaitFor(t, 10*time.Second, func() error {
		after, err := servedSerial(n.RESPTLSAddr(), cfg)
		if err == nil && after == before {
			err = fmt.Errorf("still serving certificate %s", before)
		}
		return err
	})
	if v, err := rdb.Get(ctx, "sess:1").Result(); err != nil || v != "alice" {
		t.Fatalf("GET over TLS after the renewal: %q, %v", v, err)
	}
}

// In cluster mode every node gossips its TLS address, and TLS clients are
// given the TLS addresses (CLUSTER SLOTS, MOVED), plain ones the plain
// addresses: a go-redis ClusterClient over TLS routes in one hop.
func TestRESPTLS_clusterMode(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	files := make([][2]string, 3)
	for i := range files {
		files[i][0], files[i][1] = tlsFiles(t, ca, t.TempDir(), fmt.Sprint("node-", i))
	}
	c := nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		respClusterMode(i, cfg)
		cfg.RESPTLSAddr, cfg.RESPTLSCert, cfg.RESPTLSKey = "127.0.0.1:0", files[i][0], files[i][1]
	})
	ctx := ctxFor(t)
	nodes := c.Running()
	layout := waitLayout(t, ctx, nodes)
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	var plainAddrs, tlsAddrs []string
	for _, nd := range nodes {
		plainAddrs = append(plainAddrs, nd.RESPAddr())
		tlsAddrs = append(tlsAddrs, nd.RESPTLSAddr())
	}
	secure := goredis.NewClient(&goredis.Options{Addr: nodes[0].RESPTLSAddr(), TLSConfig: cfg, MaxRetries: -1})
	t.Cleanup(func() { secure.Close() })
	ranges, err := secure.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		plain := layout[r.Start]
		want := tlsAddrs[slices.Index(plainAddrs, plain)]
		if got := r.Nodes[0].Addr; got != want {
			t.Fatalf("CLUSTER SLOTS over TLS: slots %d-%d at %s; want %s (the TLS address of %s)", r.Start, r.End, got, want, plain)
		}
	}

	checkOneHop(t, ctx, nodes, &goredis.ClusterOptions{Addrs: []string{nodes[1].RESPTLSAddr()}, TLSConfig: cfg})
	// A plain client on the same node is sent to plain addresses.
	plain := goredis.NewClient(&goredis.Options{Addr: nodes[0].RESPAddr(), MaxRetries: -1})
	t.Cleanup(func() { plain.Close() })
	redirected := false
	for i := 0; i < 50 && !redirected; i++ {
		key := fmt.Sprint("sess:", i)
		if owner := layout[ring.Slot(key)]; owner != nodes[0].RESPAddr() {
			redirected = true
			err := plain.Get(ctx, key).Err()
			if err == nil || !strings.HasSuffix(err.Error(), " "+owner) {
				t.Errorf("GET %s on plain TCP: %v; want MOVED to %s", key, err, owner)
			}
		}
	}
	if !redirected {
		t.Fatal("no key of 50 belongs to another node: the plain check proves nothing")
	}
}

// A TLS listener that cannot bind fails the start with a clear error, and
// lets go of the plain listener bound before it.
func TestRESPTLS_addressInUse(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	cert, key := tlsFiles(t, ca, t.TempDir(), "node")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainAddr := plain.Addr().String()
	plain.Close()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Addr, cfg.HTTPAddr, cfg.GossipAddr = "t", "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.RESPAddr, cfg.RESPTLSAddr, cfg.RESPTLSCert, cfg.RESPTLSKey = plainAddr, taken.Addr().String(), cert, key
	n, err := node.New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("New with its TLS address in use: no error")
	}
	if !strings.Contains(err.Error(), "listen resp-tls "+taken.Addr().String()) {
		t.Errorf("New with its TLS address in use: %v; want it named", err)
	}
	again, err := net.Listen("tcp", plainAddr)
	if err != nil {
		t.Fatalf("the plain Redis address after the failed start: %v; want it free", err)
	}
	again.Close()
}

// A certificate rewritten with the same size and modification time as the
// one before (a copy that keeps times, a clock's coarse resolution) is
// still served: the node compares the files' bytes.
func TestRESPTLS_renewalOfTheSameSizeAndTime(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "node-1")
	old, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(cert)
	if err != nil {
		t.Fatal(err)
	}
	n := nodetest.StartNode(t, func(c *node.Config) {
		c.RESPAddr, c.RESPTLSAddr, c.RESPTLSCert, c.RESPTLSKey = "", "127.0.0.1:0", cert, key
	})
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	before, err := servedSerial(n.RESPTLSAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A renewal of exactly the old certificate's size (DER lengths vary
	// by a byte or two with the serial and the signature).
	var c, k []byte
	for range 100 {
		if c, k = ca.Issue(t, "node-1"); len(c) == len(old) {
			break
		}
	}
	if len(c) != len(old) {
		t.Fatalf("no renewal of %d bytes in 100 tries", len(old))
	}
	testcert.Write(t, dir, "tls.crt", c)
	testcert.Write(t, dir, "tls.key", k)
	for _, f := range []string{cert, key} {
		if err := os.Chtimes(f, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.WaitFor(t, 10*time.Second, func() error {
		after, err := servedSerial(n.RESPTLSAddr(), cfg)
		if err == nil && after == before {
			err = fmt.Errorf("still serving certificate %s", before)
		}
		return err
	})
}
