package resp

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
)

func TestServer_BadClientsDoNotDisturbOthers(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	rdb := newGoRedis(t, ts.addr, 3)
	garbage := []string{
		"*1\r\n$999999999999\r\n",
		"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$5\r\nab", // half a command, then gone
		"\x00\x01\x02\xff\r\n",
		"*2\r\n$3\r\nget\r\n:1\r\n",
		strings.Repeat("x", 100<<10), // an inline line over the limit
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := "w" + itoa(w) + ":" + itoa(i)
				if err := rdb.Set(ctx, k, k, 0).Err(); err != nil {
					errs <- "SET " + k + ": " + err.Error()
					return
				}
				if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
					errs <- "GET " + k + ": got " + v
					return
				}
			}
		}()
	}
	for _, g := range garbage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			nc.Write([]byte(g)) // the server may close first; that is fine
			nc.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := rdb.DBSize(ctx).Val(); n != 800 {
		t.Errorf("DBSIZE: got %d; want 800", n)
	}
}
