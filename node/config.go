package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"github.com/hashicorp/memberlist"
)

// Config configures a node. DefaultConfig fills every field; the comment on
// each field says what its zero value means.
type Config struct {
	// Name identifies the node in the cluster; it must be unique. Empty
	// means the hostname.
	Name string
	// Addr is the native protocol listener, host:port. Required.
	Addr string
	// RESPAddr is the Redis protocol listener; empty disables it.
	RESPAddr string
	// RESPTLSAddr is the Redis protocol's TLS listener, served beside
	// RESPAddr (which may be empty, for TLS only), as Redis's tls-port is
	// beside its port; empty disables it. It needs RESPTLSCert and
	// RESPTLSKey.
	RESPTLSAddr string
	// RESPTLSCert and RESPTLSKey are the PEM files of the TLS listener's
	// certificate (with any intermediates after it) and private key. They
	// are read again when they change, so a renewed certificate needs no
	// restart.
	RESPTLSCert, RESPTLSKey string
	// RESPTLSClientCA, when set, is a PEM file of CA certificates, and
	// every TLS client must present a certificate one of them signed, as
	// Redis's tls-auth-clients does. Empty: clients need none.
	RESPTLSClientCA string
	// RESPClusterMode makes the Redis listener act as a Redis Cluster node:
	// CLUSTER SLOTS/SHARDS/NODES answer and keys owned by another node get
	// MOVED redirects, so cluster-aware clients route in one hop. False
	// serves every key on any node (forwarding) as a standalone Redis.
	RESPClusterMode bool
	// RESPIdleSpin is how long the Redis listener's event loop keeps
	// polling its connections for more input after serving some, before it
	// sleeps: a little CPU for lower latency under steady traffic. Linux
	// only, and only with a CPU to spare (GOMAXPROCS above the number of
	// loops); it backs off when nothing comes. Zero means 20µs, negative
	// disables it; at most 1ms.
	RESPIdleSpin time.Duration
	// RESPMaxClients bounds the Redis listener's open connections, as
	// Redis's maxclients does: one more is told "ERR max number of
	// clients reached" and closed. Zero means 10000; negative, no limit. A
	// limit above half the open-file limit is lowered to it.
	RESPMaxClients int
	// RESPIdleTimeout closes a Redis connection that has sent nothing for
	// this long and has no command running, as Redis's timeout does. Zero
	// means never; otherwise at least 1s.
	RESPIdleTimeout time.Duration
	// RESPRetryWindow is how long a Redis command that fails because the
	// cluster is changing (a node lost and not yet dropped, tables being
	// updated) is tried again before TRYAGAIN is answered, so session
	// stores see a slow reply rather than an error. Conditional writes are
	// answered at once. Zero means 10s; negative, never tried again.
	RESPRetryWindow time.Duration
	// Password, when set, is required on the Redis listener (AUTH or HELLO
	// AUTH) before any other command. Empty means no authentication.
	Password string
	// NativePassword, when set, is required in the hello of every
	// connection to the native listener (Addr), from Go clients
	// (client.Config.Password) and from the other members, and this node
	// gives it to them in turn: every member of a cluster must have the
	// same one. Empty means no authentication there. It is compared in
	// constant time.
	NativePassword string
	// NativePasswordOptional lets in native connections whose hello lacks
	// NativePassword (or gives another), counting and logging them, for
	// turning a password on or changing it in a running cluster by rolling
	// restarts (README, "Securing a cluster": changing it takes a restart
	// with the old password and this set first).
	NativePasswordOptional bool
	// HTTPAddr serves /healthz, /readyz, /servingz and /metrics; empty
	// disables it.
	HTTPAddr string
	// HTTPProfiling also serves Go's profiler there (/debug/pprof/). Off by
	// default: whoever reaches the metrics port could keep the node busy
	// profiling or tracing.
	HTTPProfiling bool
	// GossipAddr is the membership (gossip) listener, host:port.
	GossipAddr string
	// Advertise is the host other nodes and clients dial to reach this node.
	// Empty means the host of each listener's bind address.
	Advertise string
	// Join lists gossip addresses of any existing members to join.
	Join []string
	// Cluster names the cluster; nodes refuse members with another name.
	// Empty means "cloakroom".
	Cluster string
	// GossipKey encrypts gossip (AES; 16, 24 or 32 bytes). Nil: plain text.
	GossipKey []byte
	// GossipPreset selects memberlist's timing: "lan" (a crash is noticed
	// in about 5 s) or "local" (memberlist's local-network timeouts; on
	// three nodes no faster in practice). Empty means "lan".
	GossipPreset string
	// AntiEntropyInterval is how often a primary compares each partition
	// with its backups and repairs differences. Zero means 30s; negative
	// disables it.
	AntiEntropyInterval time.Duration
	// TransferRate bounds partition transfers (pulls and pushes together)
	// in bytes of keys and values per second, so that moving partitions
	// leaves room for foreground requests. Zero means 64 MiB/s (about
	// 250,000 sessions of 200 bytes a second); negative means no limit.
	TransferRate int64
	// PeerTimeout bounds each node-to-node call. Zero means 2s.
	PeerTimeout time.Duration
	// Replicas is how many copies of each session the cluster keeps,
	// counting the primary. Zero means 2.
	Replicas int
	// Partitions is the partition count; it must match across the cluster.
	// Zero means ring.DefaultPartitions.
	Partitions int
	// MaxMemory bounds the store's memory in bytes. Zero means no configured
	// limit: the node then caps the store at 80% of its container's memory
	// limit, or 75% of the machine's, so that it is never killed for client
	// data.
	MaxMemory int64
	// MaxConns bounds open native connections; more are closed at once.
	// Zero means 10000.
	MaxConns int
	// Limits bounds keys and values. Zero fields mean protocol defaults.
	Limits protocol.Limits
	// AllowFlush enables FLUSHALL / OpFlush, off by default.
	AllowFlush bool
	// ExpiryInterval is how often active expiry runs. Zero means 100ms.
	ExpiryInterval time.Duration
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now. Tests inject a fake.
	Now func() time.Time

	timeouts nativeTimeouts // zero fields: helloTimeout, frameTimeout (tests shorten them)
	// tuneGossip, if set, changes the memberlist configuration last
	// (tests turn gossip off, say).
	tuneGossip func(*memberlist.Config)
}

// nativeTimeouts bound how long a native connection may take to send its
// hello, and the rest of a frame once its header has come.
type nativeTimeouts struct{ hello, frame time.Duration }

// DefaultConfig returns the configuration `cloakroomd` uses with no flags:
// every listener on loopback only, as exposing a node is a deliberate act.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Name:           host,
		Addr:           "127.0.0.1:7400",
		RESPAddr:       "127.0.0.1:6379",
		HTTPAddr:       "127.0.0.1:7480",
		GossipAddr:     "127.0.0.1:7946",
		Replicas:       2,
		Partitions:     ring.DefaultPartitions,
		Limits:         protocol.DefaultLimits(),
		ExpiryInterval: 100 * time.Millisecond,
	}
}

// withDefaults fills zero fields that have defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.Cluster == "" {
		c.Cluster = "cloakroom"
	}
	if c.MaxConns == 0 {
		c.MaxConns = 10000
	}
	if c.TransferRate == 0 {
		c.TransferRate = 64 << 20
	}
	if c.AntiEntropyInterval == 0 {
		c.AntiEntropyInterval = 30 * time.Second
	}
	if c.GossipPreset == "" {
		c.GossipPreset = "lan"
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 2 * time.Second
	}
	if c.timeouts.hello == 0 {
		c.timeouts.hello = helloTimeout
	}
	if c.timeouts.frame == 0 {
		c.timeouts.frame = frameTimeout
	}
	if c.Partitions == 0 {
		c.Partitions = ring.DefaultPartitions
	}
	c.Limits = c.Limits.WithDefaults()
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		bad("name: empty and no hostname to default to")
	} else if len(c.Name) > maxNameLen {
		bad("name: %d bytes; must be at most %d", len(c.Name), maxNameLen)
	}
	checkAddr := func(field, addr string, required bool) {
		if addr == "" {
			if required {
				bad("%s: required", field)
			}
			return
		}
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q: %v", field, addr, err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("%s %q: bad port", field, addr)
		}
	}
	checkAddr("addr", c.Addr, true)
	checkAddr("resp-addr", c.RESPAddr, false)
	checkAddr("resp-tls-addr", c.RESPTLSAddr, false)
	checkAddr("http-addr", c.HTTPAddr, false)
	checkAddr("gossip-addr", c.GossipAddr, false)
	for _, j := range c.Join {
		checkAddr("join", j, true)
	}
	if c.Replicas < 1 {
		bad("replicas: %d; must be at least 1", c.Replicas)
	}
	if c.Partitions < 1 || c.Partitions > ring.MaxPartitions {
		bad("partitions: %d; must be in [1,%d]", c.Partitions, ring.MaxPartitions)
	}
	if c.MaxConns < 0 {
		bad("max-conns: %d; must not be negative", c.MaxConns)
	}
	if c.MaxMemory < 0 {
		bad("max-memory: %d; must not be negative", c.MaxMemory)
	}
	if c.Limits.MaxKey < 1 || c.Limits.MaxKey > 1<<16-1 {
		bad("max key size: %d; must be in [1,65535]", c.Limits.MaxKey)
	}
	if c.Limits.MaxValue < 1 || c.Limits.MaxValue > 512<<20 {
		bad("max value size: %d; must be in [1,512MiB]", c.Limits.MaxValue)
	}
	if k := len(c.GossipKey); k != 0 && k != 16 && k != 24 && k != 32 {
		bad("gossip key: %d bytes; must be 16, 24 or 32", k)
	}
	if c.GossipPreset != "lan" && c.GossipPreset != "local" {
		bad("gossip preset: %q; want lan or local", c.GossipPreset)
	}
	if c.PeerTimeout < 0 {
		bad("peer timeout: %v; must not be negative", c.PeerTimeout)
	}
	if c.RESPIdleTimeout < 0 || c.RESPIdleTimeout > 0 && c.RESPIdleTimeout < time.Second {
		bad("resp-idle-timeout: %v; must be 0 (never) or at least 1s", c.RESPIdleTimeout)
	}
	if c.RESPIdleSpin > time.Millisecond {
		bad("resp-idle-spin: %v; must be at most 1ms", c.RESPIdleSpin)
	}
	if c.RESPClusterMode && c.RESPAddr == "" && c.RESPTLSAddr == "" {
		bad("resp-cluster-mode: needs resp-addr or resp-tls-addr")
	}
	errs = append(errs, c.validateRESPTLS()...)
	if strings.ContainsAny(c.Password, "\r\n") {
		bad("requirepass: must not contain CR or LF")
	}
	if len(c.NativePassword) > maxPasswordLen {
		bad("native-password: %d bytes; must be at most %d", len(c.NativePassword), maxPasswordLen)
	}
	if c.NativePasswordOptional && c.NativePassword == "" {
		bad("native-password-optional: needs native-password")
	}
	if c.ExpiryInterval < 0 {
		bad("expiry interval: %v; must not be negative", c.ExpiryInterval)
	}
	return errors.Join(errs...)
}

// validateRESPTLS checks the TLS listener's settings, and that its files
// load, so that --check-config finds a wrong path or a key that does not
// match its certificate.
func (c *Config) validateRESPTLS() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.RESPTLSAddr == "":
		if c.RESPTLSCert != "" || c.RESPTLSKey != "" || c.RESPTLSClientCA != "" {
			bad("resp-tls-cert, resp-tls-key, resp-tls-client-ca: need resp-tls-addr")
		}
		return errs
	case c.RESPTLSCert == "" || c.RESPTLSKey == "":
		bad("resp-tls-addr: needs resp-tls-cert and resp-tls-key")
		return errs
	}
	if _, err := tls.LoadX509KeyPair(c.RESPTLSCert, c.RESPTLSKey); err != nil {
		bad("resp-tls-cert %s, resp-tls-key %s: %v", c.RESPTLSCert, c.RESPTLSKey, err)
	}
	if c.RESPTLSClientCA != "" {
		if _, err := loadCAs(c.RESPTLSClientCA); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ParseBytes parses a size such as "512MiB", "1GB", "64k" or "1048576".
// Binary (KiB, MiB, GiB) and decimal (KB, MB, GB) suffixes are accepted,
// case-insensitively; a bare K, M or G is binary.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q: want a number of bytes with an optional unit such as MiB", s)
	}
	if n > 0 && mult > (1<<63-1)/n {
		return 0, fmt.Errorf("size %q overflows", s)
	}
	return n * mult, nil
}
