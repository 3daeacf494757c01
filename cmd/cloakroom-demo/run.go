package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/session"
)

// options are the demo's settings.
type options struct {
	listen          string
	cluster         []string
	password        string // the nodes' --native-password
	secret          []byte
	insecureCookies bool
	partitions      int
	idle            time.Duration
}

// parseFlags turns arguments and environment (CLOAKROOM_DEMO_<NAME>) into
// options; a flag on the command line wins.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("cloakroom-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cluster, secret string
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cluster, "cluster", "127.0.0.1:7400", "comma-separated native addresses of cluster nodes")
	fs.StringVar(&o.password, "password", "", "the nodes' --native-password (empty: none); better given as CLOAKROOM_DEMO_PASSWORD")
	fs.StringVar(&secret, "secret", "", "hex key (at least 32 bytes) for session key hashes; empty: random per process (dev only)")
	fs.BoolVar(&o.insecureCookies, "insecure-cookies", false, "never mark cookies Secure, even over HTTPS (local development only)")
	fs.IntVar(&o.partitions, "partitions", 0, "the cluster's partition count (0: ask the cluster)")
	fs.DurationVar(&o.idle, "idle-timeout", 30*time.Minute, "idle timeout of a session")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "CLOAKROOM_DEMO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s: %v", name, err))
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	for _, a := range strings.Split(cluster, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.cluster = append(o.cluster, a)
		}
	}
	if len(o.cluster) == 0 {
		return nil, errors.New("--cluster: need at least one node address")
	}
	if secret != "" {
		b, err := hex.DecodeString(secret)
		if err != nil {
			return nil, fmt.Errorf("--secret: not hex: %v", err)
		}
		o.secret = b
	}
	return o, nil
}

// run serves the demo until ctx is done.
func run(ctx context.Context, o *options, logOut io.Writer) error {
	log := slog.New(slog.NewTextHandler(logOut, nil))
	secret := o.secret
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret)
		log.Warn("no --secret: using a random one; sessions end when the demo restarts")
	}
	cl, err := client.New(client.Config{Addrs: o.cluster, Password: o.password})
	if err != nil {
		return err
	}
	defer cl.Close()
	mode := session.SecureAuto
	if o.insecureCookies {
		mode = session.SecureNever
	}
	m, err := session.New(session.Config{
		Client: cl, Secret: secret, Secure: mode, Partitions: o.partitions,
		IdleTimeout: o.idle, AbsoluteTimeout: max(12*time.Hour, o.idle), Logger: log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           (&app{m: m, log: log}).handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("cloakroom-demo listening", "addr", "http://"+ln.Addr().String(), "cluster", strings.Join(o.cluster, ","))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
