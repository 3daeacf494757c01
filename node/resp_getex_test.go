package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	goredis "github.com/redis/go-redis/v9"
)

// TestRESP_GetExInvalidTime_everyPath: GETEX with an invalid time answers
// a missing key's null and an existing key's error, whichever node holds
// the key, alone, pipelined and in MULTI, under RESP2 and RESP3. A time
// past the TTL bound (2^62 ms) is invalid too: in MULTI it is that
// command's error, not the whole transaction's.
func TestRESP_GetExInvalidTime_everyPath(t *testing.T) {
	c := nodetest.Start(t, 3, func(_ int, cfg *node.Config) { cfg.RESPAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 30 // keys spread over every node
	const far = "4611686018427387905"
	wantNil := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, goredis.Nil) {
			t.Errorf("%s: got %v; want nil", what, err)
		}
	}
	wantErr := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v; want an error with %q", what, err, want)
		}
	}
	for _, proto := range []int{2, 3} {
		rdb := goredis.NewClient(&goredis.Options{Addr: c.Node(0).RESPAddr(), Protocol: proto, MaxRetries: -1})
		defer rdb.Close()
		key := func(s string, i int) string { return fmt.Sprintf("p%d:%s%d", proto, s, i) }
		for i := range n {
			if err := rdb.Set(ctx, key("k", i), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			_, err := rdb.Do(ctx, "getex", key("nope", i), "ex", "0").Result()
			wantNil("getex missing ex 0", err)
			_, err = rdb.Do(ctx, "getex", key("nope", i), "px", far).Result()
			wantNil("getex missing px far", err)
			_, err = rdb.Do(ctx, "getex", key("k", i), "ex", "0").Result()
			wantErr("getex existing ex 0", err, "invalid expire time")
			_, err = rdb.Do(ctx, "getex", key("k", i), "px", far).Result()
			wantErr("getex existing px far", err, "out of range")
		}
		cmds, _ := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := range n {
				p.Do(ctx, "getex", key("nope", i), "px", "-1")
				p.Do(ctx, "getex", key("k", i), "px", "-1")
				p.Do(ctx, "getex", key("k", i), "px", "abc")
			}
			return nil
		})
		for j := 0; j < len(cmds); j += 3 {
			wantNil(fmt.Sprint(cmds[j].Args()), cmds[j].Err())
			wantErr(fmt.Sprint(cmds[j+1].Args()), cmds[j+1].Err(), "invalid expire time")
			wantErr(fmt.Sprint(cmds[j+2].Args()), cmds[j+2].Err(), "not an integer")
		}
		for i := range n {
			k := fmt.Sprintf("{p%dt%d}k", proto, i)
			cmds, _ := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Do(ctx, "getex", k, "ex", "0")
				p.Do(ctx, "set", k, "v")
				p.Do(ctx, "getex", k, "ex", "0")
				p.Do(ctx, "getex", k, "px", far)
				p.Do(ctx, "getex", k, "ex", "100")
				return nil
			})
			wantNil("multi: getex missing", cmds[0].Err())
			wantErr("multi: getex existing ex 0", cmds[2].Err(), "invalid expire time")
			wantErr("multi: getex existing px far", cmds[3].Err(), "out of range")
			if v, err := cmds[4].(*goredis.Cmd).Result(); err != nil || v != "v" {
				t.Errorf("multi: getex ex 100: got %v, %v; want v", v, err)
			}
		}
	}
}
