package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/redis/go-redis/v9"
)

// benchTarget is a store the load generator drives: a Cloakroom node
// through the Go client, or a Redis server through go-redis, so that both
// run the very same workload.
type benchTarget interface {
	// get reads key and reports whether it existed.
	get(ctx context.Context, key string) (bool, error)
	// set writes key with a time to live.
	set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// describe names the target for the report.
	describe() string
	close() error
}

// cloakroomTarget drives Cloakroom nodes through the Go client.
type cloakroomTarget struct {
	c     *client.Client
	addrs []string
}

var _ benchTarget = (*cloakroomTarget)(nil)

func newCloakroomTarget(addrs []string, password string, conns int) (*cloakroomTarget, error) {
	c, err := client.New(client.Config{Addrs: addrs, ConnsPerNode: conns, Password: password})
	if err != nil {
		return nil, err
	}
	return &cloakroomTarget{c: c, addrs: addrs}, nil
}

func (t *cloakroomTarget) get(ctx context.Context, key string) (bool, error) {
	_, err := t.c.Get(ctx, key)
	if errors.Is(err, client.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *cloakroomTarget) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return t.c.Set(ctx, key, value, ttl)
}

func (t *cloakroomTarget) describe() string { return fmt.Sprintf("cloakroom %v", t.addrs) }
func (t *cloakroomTarget) close() error     { return t.c.Close() }

// redisTarget drives a Redis server through go-redis with one pooled
// connection per worker, the way a Go web application would use it.
type redisTarget struct {
	c    *redis.Client
	addr string
}

var _ benchTarget = (*redisTarget)(nil)

func newRedisTarget(addr string, poolSize int) *redisTarget {
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		PoolSize:     poolSize,
		MinIdleConns: poolSize,
	})
	return &redisTarget{c: c, addr: addr}
}

func (t *redisTarget) get(ctx context.Context, key string) (bool, error) {
	_, err := t.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (t *redisTarget) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return t.c.Set(ctx, key, value, ttl).Err()
}

func (t *redisTarget) describe() string { return "redis " + t.addr }
func (t *redisTarget) close() error     { return t.c.Close() }

// benchKeys returns n distinct session-like keys, "session:" and 32 hex
// digits (40 bytes), the same for every run and target.
func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	buf := make([]byte, 0, len(prefix)+32)
	for i := range keys {
		buf = append(buf[:0], prefix...)
		buf = appendHex16(buf, mix64(uint64(i)))
		buf = appendHex16(buf, mix64(uint64(i)^0x9e3779b97f4a7c15))
		keys[i] = string(buf)
	}
	return keys
}

// mix64 is the SplitMix64 finaliser: a bijection, so distinct inputs give
// distinct keys.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// appendHex16 appends x as exactly 16 lowercase hex digits.
func appendHex16(b []byte, x uint64) []byte {
	s := strconv.FormatUint(x, 16)
	for range 16 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// benchValue returns a value of n printable bytes.
func benchValue(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	v := make([]byte, n)
	for i := range v {
		v[i] = alphabet[mix64(uint64(i))%uint64(len(alphabet))]
	}
	return v
}
