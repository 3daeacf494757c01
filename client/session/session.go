package session

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Session is one browser's session during one request. The middleware puts
// it in the request's context; get it with FromContext and read or change it
// with Get, Put, Pop and the methods below. It is safe for use by the
// handler's goroutines until the handler returns.
type Session struct {
	m *Manager

	mu sync.Mutex // guards everything below
	// Identity in the store; id and key are empty until the session is
	// stored (sessions are created lazily, on the first change).
	id, tag, key string
	version      uint64 // of the stored record, for CompareAndSwap
	rec          *record
	loaded       map[string]json.RawMessage // values as last read from the store
	changed      map[string]json.RawMessage // values this request set (nil: deleted)
	metaDirty    bool                       // last seen or remember-me changed
	rememberSet  bool                       // SetRememberMe changed remember-me
	stored       bool                       // rec is in the store under key
	hadCookie    bool                       // the request carried a session cookie
	sendCookie   bool                       // the response must set (or expire) the cookie
	https        bool                       // the request came over HTTPS
	ua, ip       string                     // the request's user agent and IP hint
}

// FromContext returns the request's session, or nil outside the middleware.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

type ctxKey struct{}

func newSession(m *Manager, r *http.Request, https bool) *Session {
	s := &Session{m: m, https: https}
	if r != nil {
		s.ua, s.ip = truncateUA(r.UserAgent()), ipHint(m.cfg.ClientIP(r))
	}
	s.reset()
	return s
}

// reset makes s a fresh, unstored, anonymous session.
// The caller holds mu, or has not shared s yet.
func (s *Session) reset() {
	now := s.m.cfg.Now()
	s.id, s.tag, s.key, s.version = "", "", "", 0
	s.rec = &record{V: recordVersion, Created: ms(now), LastSeen: ms(now), UA: s.ua, IP: s.ip, Data: map[string]json.RawMessage{}}
	s.loaded = map[string]json.RawMessage{}
	s.changed = map[string]json.RawMessage{}
	s.metaDirty, s.rememberSet, s.stored = false, false, false
}

// Get returns the value stored under key, decoded as a T. It reports false
// if there is none or it does not decode as a T.
func Get[T any](s *Session, key string) (T, bool) {
	var v T
	s.mu.Lock()
	raw, ok := s.rec.Data[key]
	s.mu.Unlock()
	if !ok || json.Unmarshal(raw, &v) != nil {
		var zero T
		return zero, false
	}
	return v, true
}

// Put stores v under key, encoded as JSON. The session is saved when the
// response starts; a session that was never stored is created then.
func Put[T any](s *Session, key string, v T) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.rec.Data[key]; ok && bytes.Equal(cur, raw) {
		return nil
	}
	s.rec.Data[key] = raw
	s.changed[key] = raw
	return nil
}

// Pop returns the value under key, as Get does, and deletes it: a flash
// message shown once.
func Pop[T any](s *Session, key string) (T, bool) {
	v, ok := Get[T](s, key)
	s.Delete(key)
	return v, ok
}

// Delete removes key's value.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rec.Data[key]; ok {
		delete(s.rec.Data, key)
		s.changed[key] = nil
	}
}

// Has reports whether key has a value.
func (s *Session) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rec.Data[key]
	return ok
}

// Keys returns the keys that have values, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.rec.Data))
}

// UserID returns the user the session is bound to by Login, or "".
func (s *Session) UserID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.User
}

// Handle returns the session's public handle: the store's keyed hash of its
// ID, as in SessionInfo.Handle. It is "" for a session not yet stored. It
// cannot be turned back into the ID, so it is safe to show.
func (s *Session) Handle() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stored {
		return ""
	}
	return s.key[len(s.key)-hashLen:]
}

// Created returns when the session was created or its user logged in.
func (s *Session) Created() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.created()
}

// IsNew reports whether the session is not (yet) in the store.
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.stored
}

// SetRememberMe makes the cookie persistent and the session last
// Config.RememberFor (on), or a browser-session cookie with the normal
// timeouts (off).
func (s *Session) SetRememberMe(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.Remember != on {
		s.rec.Remember = on
		s.metaDirty, s.rememberSet = true, true
		s.sendCookie = s.sendCookie || s.stored // a new session sends its cookie anyway
	}
}

// dirty reports whether a save must write the record. The caller holds mu.
func (s *Session) dirty() bool { return len(s.changed) > 0 || s.metaDirty }
