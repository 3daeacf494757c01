package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// respTLSConfig is the TLS configuration of the Redis protocol's TLS
// listener (Config.RESPTLSAddr): TLS 1.2 or later, the certificate and key
// from their files, read again when they change, and, with a client CA,
// every client made to present a certificate it signed.
// It returns the certificate's files too, for the expiry metric.
func respTLSConfig(c *Config, log *slog.Logger) (*tls.Config, *certFiles, error) {
	certs, err := newCertFiles(c.RESPTLSCert, c.RESPTLSKey, c.Now, log)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	if c.RESPTLSClientCA != "" {
		pool, err := loadCAs(c.RESPTLSClientCA)
		if err != nil {
			return nil, nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, certs, nil
}

// loadCAs reads a PEM file of one or more CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("resp-tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("resp-tls-client-ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// certRecheck is how often the certificate's files are looked at again for
// a change: a renewed certificate (cert-manager rewriting a mounted
// Secret, say) is served from the next handshake after this, without a
// restart.
const certRecheck = time.Second

// certFiles serves a certificate from its PEM files, reloading it when
// either file's size or modification time changes. A reload that fails (a
// half-written pair) keeps the certificate loaded before and is logged;
// the next look tries again. An error is logged once until it changes.
type certFiles struct {
	certFile, keyFile string
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of certFile and keyFile when cert was loaded
	checked time.Time
	failed  string // the last reload's error, logged once
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	size, mod int64 // mod: the modification time in Unix nanoseconds
}

func newCertFiles(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, now: now, log: log}
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	if err := f.load(stamp); err != nil {
		return nil, err
	}
	f.checked = now()
	return f, nil
}

func (f *certFiles) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, name := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("resp tls: %w", err)
		}
		st[i] = fileStamp{fi.Size(), fi.ModTime().UnixNano()}
	}
	return st, nil
}

func (f *certFiles) load(stamp [2]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("resp tls: certificate %s, key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cert, f.stamp = &cert, stamp
	return nil
}

// get is tls.Config.GetCertificate.
func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.current(), nil
}

// notAfter is when the certificate served now expires, in Unix seconds.
// A scrape looks at the files as a handshake does, so that the metric
// follows a renewal on a node no TLS client has reached since.
func (f *certFiles) notAfter() int64 {
	return f.current().Leaf.NotAfter.Unix()
}

// current returns the certificate to serve, loaded again first if its
// files changed and were last looked at certRecheck ago or more.
func (f *certFiles) current() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= certRecheck || now.Before(f.checked) {
		f.checked = now
		stamp, err := f.stamps()
		if err == nil && stamp != f.stamp {
			if err = f.load(stamp); err == nil {
				f.log.Info("resp tls: certificate reloaded", "cert", f.certFile, "not_after", f.cert.Leaf.NotAfter)
			}
		}
		switch {
		case err == nil:
			f.failed = ""
		case err.Error() != f.failed:
			f.failed = err.Error()
			f.log.Warn("resp tls: keeping the certificate loaded before", "err", err)
		}
	}
	return f.cert
}
