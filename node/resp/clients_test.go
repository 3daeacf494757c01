package resp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
)

func newGoRedis(t *testing.T, addr string, proto int) *goredis.Client {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: proto, PoolSize: 4})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestGoRedis_SessionFlow(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+itoa(proto), func(t *testing.T) {
			ts := startServer(t)
			ctx := context.Background()
			rdb := newGoRedis(t, ts.addr, proto)
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING: %v", err)
			}
			if err := rdb.Set(ctx, "sess:1", "coat", 30*time.Minute).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if v, err := rdb.Get(ctx, "sess:1").Result(); err != nil || v != "coat" {
				t.Errorf("GET: got %q, %v; want coat", v, err)
			}
			if _, err := rdb.Get(ctx, "nope").Result(); !errors.Is(err, goredis.Nil) {
				t.Errorf("GET missing: got %v; want redis.Nil", err)
			}
			if ok, err := rdb.SetNX(ctx, "sess:1", "x", time.Minute).Result(); err != nil || ok {
				t.Errorf("SETNX existing: got %v, %v; want false", ok, err)
			}
			if ok, err := rdb.Expire(ctx, "sess:1", time.Hour).Result(); err != nil || !ok {
				t.Errorf("EXPIRE: got %v, %v; want true", ok, err)
			}
			if d, err := rdb.TTL(ctx, "sess:1").Result(); err != nil || d != time.Hour {
				t.Errorf("TTL: got %v, %v; want 1h", d, err)
			}
			if err := rdb.ExpireAt(ctx, "sess:1", time.Now().Add(time.Hour)).Err(); err != nil {
				t.Errorf("EXPIREAT: %v", err)
			}
			pipe := rdb.TxPipeline()
			pipe.Set(ctx, "sess:2", "a", 0)
			pipe.PExpireAt(ctx, "sess:2", time.Now().Add(time.Minute))
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("MULTI/EXEC: %v", err)
			}
			if d, err := rdb.PTTL(ctx, "sess:2").Result(); err != nil || d <= 0 || d > time.Minute {
				t.Errorf("PTTL after MULTI: got %v, %v; want (0, 1m]", d, err)
			}
			if n, err := rdb.Del(ctx, "sess:1", "sess:2", "nope").Result(); err != nil || n != 2 {
				t.Errorf("DEL: got %d, %v; want 2", n, err)
			}
			keys, err := rdb.Keys(ctx, "*").Result()
			if err != nil || len(keys) != 0 {
				t.Errorf("KEYS: got %q, %v; want none", keys, err)
			}
			if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
				t.Errorf("DBSIZE: got %d, %v; want 0", n, err)
			}
			if _, err := rdb.Info(ctx).Result(); err != nil {
				t.Errorf("INFO: %v", err)
			}
		})
	}
}

func TestGoRedis_Watch(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	rdb := newGoRedis(t, ts.addr, 3)
	rdb.Set(ctx, "n", "1", 0)
	err := rdb.Watch(ctx, func(tx *goredis.Tx) error {
		v, err := tx.Get(ctx, "n").Result()
		if err != nil {
			return err
		}
		rdb.Set(ctx, "n", "changed", 0) // another client writes
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, "n", v+"1", 0)
			return nil
		})
		return err
	}, "n")
	if !errors.Is(err, goredis.TxFailedErr) {
		t.Errorf("WATCH after a change: got %v; want TxFailedErr", err)
	}
	if v := rdb.Get(ctx, "n").Val(); v != "changed" {
		t.Errorf("value: got %q; want changed", v)
	}
}

func TestGoRedis_ClusterClient(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	ctx := context.Background()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{ts.addr}})
	t.Cleanup(func() { rdb.Close() })
	for i := range 50 {
		k := "user:" + itoa(i)
		if err := rdb.Set(ctx, k, k, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	for i := range 50 {
		k := "user:" + itoa(i)
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
			t.Errorf("GET %s: got %q, %v", k, v, err)
		}
	}
	if _, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, "{u1}a", "1", 0)
		p.Set(ctx, "{u1}b", "2", 0)
		return nil
	}); err != nil {
		t.Errorf("cluster MULTI/EXEC: %v", err)
	}
	if n, err := rdb.Exists(ctx, "{u1}a", "{u1}b").Result(); err != nil || n != 2 {
		t.Errorf("EXISTS: got %d, %v; want 2", n, err)
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil || len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 || slots[0].Nodes[0].Addr != ts.addr {
		t.Errorf("CLUSTER SLOTS: got %+v, %v", slots, err)
	}
}

func TestRedigo_SessionFlow(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.Password = "pw" })
	c, err := redis.Dial("tcp", ts.addr, redis.DialPassword("pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("SETEX", "s", 60, []byte{0, 1, 2}); err != nil {
		t.Fatalf("SETEX: %v", err)
	}
	if b, err := redis.Bytes(c.Do("GET", "s")); err != nil || string(b) != "\x00\x01\x02" {
		t.Errorf("GET: got %q, %v", b, err)
	}
	c.Send("MULTI")
	c.Send("SET", "s", "v2")
	c.Send("PEXPIREAT", "s", time.Now().Add(time.Minute).UnixMilli())
	r, err := redis.Values(c.Do("EXEC"))
	if err != nil || len(r) != 2 {
		t.Errorf("EXEC: got %v, %v", r, err)
	}
	if n, err := redis.Int(c.Do("TTL", "s")); err != nil || n != 60 {
		t.Errorf("TTL: got %d, %v; want 60", n, err)
	}
	if n, err := redis.Int(c.Do("DEL", "s")); err != nil || n != 1 {
		t.Errorf("DEL: got %d, %v; want 1", n, err)
	}
	if _, err := redis.String(c.Do("GET", "s")); !errors.Is(err, redis.ErrNil) {
		t.Errorf("GET after DEL: got %v; want ErrNil", err)
	}
}

func TestGoRedis_ClusterClient_RoutesToOwners(t *testing.T) {
	a := startServer(t, func(cfg *Config, b *storeBackend) { cfg.ClusterMode = true; b.name = "node-a" })
	b := startServer(t, func(cfg *Config, b *storeBackend) { cfg.ClusterMode = true; b.name = "node-b" })
	topo := &Topology{Epoch: 2, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{0, 8191}}, Primary: Peer{Name: "node-a", Addr: a.addr}},
		{Slots: [][2]uint16{{8192, 16383}}, Primary: Peer{Name: "node-b", Addr: b.addr}},
	}}
	a.b.topo.Store(topo)
	b.b.topo.Store(topo)

	ctx := context.Background()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{a.addr}})
	t.Cleanup(func() { rdb.Close() })
	for _, k := range []string{"a", "b", "foo", "{user:7}s"} { // slots 15495, 3300, 12182, 7797
		if err := rdb.Set(ctx, k, k, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		owner, other := a, b
		if ringSlot(k) >= 8192 {
			owner, other = b, a
		}
		if n := exists(owner, k); n != 1 {
			t.Errorf("%s on its owner: got %d; want 1", k, n)
		}
		if n := exists(other, k); n != 0 {
			t.Errorf("%s on the other node: got %d; want 0", k, n)
		}
	}
	// A plain client on the wrong node is redirected.
	plain := newGoRedis(t, a.addr, 2)
	if err := plain.Get(ctx, "foo").Err(); err == nil || err.Error() != "MOVED 12182 "+b.addr {
		t.Errorf("GET foo on node-a: got %v; want MOVED 12182 %s", err, b.addr)
	}
}

func ringSlot(k string) uint16 { return ring.Slot(k) }

// exists reports whether key is in the server's own store.
func exists(ts *testServer, key string) int64 {
	req := protocol.Request{Op: protocol.OpExists, Keys: []string{key}}
	var resp protocol.Response
	ts.b.Do(context.Background(), &req, &resp)
	return resp.N
}
