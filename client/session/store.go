package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// The store operations the package needs, over the client. Ops that carry a
// version use client.Do so that the new version comes back in one round trip.

// getAndTouch reads key and slides its TTL in one round trip, returning the
// value and the version after the touch.
func (m *Manager) getAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, uint64, error) {
	resp, err := m.cfg.Client.Do(ctx, &protocol.Request{Op: protocol.OpGetAndTouch, Key: key, TTL: millis(ttl)})
	if err != nil {
		return nil, 0, err
	}
	return resp.Value, resp.Version, nil
}

// touch sets key's TTL and returns the new version.
func (m *Manager) touch(ctx context.Context, key string, ttl time.Duration) (uint64, error) {
	resp, err := m.cfg.Client.Do(ctx, &protocol.Request{Op: protocol.OpTouch, Key: key, TTL: millis(ttl)})
	if err != nil {
		return 0, err
	}
	return resp.Version, nil
}

// scanUser lists the keys of every live session of the user with tag: one
// partition, filtered by the user's key pattern.
func (m *Manager) scanUser(ctx context.Context, tag string) ([]string, error) {
	part, err := m.userPartition(ctx, tag)
	if err != nil {
		return nil, err
	}
	var keys []string
	var cursor uint64
	for {
		resp, err := m.cfg.Client.Do(ctx, &protocol.Request{
			Op: protocol.OpScan, Partition: part, Cursor: cursor, Count: 256, Pattern: m.keys.userPattern(tag),
		})
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		keys = append(keys, resp.Keys...)
		if cursor = resp.Cursor; cursor == 0 {
			return keys, nil
		}
	}
}

// deleteUser deletes every session of the user with tag, atomically on the
// partition's owner, and returns how many there were.
func (m *Manager) deleteUser(ctx context.Context, tag string) (int, error) {
	part, err := m.userPartition(ctx, tag)
	if err != nil {
		return 0, err
	}
	resp, err := m.cfg.Client.Do(ctx, &protocol.Request{
		Op: protocol.OpDeleteMatch, Partition: part, Pattern: m.keys.userPattern(tag),
	})
	if err != nil {
		return 0, fmt.Errorf("log out everywhere: %w", err)
	}
	return int(resp.N), nil
}

// userPartition returns the partition holding the user's sessions.
func (m *Manager) userPartition(ctx context.Context, tag string) (int32, error) {
	n, err := m.partitions(ctx)
	if err != nil {
		return 0, err
	}
	return int32(ring.Partition(m.keys.userSlotKey(tag), n)), nil
}

// ErrPartitions is returned by per-user operations when Config.Partitions
// is not the cluster's partition count: listing would find nothing and
// logging out everywhere would silently delete nothing.
var ErrPartitions = errors.New("session: Config.Partitions does not match the cluster")

// partitions returns the cluster's partition count, asking a node once.
func (m *Manager) partitions(ctx context.Context) (int, error) {
	if n := m.parts.Load(); n > 0 {
		return int(n), nil
	}
	n, err := m.cfg.Client.Partitions(ctx)
	if err != nil {
		return 0, fmt.Errorf("session: %w", err)
	}
	if m.cfg.Partitions != 0 && m.cfg.Partitions != n {
		return 0, fmt.Errorf("%w: configured %d, the cluster has %d", ErrPartitions, m.cfg.Partitions, n)
	}
	m.parts.Store(int32(n))
	return n, nil
}

// millis rounds ttl up to whole milliseconds.
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
