package session

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/ring"
)

// MinSecretLen is the shortest Config.Secret New accepts, in bytes.
const MinSecretLen = 32

// SecureMode says when session cookies get the Secure attribute and the
// __Host- name prefix.
type SecureMode int

const (
	// SecureAuto marks the cookie Secure and names it __Host-<CookieName>
	// when the request came over HTTPS (r.TLS is set, or X-Forwarded-Proto
	// says https and Config.TrustForwardedProto is set), and not otherwise.
	SecureAuto SecureMode = iota
	// SecureAlways always marks the cookie Secure with the __Host- prefix,
	// for servers behind a TLS-terminating proxy.
	SecureAlways
	// SecureNever never does: only for local development over plain HTTP.
	SecureNever
)

// Config configures a Manager. Zero fields take the defaults documented on
// each; Client and Secret are required.
type Config struct {
	// Client is the store's client. Required.
	Client *client.Client
	// Secret keys the hashes that turn session IDs and user IDs into store
	// keys. It must be at least MinSecretLen random bytes and the same on
	// every server of one application; changing it logs everyone out.
	Secret []byte
	// KeyPrefix starts every store key. Zero means "cr:s:". It may not
	// contain glob characters or braces.
	KeyPrefix string
	// Partitions is the cluster's partition count (cloakroomd --partitions).
	// Zero means ask the cluster (client.Partitions) the first time a
	// per-user operation needs it; a non-zero value is checked against the
	// cluster then, and a mismatch fails with ErrPartitions.
	Partitions int

	// IdleTimeout ends a session that has seen no request for this long
	// (sliding expiry). Zero means 30 minutes.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after it was created or its
	// user logged in, however active it is. Zero means 12 hours.
	AbsoluteTimeout time.Duration
	// RememberFor replaces both timeouts for sessions marked "remember me",
	// whose cookie then persists for as long. Zero means 30 days.
	RememberFor time.Duration
	// TouchInterval is how stale a session's recorded last-seen time may get
	// before a request rewrites it. A session can therefore end up to
	// TouchInterval before IdleTimeout after its last request, never after.
	// Zero means one minute (capped at a tenth of IdleTimeout).
	TouchInterval time.Duration

	// CookieName names the cookie; over HTTPS it gets the __Host- prefix.
	// Zero means "session".
	CookieName string
	// Secure says when the cookie is Secure. Zero means SecureAuto.
	Secure SecureMode
	// SameSite is the cookie's SameSite attribute. Zero means Lax.
	SameSite http.SameSite
	// TrustForwardedProto makes SecureAuto believe X-Forwarded-Proto; set it
	// only behind a proxy that overwrites that header.
	TrustForwardedProto bool
	// ClientIP returns the client address of a request, for the session
	// list's IP hint. Nil means the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string

	// StoreTimeout bounds the store calls the middleware makes to load and
	// save a session, and each Manager method's calls, on top of the
	// request's own context. Zero means 3 seconds.
	StoreTimeout time.Duration
	// MaxRetries bounds how often a save re-reads and merges after a
	// concurrent write before giving up with ErrConflict. Each retry means another request
	// saved meanwhile, so this bounds contention, not work. Zero means 16.
	MaxRetries int
	// ErrorHandler writes the response when a session cannot be loaded or
	// saved. Nil means 409 for ErrConflict, 503 otherwise.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives warnings. Nil means slog.Default(). Session IDs are
	// never logged.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now; tests inject a fake.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "cr:s:"
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 12 * time.Hour
	}
	if c.RememberFor == 0 {
		c.RememberFor = 30 * 24 * time.Hour
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = min(time.Minute, c.IdleTimeout/10)
	}
	if c.CookieName == "" {
		c.CookieName = "session"
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	if c.ClientIP == nil {
		c.ClientIP = remoteHost
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = 3 * time.Second
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 16
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = defaultErrorHandler
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
	if c.Client == nil {
		bad("client: required")
	}
	if len(c.Secret) < MinSecretLen {
		bad("secret: %d bytes; need at least %d random bytes", len(c.Secret), MinSecretLen)
	}
	if strings.ContainsAny(c.KeyPrefix, `*?[]\{}`) {
		bad("key prefix %q: may not contain glob characters or braces", c.KeyPrefix)
	}
	if c.Partitions < 0 || c.Partitions > ring.MaxPartitions {
		bad("partitions: %d; must be 0 (ask the cluster) or in [1,%d]", c.Partitions, ring.MaxPartitions)
	}
	if c.IdleTimeout < time.Second {
		bad("idle timeout: %v; must be at least 1s", c.IdleTimeout)
	}
	if c.AbsoluteTimeout < c.IdleTimeout {
		bad("absolute timeout %v: shorter than the idle timeout %v", c.AbsoluteTimeout, c.IdleTimeout)
	}
	if c.RememberFor < c.IdleTimeout {
		bad("remember-for %v: shorter than the idle timeout %v", c.RememberFor, c.IdleTimeout)
	}
	if c.TouchInterval < 0 || c.TouchInterval >= c.IdleTimeout {
		bad("touch interval %v: must be in [0, idle timeout)", c.TouchInterval)
	}
	if !validCookieName(c.CookieName) {
		bad("cookie name %q: must be a plain token without a __Host- or __Secure- prefix", c.CookieName)
	}
	if c.Secure < SecureAuto || c.Secure > SecureNever {
		bad("secure mode %d: unknown", c.Secure)
	}
	if c.SameSite == http.SameSiteNoneMode && c.Secure != SecureAlways {
		bad("SameSite=None needs Secure: SecureAlways")
	}
	if c.StoreTimeout < 0 {
		bad("store timeout: %v; must not be negative", c.StoreTimeout)
	}
	if c.MaxRetries < 0 {
		bad("max retries: %d; must not be negative", c.MaxRetries)
	}
	return errors.Join(errs...)
}

func validCookieName(name string) bool {
	if name == "" || strings.HasPrefix(name, "__") {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)
		if !ok {
			return false
		}
	}
	return true
}

func defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusServiceUnavailable
	if errors.Is(err, ErrConflict) {
		code = http.StatusConflict
	}
	http.Error(w, http.StatusText(code), code)
}
