package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloakroom/cloakroom/client"
)

// hostPrefix is the cookie-name prefix that browsers accept only on Secure,
// Path=/, Domain-less cookies set over HTTPS: such a cookie cannot be set or
// overwritten by a sibling subdomain or over plain HTTP.
const hostPrefix = "__Host-"

// Handler is the middleware: it loads the request's session (sliding its
// idle expiry) before next runs and saves it, only if it changed, when the
// response starts. Handlers get the session with FromContext.
//
// A cookie naming no live session is ignored and expired: the middleware
// never adopts an ID it did not issue (strict mode), and a new session gets a
// fresh random ID only when something is stored in it. If the session cannot
// be loaded or saved, Config.ErrorHandler writes the response instead.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.load(r)
		if err != nil {
			m.log.Warn("session: load failed", "err", err)
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		w.Header().Add("Vary", "Cookie")
		sw := &writer{ResponseWriter: w, m: m, s: s, r: r}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
		sw.finish()
	})
}

// isHTTPS reports whether r came over HTTPS, as far as Config lets us know.
func (m *Manager) isHTTPS(r *http.Request) bool {
	switch m.cfg.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return r.TLS != nil || m.cfg.TrustForwardedProto && r.Header.Get("X-Forwarded-Proto") == "https"
}

func (m *Manager) cookieName(https bool) string {
	if https {
		return hostPrefix + m.cfg.CookieName
	}
	return m.cfg.CookieName
}

// load reads the session named by r's cookie, or returns a fresh one.
func (m *Manager) load(r *http.Request) (*Session, error) {
	https := m.isHTTPS(r)
	s := newSession(m, r, https)
	c, err := r.Cookie(m.cookieName(https))
	if err != nil {
		return s, nil
	}
	s.hadCookie, s.sendCookie = true, true // expire it unless it names a live session
	tag, id, ok := parseCookie(c.Value)
	if !ok {
		return s, nil
	}
	ctx, cancel := m.bound(r.Context())
	defer cancel()
	key := m.keys.key(tag, m.keys.idHash(id))
	b, ver, err := m.getAndTouch(ctx, key, m.cfg.IdleTimeout)
	if errors.Is(err, client.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session: load: %w", err)
	}
	now := m.cfg.Now()
	rec, err := decodeRecord(b)
	if err != nil || rec.Tag != tag || rec.expired(&m.cfg, now) {
		if _, err := m.cfg.Client.Delete(ctx, key); err != nil {
			m.log.Warn("session: delete expired session", "err", err)
		}
		return s, nil
	}
	if want := rec.ttl(&m.cfg, now); want != m.cfg.IdleTimeout {
		// Remember-me sessions live longer; sessions near their absolute
		// end shorter.
		if ver, err = m.touch(ctx, key, want); errors.Is(err, client.ErrNotFound) {
			return s, nil
		} else if err != nil {
			return nil, fmt.Errorf("session: load: %w", err)
		}
	}
	s.id, s.tag, s.key, s.version, s.rec, s.stored = id, tag, key, ver, rec, true
	s.loaded = rec.clone().Data
	s.sendCookie = false
	if now.Sub(rec.lastSeen()) >= m.cfg.TouchInterval {
		rec.LastSeen = ms(now)
		s.metaDirty = true
	}
	return s, nil
}

// commit saves s and adds its cookie to h if it changed.
func (m *Manager) commit(ctx context.Context, s *Session, h http.Header) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := m.save(ctx, s); err != nil {
		return err
	}
	if s.sendCookie {
		h.Add("Set-Cookie", m.cookie(s).String())
		if h.Get("Cache-Control") == "" {
			h.Set("Cache-Control", "no-store") // never cache a response that sets a session
		}
		s.sendCookie = false
	}
	return nil
}

// cookie is the cookie naming s, or expiring it if s is not stored.
func (m *Manager) cookie(s *Session) *http.Cookie {
	c := &http.Cookie{
		Name: m.cookieName(s.https), Path: "/", HttpOnly: true,
		Secure: s.https, SameSite: m.cfg.SameSite,
	}
	if !s.stored {
		c.MaxAge = -1
		return c
	}
	c.Value = cookieValue(s.tag, s.id)
	if s.rec.Remember {
		end := s.rec.absoluteEnd(&m.cfg)
		c.MaxAge = max(int(end.Sub(m.cfg.Now())/time.Second), 1)
		c.Expires = end.UTC()
	}
	return c
}

// writer saves the session just before the response's header goes out, so
// that a changed cookie can still be set.
type writer struct {
	http.ResponseWriter
	m       *Manager
	s       *Session
	r       *http.Request
	started bool // the session was committed and the header may be out
	failed  bool // the commit failed and ErrorHandler wrote the response
}

// start commits the session once; it reports whether the handler may write.
func (w *writer) start() bool {
	if !w.started {
		w.started = true
		if err := w.m.commit(w.r.Context(), w.s, w.ResponseWriter.Header()); err != nil {
			w.failed = true
			w.m.log.Warn("session: save failed", "err", err)
			w.m.cfg.ErrorHandler(w.ResponseWriter, w.r, err)
		}
	}
	return !w.failed
}

func (w *writer) WriteHeader(code int) {
	if w.start() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.start() {
		return 0, ErrSaveFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data, committing the session first.
func (w *writer) Flush() {
	if w.start() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish commits a session the handler never wrote a response for, or saves
// changes made after the response started (their cookie cannot be sent).
func (w *writer) finish() {
	if !w.started {
		w.start()
		return
	}
	if w.failed {
		return
	}
	h := http.Header{}
	if err := w.m.commit(w.r.Context(), w.s, h); err != nil {
		w.m.log.Warn("session: save after the response started failed", "err", err)
	}
	if h.Get("Set-Cookie") != "" {
		w.m.log.Warn("session: changed its ID after the response started; the browser keeps the old cookie")
	}
}

// bound limits ctx to Config.StoreTimeout.
func (m *Manager) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.StoreTimeout)
}
