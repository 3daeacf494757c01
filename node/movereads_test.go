package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// silentPeer is a native-protocol peer that answers hellos and nothing
// else, as a node cut off after its connection was made would; it counts
// the other requests it gets.
func silentPeer(t *testing.T) (addr string, got *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				fr := protocol.NewFrameReader(bufio.NewReader(c), 1<<20)
				dec := protocol.NewDecoder()
				var req protocol.Request
				for {
					frame, err := fr.Next()
					if err != nil || dec.DecodeRequest(frame, &req) != nil {
						return
					}
					if req.Op != protocol.OpHello {
						got.Add(1)
						continue
					}
					b, _ := protocol.AppendFrame(nil, &protocol.Response{ID: req.ID, Version: protocol.Version})
					if _, err := c.Write(b); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), got
}

// A request during a move fetches its keys from each source together: a
// source that does not answer costs one peer timeout for all of them, not
// one a key (a DEL of 20 keys used to wait 20 timeouts).
func TestFetchKeys_asksEachSourceForAllKeysAtOnce(t *testing.T) {
	n := startTestNode(t, func(cfg *Config) { cfg.PeerTimeout = time.Minute })
	addr, got := silentPeer(t)
	v := &view{self: n.cfg.Name, members: map[string]protocol.MemberInfo{"mute": {Name: "mute", Addr: addr}}}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint("s", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- n.fetchKeys(ctx, v, 0, keys, []string{"mute"}) }()
	deadline := time.Now().Add(20 * time.Second)
	for got.Load() < int64(len(keys)) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the silent source got %d of %d fetches while the first waited for its answer; want all at once", got.Load(), len(keys))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if <-done {
		t.Error("fetchKeys reported every key fetched from a source that answered none")
	}
}
