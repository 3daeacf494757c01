package integration

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/internal/testtool"

	"github.com/cloakroom/cloakroom/node"
	"github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
)

// startRESPNode starts one in-process node with every listener on a
// kernel-picked loopback port and returns it.
func startRESPNode(t *testing.T, adjust func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "resp-1"
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "", ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if adjust != nil {
		adjust(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestRESP_Node_GoRedisAndRedigo(t *testing.T) {
	n := startRESPNode(t, func(c *node.Config) { c.Password = "s3cret"; c.AllowFlush = true })
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: n.RESPAddr(), Password: "s3cret"})
	defer rdb.Close()
	if err := rdb.Set(ctx, "sess:a", "coat", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if v, err := rdb.Get(ctx, "sess:a").Result(); err != nil || v != "coat" {
		t.Errorf("GET: got %q, %v; want coat", v, err)
	}
	if n, err := rdb.Del(ctx, "sess:a", "sess:b", "sess:c").Result(); err != nil || n != 1 {
		t.Errorf("DEL: got %d, %v; want 1", n, err)
	}

	c, err := redis.Dial("tcp", n.RESPAddr(), redis.DialPassword("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("SET", "k", "v", "EX", 60, "NX"); err != nil {
		t.Fatalf("SET EX NX: %v", err)
	}
	if ttl, err := redis.Int(c.Do("TTL", "k")); err != nil || ttl != 60 {
		t.Errorf("TTL after SET EX 60 NX: got %d, %v; want 60", ttl, err)
	}
	if ok, err := redis.String(c.Do("FLUSHALL")); err != nil || ok != "OK" {
		t.Errorf("FLUSHALL with --allow-flush: got %q, %v", ok, err)
	}

	if _, err := redis.Dial("tcp", n.RESPAddr(), redis.DialPassword("wrong")); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: got %v; want WRONGPASS", err)
	}
}

func TestRESP_Node_FlushAllDisabledByDefault(t *testing.T) {
	n := startRESPNode(t, nil)
	rdb := goredis.NewClient(&goredis.Options{Addr: n.RESPAddr()})
	defer rdb.Close()
	err := rdb.FlushAll(context.Background()).Err()
	if err == nil || !strings.Contains(err.Error(), "--allow-flush") {
		t.Errorf("FLUSHALL: got %v; want an error naming --allow-flush", err)
	}
}

func TestRESP_Node_ClusterClient(t *testing.T) {
	n := startRESPNode(t, func(c *node.Config) { c.RESPClusterMode = true })
	ctx := context.Background()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{n.RESPAddr()}})
	defer rdb.Close()
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil || len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 {
		t.Fatalf("CLUSTER SLOTS: got %+v, %v; want one range 0-16383", slots, err)
	}
	if got := slots[0].Nodes[0].Addr; got != n.RESPAddr() {
		t.Errorf("CLUSTER SLOTS address: got %s; want %s", got, n.RESPAddr())
	}
	for _, k := range []string{"a", "b", "c", "{user:1}x"} {
		if err := rdb.Set(ctx, k, k, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
			t.Errorf("GET %s: got %q, %v", k, v, err)
		}
	}
	if _, err := rdb.Get(ctx, "missing").Result(); !errors.Is(err, goredis.Nil) {
		t.Errorf("GET missing: got %v; want redis.Nil", err)
	}
}

func TestRESP_Node_RedisCLI(t *testing.T) {
	cli := testtool.Look(t, "redis-cli", "redis-tools")
	n := startRESPNode(t, nil)
	host, port, _ := net.SplitHostPort(n.RESPAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader("set k v px 60000\npttl k\ninfo keyspace\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli: %v\n%s", err, out)
	}
	for _, want := range []string{"OK", "db0:keys=1,expires=1,"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("redis-cli output lacks %q:\n%s", want, out)
		}
	}
}

// A transaction may read at most what one reply carries (about 1 MiB):
// MULTI, 200 GETs of a 1 MiB session and EXEC is refused before it copies
// the value 200 times, and nothing in it runs. A pipeline of the same GETs
// is not a transaction: every GET is answered with the value, as Redis
// answers it.
func TestRESP_Node_TransactionReadsAreBoundedPipelinesAreNot(t *testing.T) {
	n := startRESPNode(t, nil)
	ctx := context.Background()
	// A read deadline that covers the whole 64 MiB pipeline below: under
	// the race detector its copies take about 5 s (tsan checks every byte
	// moved), past go-redis's default of 3 s, which then retries the
	// pipeline until it gives up.
	rdb := goredis.NewClient(&goredis.Options{Addr: n.RESPAddr(), ReadTimeout: time.Minute})
	defer rdb.Close()
	big := strings.Repeat("v", 1<<20)
	if err := rdb.Set(ctx, "{u}big", big, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, "{u}w", "x", time.Minute)
		for range 200 {
			p.Get(ctx, "{u}big")
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "more than one reply may carry") {
		t.Errorf("MULTI, 200 GETs of 1 MiB, EXEC: %v; want the atomic step refused", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("the refused transaction allocated %d MB; want under 64", got>>20)
	}
	if err := rdb.Get(ctx, "{u}w").Err(); !errors.Is(err, goredis.Nil) {
		t.Errorf("the refused transaction's SET: GET says %v; want nil (not run)", err)
	}

	// DEL in a transaction counts the keys it deletes and carries no value
	// back: two sessions of 600 KB, over a reply's worth together, go.
	for _, k := range []string{"{u}a", "{u}b"} {
		if err := rdb.Set(ctx, k, strings.Repeat("s", 600<<10), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var del *goredis.IntCmd
	if _, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		del = p.Del(ctx, "{u}a", "{u}b")
		return nil
	}); err != nil || del.Val() != 2 {
		t.Errorf("MULTI, DEL of two 600 KB sessions, EXEC: %d, %v; want 2", del.Val(), err)
	}

	cmds, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for range 64 {
			p.Get(ctx, "{u}big")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline of 64 GETs of 1 MiB: %v", err)
	}
	for i, c := range cmds {
		if v, err := c.(*goredis.StringCmd).Result(); err != nil || len(v) != len(big) {
			t.Fatalf("pipelined GET %d: %d bytes, %v; want the value", i, len(v), err)
		}
	}
}
