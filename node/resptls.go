package node

import (
	"bytes"
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

// certRecheck is how often the certificate's files are read again for a
// change: a renewed certificate (cert-manager rewriting a mounted Secret,
// say) is served from the next handshake after this, without a restart.
const certRecheck = time.Second

// certFiles serves a certificate from its PEM files, loading it again when
// either file's bytes change (compared whole: a size and a modification
// time can stay the same across a rewrite). A reload that fails (a
// half-written pair) keeps the certificate loaded before and is logged;
// the next look tries again. An error is logged once until it changes.
type certFiles struct {
	certFile, keyFile string
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	certPEM []byte // the files' bytes cert was loaded from
	keyPEM  []byte
	checked time.Time
	failed  string // the last reload's error, logged once
}

func newCertFiles(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, now: now, log: log}
	certPEM, keyPEM, err := f.read()
	if err != nil {
		return nil, err
	}
	if err := f.load(certPEM, keyPEM); err != nil {
		return nil, err
	}
	f.checked = now()
	return f, nil
}

// read returns both files' bytes.
func (f *certFiles) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(f.certFile); err != nil {
		return nil, nil, fmt.Errorf("resp tls: %w", err)
	}
	if keyPEM, err = os.ReadFile(f.keyFile); err != nil {
		return nil, nil, fmt.Errorf("resp tls: %w", err)
	}
	return certPEM, keyPEM, nil
}

func (f *certFiles) load(certPEM, keyPEM []byte) error {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("resp tls: certificate %s, key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cert, f.certPEM, f.keyPEM = &cert, certPEM, keyPEM
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
// files changed and were last read certRecheck ago or more.
func (f *certFiles) current() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= certRecheck || now.Before(f.checked) {
		f.checked = now
		certPEM, keyPEM, err := f.read()
		if err == nil && (!bytes.Equal(certPEM, f.certPEM) || !bytes.Equal(keyPEM, f.keyPEM)) {
			if err = f.load(certPEM, keyPEM); err == nil {
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
