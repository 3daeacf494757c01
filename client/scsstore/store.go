package scsstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Compile-time checks that Store is every kind of scs store it claims.
var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// Config configures a Store. Zero fields take the defaults documented on
// each; Client is required.
type Config struct {
	// Client is the store's client. Required.
	Client *client.Client
	// Prefix starts every key. Zero means "scs:session:". It may not
	// contain glob characters.
	Prefix string
	// Partitions is the cluster's partition count, for All. Zero means ask
	// the cluster (client.Partitions); a non-zero value is checked against
	// it, since with a wrong count All would miss sessions or fail.
	Partitions int
	// Now is the clock that turns Commit's expiry into a TTL. Nil means
	// time.Now.
	Now func() time.Time
}

// Store is an scs session store backed by Cloakroom. It is safe for
// concurrent use.
type Store struct {
	cfg Config
}

// New validates cfg and returns a Store. It does no I/O.
func New(cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "scs:session:"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("client: required"))
	}
	if strings.ContainsAny(cfg.Prefix, `*?[]\`) {
		errs = append(errs, fmt.Errorf("prefix %q: may not contain glob characters", cfg.Prefix))
	}
	if cfg.Partitions < 0 || cfg.Partitions > ring.MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions: %d; must be 0 (ask the cluster) or in [1,%d]", cfg.Partitions, ring.MaxPartitions))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("scsstore: invalid config: %w", err)
	}
	return &Store{cfg: cfg}, nil
}

// key is the store key for token: the prefix and the token's SHA-256. The
// token is 256 random bits, so an unkeyed hash cannot be reversed.
func (s *Store) key(token string) string {
	h := sha256.Sum256([]byte(token))
	return s.cfg.Prefix + base64.RawURLEncoding.EncodeToString(h[:])
}

// encode packs token and data as uvarint(len(token)) | token | data.
func encode(token string, data []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(token)+len(data)), uint64(len(token)))
	b = append(b, token...)
	return append(b, data...)
}

func decode(v []byte) (token string, data []byte, ok bool) {
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) {
		return "", nil, false
	}
	return string(v[w : w+int(n)]), v[w+int(n):], true
}

// FindCtx returns the data of the session with token; found is false if
// there is none, it expired, or token is malformed.
func (s *Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if token == "" {
		return nil, false, nil
	}
	v, err := s.cfg.Client.Get(ctx, s.key(token))
	if errors.Is(err, client.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("scsstore: find: %w", err)
	}
	got, data, ok := decode(v)
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		return nil, false, nil
	}
	return data, true, nil
}

// CommitCtx stores the session's data until expiry. A session whose expiry
// has passed is deleted instead.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ttl := expiry.Sub(s.cfg.Now())
	if ttl <= 0 {
		return s.DeleteCtx(ctx, token)
	}
	if err := s.cfg.Client.Set(ctx, s.key(token), encode(token, b), ttl); err != nil {
		return fmt.Errorf("scsstore: commit: %w", err)
	}
	return nil
}

// DeleteCtx deletes the session; deleting a missing one is not an error.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	if _, err := s.cfg.Client.Delete(ctx, s.key(token)); err != nil {
		return fmt.Errorf("scsstore: delete: %w", err)
	}
	return nil
}

// AllCtx returns every live session, token to data, scanning each partition
// of the cluster in turn.
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	n, err := s.cfg.Client.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("scsstore: all: %w", err)
	}
	if s.cfg.Partitions != 0 && s.cfg.Partitions != n {
		return nil, fmt.Errorf("scsstore: all: Config.Partitions is %d, the cluster has %d", s.cfg.Partitions, n)
	}
	out := map[string][]byte{}
	for p := range n {
		var cursor uint64
		for {
			resp, err := s.cfg.Client.Do(ctx, &protocol.Request{
				Op: protocol.OpScan, Partition: int32(p), Cursor: cursor, Count: 256, Pattern: s.cfg.Prefix + "*",
			})
			if err != nil {
				return nil, fmt.Errorf("scsstore: all: partition %d: %w", p, err)
			}
			for _, k := range resp.Keys {
				v, err := s.cfg.Client.Get(ctx, k)
				if errors.Is(err, client.ErrNotFound) {
					continue // expired or deleted since the scan
				}
				if err != nil {
					return nil, fmt.Errorf("scsstore: all: %w", err)
				}
				if token, data, ok := decode(v); ok && s.key(token) == k {
					out[token] = data
				}
			}
			if cursor = resp.Cursor; cursor == 0 {
				break
			}
		}
	}
	return out, nil
}

// Find is FindCtx with a background context.
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with a background context.
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with a background context.
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// All is AllCtx with a background context.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}
