package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloakroom/cloakroom/client"
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

// userPartition returns the partition holding the user's sessions, after
// checking once that the cluster has Config.Partitions partitions: with a
// wrong count, listing would find nothing and logging out everywhere would
// silently delete nothing.
func (m *Manager) userPartition(ctx context.Context, tag string) (int32, error) {
	if !m.partsOK.Load() {
		if err := m.checkPartitions(ctx); err != nil {
			return 0, err
		}
		m.partsOK.Store(true)
	}
	return int32(ring.Partition(m.keys.userSlotKey(tag), m.cfg.Partitions)), nil
}

// ErrPartitions is returned by per-user operations when the cluster's
// partition count is not Config.Partitions.
var ErrPartitions = errors.New("session: Config.Partitions does not match the cluster")

// checkPartitions probes the last partition (which must exist) and the one
// after it (which must not).
func (m *Manager) checkPartitions(ctx context.Context) error {
	n := int32(m.cfg.Partitions)
	probe := func(p int32) error {
		_, err := m.cfg.Client.Do(ctx, &protocol.Request{Op: protocol.OpScan, Partition: p, Count: 1, Pattern: m.cfg.KeyPrefix + "\x00"})
		return err
	}
	if err := probe(n - 1); err != nil {
		if errors.Is(err, client.ErrBadRequest) {
			return fmt.Errorf("%w: partition %d does not exist", ErrPartitions, n-1)
		}
		return err
	}
	if err := probe(n); err == nil {
		return fmt.Errorf("%w: the cluster has more than %d partitions", ErrPartitions, n)
	} else if !errors.Is(err, client.ErrBadRequest) {
		return err
	}
	return nil
}

// millis rounds ttl up to whole milliseconds.
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
