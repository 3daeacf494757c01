package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// Errors returned by the package; check them with errors.Is.
var (
	// ErrNoSession: the context carries no session (the handler is not
	// behind Manager.Handler).
	ErrNoSession = errors.New("session: no session in context")
	// ErrConflict: a concurrent request changed the same value of the same
	// session, so this request's change could not be merged. The middleware
	// answers 409 Conflict; the client may retry.
	ErrConflict = errors.New("session: concurrent change to the same value")
	// ErrSaveFailed: the session could not be saved, so the middleware sent
	// an error response instead of the handler's; returned by Write.
	ErrSaveFailed = errors.New("session: save failed; response replaced")
)

// Manager issues, loads and saves sessions in a Cloakroom cluster. Create
// one per application with New and share it; it is safe for concurrent use
// and starts no goroutines.
type Manager struct {
	cfg   Config
	keys  keyer
	log   *slog.Logger
	parts atomic.Int32 // the cluster's partition count, once known
}

// New validates cfg and returns a Manager. It does no I/O.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("session: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Manager{cfg: cfg, keys: newKeyer(cfg.Secret, cfg.KeyPrefix), log: cfg.Logger}, nil
}

// Login binds the request's session to userID under a new session ID: the
// old ID stops working at once (no session fixation), the values of an
// anonymous session carry over, those of another user's session do not, and
// the absolute timeout restarts. The new cookie goes out with the response.
func (m *Manager) Login(ctx context.Context, userID string) error {
	if userID == "" {
		return errors.New("session: login: empty user ID")
	}
	return m.rotate(ctx, userID, true)
}

// Renew gives the request's session a new ID, keeping its user and values:
// call it on any change of privilege other than login.
func (m *Manager) Renew(ctx context.Context) error {
	return m.rotate(ctx, "", false)
}

func (m *Manager) rotate(ctx context.Context, userID string, login bool) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	s := FromContext(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.cfg.Now()
	rec := s.rec.clone()
	if login {
		if rec.User != "" && rec.User != userID {
			rec.Data = nil // another user's values stay with them
		}
		rec.User, rec.Tag, rec.Created = userID, m.keys.userTag(userID), ms(now)
		rec.UA, rec.IP = s.ua, s.ip
	}
	rec.LastSeen = ms(now)
	id := newID()
	key := m.keys.key(rec.Tag, m.keys.idHash(id))
	b, err := rec.encode()
	if err != nil {
		return err
	}
	v, err := m.cfg.Client.Add(ctx, key, b, rec.ttl(&m.cfg, now))
	if err != nil {
		return fmt.Errorf("session: rotate: %w", err)
	}
	if s.stored {
		if _, err := m.cfg.Client.Delete(ctx, s.key); err != nil {
			_, _ = m.cfg.Client.Delete(context.WithoutCancel(ctx), key)
			return fmt.Errorf("session: rotate: delete old session: %w", err)
		}
	}
	s.id, s.tag, s.key, s.version, s.rec, s.stored = id, rec.Tag, key, v, rec, true
	s.loaded, s.changed, s.metaDirty, s.rememberSet = maps.Clone(rec.Data), map[string]json.RawMessage{}, false, false
	s.sendCookie = true
	return nil
}

// Logout deletes the request's session from the store, so that its ID is
// dead everywhere when Logout returns, and expires its cookie. The handler
// may go on using an empty anonymous session (for a flash message, say),
// which gets a new ID if it is stored.
func (m *Manager) Logout(ctx context.Context) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	s := FromContext(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stored {
		if _, err := m.cfg.Client.Delete(ctx, s.key); err != nil {
			return fmt.Errorf("session: logout: %w", err)
		}
	}
	had := s.stored || s.hadCookie
	s.reset()
	s.sendCookie = had
	return nil
}

// SessionInfo describes one of a user's sessions, for a "where you're
// logged in" page. It never contains the session ID.
type SessionInfo struct {
	// Handle names the session for RevokeSession: a keyed hash of its ID.
	Handle     string    `json:"handle"`
	Created    time.Time `json:"created"`     // login time
	LastSeen   time.Time `json:"last_seen"`   // to Config.TouchInterval
	UserAgent  string    `json:"user_agent"`  // at login, first 200 bytes
	IPHint     string    `json:"ip_hint"`     // the client's /24 or /48 network at login
	RememberMe bool      `json:"remember_me"` // the cookie persists
	// Current is set on the session of the request whose context was given.
	Current bool `json:"current"`
}

// ListSessions returns userID's live sessions, most recently seen first.
// Expired sessions are not listed: the store drops them by itself.
func (m *Manager) ListSessions(ctx context.Context, userID string) ([]SessionInfo, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	if userID == "" {
		return nil, nil // anonymous sessions belong to no one
	}
	tag := m.keys.userTag(userID)
	keys, err := m.scanUser(ctx, tag)
	if err != nil {
		return nil, err
	}
	cur := ""
	if s := FromContext(ctx); s != nil {
		cur = s.Handle()
	}
	now := m.cfg.Now()
	out := make([]SessionInfo, 0, len(keys))
	for _, k := range keys {
		b, err := m.cfg.Client.Get(ctx, k)
		if err != nil {
			continue // gone since the scan
		}
		rec, err := decodeRecord(b)
		if err != nil || rec.Tag != tag || rec.User != userID || rec.expired(&m.cfg, now) {
			continue
		}
		h := k[len(k)-hashLen:]
		out = append(out, SessionInfo{
			Handle: h, Created: rec.created(), LastSeen: rec.lastSeen(), UserAgent: rec.UA,
			IPHint: rec.IP, RememberMe: rec.Remember, Current: h == cur,
		})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.Handle, b.Handle))
	})
	return out, nil
}

// LogoutEverywhere deletes every session of userID, on whichever node holds
// them, in one atomic step: when it returns none of them is readable, and a
// request still running in one of them cannot write it back. It returns how
// many sessions there were. The request's own session, if it is one of
// them, gets its cookie expired.
func (m *Manager) LogoutEverywhere(ctx context.Context, userID string) (int, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	if userID == "" {
		return 0, nil
	}
	tag := m.keys.userTag(userID)
	n, err := m.deleteUser(ctx, tag)
	if err != nil {
		return 0, err
	}
	if s := FromContext(ctx); s != nil {
		s.mu.Lock()
		if s.stored && s.tag == tag {
			s.reset()
			s.sendCookie = true
		}
		s.mu.Unlock()
	}
	return n, nil
}

// RevokeSession deletes the session of userID with the given handle (from
// SessionInfo.Handle): "log out that device". It reports whether it existed.
func (m *Manager) RevokeSession(ctx context.Context, userID, handle string) (bool, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	if !validHandle(handle) {
		return false, nil
	}
	n, err := m.cfg.Client.Delete(ctx, m.keys.key(m.keys.userTag(userID), handle))
	if err != nil {
		return false, fmt.Errorf("session: revoke: %w", err)
	}
	return n > 0, nil
}
