package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// recordVersion is the format of stored records; a record of another format
// is treated as no session.
const recordVersion = 1

// record is a session as stored: metadata for the server-side timeouts and
// the session list, and the application's values as JSON.
type record struct {
	V        int                        `json:"v"`
	User     string                     `json:"u,omitempty"`  // bound user ID
	Tag      string                     `json:"t,omitempty"`  // its tag, as in the key
	Created  int64                      `json:"c"`            // unix ms; absolute timeout counts from here
	LastSeen int64                      `json:"l"`            // unix ms, to TouchInterval
	Remember bool                       `json:"r,omitempty"`  // "remember me"
	UA       string                     `json:"ua,omitempty"` // user agent, truncated
	IP       string                     `json:"ip,omitempty"` // IP hint (a network, not an address)
	Data     map[string]json.RawMessage `json:"d,omitempty"`
}

func (r *record) encode() ([]byte, error) { return json.Marshal(r) }

func decodeRecord(b []byte) (*record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("decode session: format %d, want %d", r.V, recordVersion)
	}
	if r.Data == nil {
		r.Data = map[string]json.RawMessage{}
	}
	return &r, nil
}

func (r *record) clone() *record {
	c := *r
	c.Data = maps.Clone(r.Data)
	if c.Data == nil {
		c.Data = map[string]json.RawMessage{}
	}
	return &c
}

func ms(t time.Time) int64            { return t.UnixMilli() }
func fromMS(v int64) time.Time        { return time.UnixMilli(v) }
func (r *record) created() time.Time  { return fromMS(r.Created) }
func (r *record) lastSeen() time.Time { return fromMS(r.LastSeen) }

// timeouts returns the record's idle and absolute timeouts under cfg.
func (r *record) timeouts(cfg *Config) (idle, absolute time.Duration) {
	if r.Remember {
		return cfg.RememberFor, cfg.RememberFor
	}
	return cfg.IdleTimeout, cfg.AbsoluteTimeout
}

// expired reports whether the session is over at now, by either timeout.
func (r *record) expired(cfg *Config, now time.Time) bool {
	idle, abs := r.timeouts(cfg)
	return now.Sub(r.lastSeen()) >= idle || now.Sub(r.created()) >= abs
}

// ttl is how long the store should keep the record from now: until its idle
// deadline, but never past its absolute one. It is at least a millisecond.
func (r *record) ttl(cfg *Config, now time.Time) time.Duration {
	idle, abs := r.timeouts(cfg)
	d := min(idle, r.created().Add(abs).Sub(now))
	return max(d, time.Millisecond)
}

// absoluteEnd is when the session ends at the latest.
func (r *record) absoluteEnd(cfg *Config) time.Time {
	_, abs := r.timeouts(cfg)
	return r.created().Add(abs)
}
