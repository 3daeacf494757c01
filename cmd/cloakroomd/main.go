// Command cloakroomd runs one Cloakroom node.
//
// Every flag can also be set from the environment as CLOAKROOM_<NAME>, with
// the flag's dashes as underscores (--max-memory: CLOAKROOM_MAX_MEMORY). A
// flag given on the command line wins over the environment.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/resp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cloakroomd:", err)
		}
		os.Exit(2)
	}
}

// zeroMeansOff stores a flag whose 0 turns its feature off, as
// node.Config's negative value does (its 0 means the default); a negative
// flag is an error, which zero names.
func zeroMeansOff[T ~int | ~int64](name string, v T, dst *T, zero string) error {
	switch {
	case v < 0:
		return fmt.Errorf("%s: %v; must not be negative (%s)", name, v, zero)
	case v == 0:
		*dst = -1
	default:
		*dst = v
	}
	return nil
}

// options are the command-line settings beyond node.Config.
type options struct {
	cfg          node.Config
	logLevel     string
	logFormat    string
	drainTimeout time.Duration
	checkConfig  bool
}

// parseFlags turns arguments and environment into options.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{cfg: node.DefaultConfig()}
	c := &o.cfg
	fs := flag.NewFlagSet("cloakroomd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var join, maxMemory, maxValue, gossipKey, transferRate string
	var respSpin time.Duration
	var respMaxClients int
	var respRetry time.Duration
	fs.StringVar(&c.Name, "name", c.Name, "node name, unique in the cluster, at most 255 bytes (default: hostname)")
	fs.StringVar(&c.Addr, "addr", c.Addr, "native protocol listener")
	fs.StringVar(&c.RESPAddr, "resp-addr", c.RESPAddr, "Redis protocol listener (empty disables)")
	fs.StringVar(&c.RESPTLSAddr, "resp-tls-addr", c.RESPTLSAddr, "Redis protocol TLS listener, beside --resp-addr (which may be empty, for TLS only); needs --resp-tls-cert and --resp-tls-key (empty disables)")
	fs.StringVar(&c.RESPTLSCert, "resp-tls-cert", c.RESPTLSCert, "PEM file of the TLS listener's certificate, intermediates after it; read again when it changes")
	fs.StringVar(&c.RESPTLSKey, "resp-tls-key", c.RESPTLSKey, "PEM file of the TLS listener's private key; read again when it changes")
	fs.StringVar(&c.RESPTLSClientCA, "resp-tls-client-ca", c.RESPTLSClientCA, "PEM file of CA certificates: every TLS client must present a certificate one of them signed (empty: clients need none)")
	fs.BoolVar(&c.RESPClusterMode, "resp-cluster-mode", c.RESPClusterMode, "act as a Redis Cluster node: CLUSTER commands and MOVED redirects")
	fs.DurationVar(&respSpin, "resp-idle-spin", resp.DefaultIdleSpin, "how long the Redis listener keeps polling for input after serving some, before it sleeps (Linux; 0 disables)")
	fs.IntVar(&respMaxClients, "resp-max-clients", resp.DefaultMaxClients, "most open Redis protocol connections, at most half the open-file limit; one more is told \"max number of clients reached\" and closed (0: no limit)")
	fs.DurationVar(&c.RESPIdleTimeout, "resp-idle-timeout", 0, "close a Redis protocol connection idle this long, as Redis's timeout (0: never; at least 1s)")
	fs.DurationVar(&respRetry, "resp-retry-window", resp.DefaultRetryWindow, "how long a Redis command failing while the cluster changes is tried again before TRYAGAIN is answered; conditional writes are answered at once (0: never tried again)")
	fs.StringVar(&c.Password, "requirepass", c.Password, "password Redis clients must AUTH with (empty: none)")
	fs.StringVar(&c.NativePassword, "native-password", c.NativePassword, "password every native connection (--addr) must give in its hello, from Go clients and members; the same on every member, at most 4096 bytes (empty: none). Better given as CLOAKROOM_NATIVE_PASSWORD")
	fs.BoolVar(&c.NativePasswordOptional, "native-password-optional", c.NativePasswordOptional, "let in native connections without --native-password, counting and logging them: for turning it on or changing it in a running cluster")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "HTTP listener for /healthz, /readyz, /servingz, /metrics (empty disables)")
	fs.BoolVar(&c.HTTPProfiling, "http-pprof", c.HTTPProfiling, "also serve Go's profiler on --http-addr (/debug/pprof/)")
	fs.StringVar(&c.GossipAddr, "gossip-addr", c.GossipAddr, "gossip (membership) listener")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "host other nodes and clients dial (default: the bind host)")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of any cluster members")
	fs.StringVar(&c.Cluster, "cluster-name", "cloakroom", "cluster name; nodes refuse members with another name")
	fs.StringVar(&gossipKey, "gossip-key", "", "base64 AES key (16, 24 or 32 bytes) encrypting gossip; empty: plain text")
	fs.StringVar(&c.GossipPreset, "gossip-preset", "lan", "memberlist timing preset: lan (a crash is noticed in about 5s) or local (shorter timeouts, one machine)")
	fs.IntVar(&c.Replicas, "replicas", c.Replicas, "copies of each session, counting the primary")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partition count; must match across the cluster")
	fs.StringVar(&maxMemory, "max-memory", "0", "memory limit for sessions such as 512MiB; 0: 80% of the container's memory limit, else 75% of the machine's")
	fs.IntVar(&c.MaxConns, "max-conns", 10000, "most open native connections; more are closed at once, except a few from the cluster's own members")
	fs.StringVar(&transferRate, "transfer-rate", "64MiB", "bytes per second partition transfers may use; -1 means no limit")
	fs.IntVar(&c.Limits.MaxKey, "max-key-size", c.Limits.MaxKey, "longest key in bytes")
	fs.StringVar(&maxValue, "max-value-size", fmt.Sprint(c.Limits.MaxValue), "largest value, such as 1MiB")
	fs.BoolVar(&c.AllowFlush, "allow-flush", c.AllowFlush, "allow FLUSHALL and flush requests")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&o.checkConfig, "check-config", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	var errs []error
	if join != "" {
		for _, j := range strings.Split(join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				c.Join = append(c.Join, j)
			}
		}
	}
	if gossipKey != "" {
		k, err := base64.StdEncoding.DecodeString(gossipKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("gossip-key: not base64: %w", err))
		}
		c.GossipKey = k
	}
	if err := zeroMeansOff("resp-idle-spin", respSpin, &c.RESPIdleSpin, "0 disables"); err != nil {
		errs = append(errs, err)
	}
	if err := zeroMeansOff("resp-retry-window", respRetry, &c.RESPRetryWindow, "0: never tried again"); err != nil {
		errs = append(errs, err)
	}
	if err := zeroMeansOff("resp-max-clients", respMaxClients, &c.RESPMaxClients, "0: no limit"); err != nil {
		errs = append(errs, err)
	}
	if transferRate == "-1" {
		c.TransferRate = -1
	} else if v, err := node.ParseBytes(transferRate); err != nil || v == 0 {
		errs = append(errs, fmt.Errorf("transfer-rate: %q: want a positive size per second such as 64MiB, or -1", transferRate))
	} else {
		c.TransferRate = v
	}
	var err error
	if c.MaxMemory, err = node.ParseBytes(maxMemory); err != nil {
		errs = append(errs, fmt.Errorf("max-memory: %w", err))
	}
	if v, err := node.ParseBytes(maxValue); err != nil {
		errs = append(errs, fmt.Errorf("max-value-size: %w", err))
	} else {
		c.Limits.MaxValue = int(v)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log-level: %w", err))
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		c.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		c.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		errs = append(errs, fmt.Errorf("log-format: %q; want text or json", o.logFormat))
	}
	if o.drainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("drain-timeout: %v; must be positive", o.drainTimeout))
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// applyEnv sets every flag not given on the command line from
// CLOAKROOM_<NAME> when that variable is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := "CLOAKROOM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.checkConfig {
		fmt.Fprintln(stderr, "configuration ok")
		return nil
	}
	n, err := node.New(o.cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}
