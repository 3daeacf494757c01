package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/cloakroom/cloakroom/client"
)

// save writes s to the store if it changed. A session never stored is
// created under a fresh ID; a stored one is written with CompareAndSwap
// against the version it was read at. On a version conflict save re-reads
// the session, merges this request's changes into it and tries again: values
// this request did not touch keep what other requests wrote, and a value
// both changed (differently) fails with ErrConflict rather than losing one
// write silently. A session deleted meanwhile (logout, log out everywhere,
// expiry) stays deleted: its changes are dropped and its cookie expired.
// The caller holds s.mu.
func (m *Manager) save(ctx context.Context, s *Session) error {
	if !s.dirty() {
		return nil
	}
	now := m.cfg.Now()
	if !s.stored {
		s.metaDirty = false
		if len(s.rec.Data) == 0 {
			clear(s.changed) // nothing worth creating a session for
			return nil
		}
		s.rec.LastSeen = ms(now)
		return m.create(ctx, s)
	}
	for attempt := 0; ; attempt++ {
		b, err := s.rec.encode()
		if err != nil {
			return err
		}
		v, err := m.cfg.Client.CompareAndSwap(ctx, s.key, b, s.rec.ttl(&m.cfg, now), s.version)
		switch {
		case err == nil:
			s.version = v
			s.loaded, s.changed, s.metaDirty, s.rememberSet = maps.Clone(s.rec.Data), map[string]json.RawMessage{}, false, false
			return nil
		case errors.Is(err, client.ErrNotFound):
			m.gone(s)
			return nil
		case errors.Is(err, client.ErrConflict) && attempt < m.cfg.MaxRetries:
			if err := m.refresh(ctx, s); err != nil || !s.stored {
				return err
			}
		case errors.Is(err, client.ErrConflict):
			return fmt.Errorf("%w (gave up after %d merges)", ErrConflict, attempt)
		default:
			return fmt.Errorf("session: save: %w", err)
		}
	}
}

// create stores a new anonymous session under a fresh ID.
func (m *Manager) create(ctx context.Context, s *Session) error {
	b, err := s.rec.encode()
	if err != nil {
		return err
	}
	id := newID()
	key := m.keys.key(s.rec.Tag, m.keys.idHash(id))
	v, err := m.cfg.Client.Add(ctx, key, b, s.rec.ttl(&m.cfg, m.cfg.Now()))
	if err != nil {
		return fmt.Errorf("session: create: %w", err)
	}
	s.id, s.tag, s.key, s.version, s.stored = id, s.rec.Tag, key, v, true
	s.loaded, s.changed = maps.Clone(s.rec.Data), map[string]json.RawMessage{}
	s.sendCookie = true
	return nil
}

// gone handles a session deleted while the request ran: it is not written
// back, and the response expires its cookie.
func (m *Manager) gone(s *Session) {
	m.log.Info("session: dropped changes to a session deleted during the request")
	s.reset()
	s.changed = map[string]json.RawMessage{}
	s.sendCookie = true
}

// refresh re-reads s after a version conflict and applies this request's
// changes on top of what is stored now.
func (m *Manager) refresh(ctx context.Context, s *Session) error {
	it, err := m.cfg.Client.GetItem(ctx, s.key)
	if errors.Is(err, client.ErrNotFound) {
		m.gone(s)
		return nil
	}
	if err != nil {
		return fmt.Errorf("session: save: re-read: %w", err)
	}
	fresh, err := decodeRecord(it.Value)
	if err != nil {
		return fmt.Errorf("session: save: %w", err)
	}
	base := maps.Clone(fresh.Data)
	for k, v := range s.changed {
		orig, had := s.loaded[k]
		cur, has := fresh.Data[k]
		if had != has || !bytes.Equal(orig, cur) { // another request changed k too
			if (v == nil && !has) || (v != nil && has && bytes.Equal(v, cur)) {
				continue // both wrote the same thing
			}
			return ErrConflict
		}
		if v == nil {
			delete(fresh.Data, k)
		} else {
			fresh.Data[k] = v
		}
	}
	fresh.LastSeen = max(fresh.LastSeen, s.rec.LastSeen)
	if s.rememberSet {
		fresh.Remember = s.rec.Remember
	}
	s.rec, s.version, s.loaded = fresh, it.Version, base
	return nil
}
