package integration

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// MSET and MGET of more keys than one chunk (resp.chunkKeys), on every
// node of a cluster, with a key named twice and keys that do not exist:
// written through one node, read through another, as redis-server answers.
func TestRESP_MSetAndMGetOfManyKeys(t *testing.T) {
	forEachTarget(t, func(t *testing.T, addrs []string) {
		ctx := context.Background()
		w := goredis.NewClient(&goredis.Options{Addr: addrs[0]})
		r := goredis.NewClient(&goredis.Options{Addr: addrs[len(addrs)-1]})
		t.Cleanup(func() { w.Close(); r.Close() })
		const n = 1000
		key := func(i int) string { return fmt.Sprintf("many:%04d", i) }
		var pairs []any
		for i := range n {
			pairs = append(pairs, key(i), fmt.Sprintf("first-%d", i))
			if i == 10 {
				pairs = append(pairs, key(3), "second-3") // the last value of a key wins,
			}
		}
		pairs = append(pairs, key(7), "second-7") // in the same chunk or another
		if err := w.MSet(ctx, pairs...).Err(); err != nil {
			t.Fatalf("MSET of %d keys: %v", n, err)
		}
		var keys []string
		var want []any
		for i := range n {
			keys, want = append(keys, key(i)), append(want, fmt.Sprintf("first-%d", i))
			if i%10 == 9 { // and a key that does not exist
				keys, want = append(keys, fmt.Sprintf("many:none:%d", i)), append(want, nil)
			}
		}
		want[3], want[7] = "second-3", "second-7"
		got, err := r.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatalf("MGET of %d keys: %v", len(keys), err)
		}
		if len(got) != len(keys) {
			t.Fatalf("MGET of %d keys answered %d values", len(keys), len(got))
		}
		for i, v := range got {
			if v != want[i] {
				t.Errorf("MGET value %d (%s): got %v; want %v", i, keys[i], v, want[i])
			}
		}
		if deleted, err := w.Del(ctx, keys...).Result(); err != nil || deleted != n {
			t.Errorf("DEL of the keys: %d, %v; want %d", deleted, err, n)
		}
	})
}
