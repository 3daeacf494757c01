package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// TestStore_everyWritePath_leavesEachEntryIndexedOrMarkedDead drives
// every path that writes, unlinks, moves or restores entries (sets,
// deletes with and without tokens, touches into the past, Apply,
// ApplyBatch, Revert, DeleteMatch, atomic batches, expiry, eviction at
// MaxMemory, compaction and cleaning with and without memory, hash
// collisions, entries larger than a chunk) and checks after each step that
// every entry of every chunk is indexed or marked dead, never both
// (checkChunks). It is the only test that takes compact's and Revert's
// paths for a failed allocation.
func TestStore_everyWritePath_leavesEachEntryIndexedOrMarkedDead(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			cfg := Config{Partitions: 2, TombstoneTTL: 3 * time.Second}
			if seed%2 == 1 {
				cfg.MaxMemory = 300 << 10
			}
			s, clk := newTestStore(t, cfg)
			if seed%3 == 0 {
				for _, p := range s.parts {
					p.hashMask = 3
				}
			}
			rng := rand.New(rand.NewPCG(seed, 7))
			keys := make([]string, 80)
			for i := range keys {
				keys[i] = fmt.Sprint("s:{", i%4, "}:", i)
			}
			starve := false
			setStarve := func(on bool) {
				s.alloc.mu.Lock()
				defer s.alloc.mu.Unlock()
				starve = on
				if on {
					// Free chunks are forgotten (never handed out again).
					s.alloc.warm, s.alloc.spare, s.alloc.cold = nil, nil, nil
					s.alloc.mapper = func(int) ([]byte, error) { return nil, errors.New("starved") }
				} else {
					s.alloc.mapper = nil
				}
			}
			val := func() string {
				switch r := rng.IntN(100); {
				case r == 0:
					return strings.Repeat("L", chunkSize+rng.IntN(5000))
				case r < 10:
					return strings.Repeat("b", 2000+rng.IntN(8000))
				default:
					return strings.Repeat("v", rng.IntN(400))
				}
			}
			var tracked []Change
			for step := range 6000 {
				k := keys[rng.IntN(len(keys))]
				what := ""
				switch op := rng.IntN(100); {
				case op < 30:
					what = "set"
					set(s, k, val(), time.Duration(1+rng.IntN(5000))*time.Millisecond)
				case op < 38:
					what = "set tracked"
					var resp protocol.Response
					req := protocol.Request{Op: protocol.OpSet, Key: k, Value: []byte(val()), TTL: int64(1 + rng.IntN(5000))}
					tracked = append(tracked, s.ExecTracked(s.PartitionOf(k), &req, &resp)...)
				case op < 44:
					what = "delete"
					var tok []byte
					if rng.IntN(2) == 0 {
						tok = protocol.NewDeleteToken()
					}
					var resp protocol.Response
					req := protocol.Request{Op: protocol.OpDelete, Keys: []string{k, keys[rng.IntN(len(keys))]}, Value: tok}
					tracked = append(tracked, s.ExecTracked(0, &req, &resp)...)
				case op < 48:
					what = "getdel"
					exec(s, protocol.Request{Op: protocol.OpGetAndDelete, Key: k})
				case op < 53:
					what = "touch"
					ttl := int64(rng.IntN(4000)) - 500
					exec(s, protocol.Request{Op: protocol.OpTouch, Key: k, TTL: ttl, Flags: protocol.FlagAllowPast})
				case op < 60:
					what = "apply"
					x := protocol.Entry{Key: k, Value: []byte(val()), TTL: int64(rng.IntN(5000)) - 1, Version: uint64(rng.Int64N(1<<50)) + 1}
					if x.TTL == -1 && rng.IntN(2) == 0 {
						x.TTL = 100
					}
					if rng.IntN(3) == 0 {
						x.Tombstone = true
						x.Value = nil
						if rng.IntN(2) == 0 {
							x.Value = protocol.NewDeleteToken()
						}
					}
					s.Apply(&x)
				case op < 63:
					what = "applybatch"
					var es []protocol.Entry
					for range 1 + rng.IntN(6) {
						es = append(es, protocol.Entry{Key: keys[rng.IntN(len(keys))], Value: []byte(val()), TTL: 3000, Version: uint64(rng.Int64N(1<<50)) + 1})
					}
					s.ApplyBatch(es)
				case op < 70:
					what = "revert"
					if len(tracked) > 0 {
						i := rng.IntN(len(tracked))
						c := tracked[i]
						tracked = append(tracked[:i], tracked[i+1:]...)
						if c.Has {
							s.Revert(c.Key, c.After.Version, c.Before, c.Had)
						}
					}
				case op < 73:
					what = "deletematch"
					exec(s, protocol.Request{Op: protocol.OpDeleteMatch, Partition: int32(rng.IntN(2)), Pattern: fmt.Sprint("s:{", rng.IntN(4), "}:*"), Value: protocol.NewDeleteToken()})
				case op < 77:
					what = "atomic"
					tag := fmt.Sprint("s:{", rng.IntN(4), "}:")
					var reqs []*protocol.Request
					var resps []*protocol.Response
					for range 1 + rng.IntN(4) {
						kk := tag + fmt.Sprint(rng.IntN(len(keys)))
						r := &protocol.Request{Op: protocol.OpSet, Key: kk, Value: []byte(val()), TTL: 2000}
						if rng.IntN(3) == 0 {
							r = &protocol.Request{Op: protocol.OpGetAndDelete, Key: kk}
						}
						reqs = append(reqs, r)
						resps = append(resps, &protocol.Response{})
					}
					s.ExecAtomic(reqs, resps)
				case op < 82:
					what = "advance"
					clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
				case op < 85:
					what = "expire"
					s.ExpireCycle(0, time.Hour)
				case op < 88:
					what = "compact"
					p := s.parts[rng.IntN(2)]
					p.mu.Lock()
					_ = p.compact()
					p.mu.Unlock()
				case op < 90:
					what = "starve toggle"
					setStarve(!starve)
				case op < 92:
					what = "fetch"
					pi := rng.IntN(2)
					for c := uint64(0); ; {
						var es []protocol.Entry
						es, c = s.Fetch(pi, c, 2000)
						_ = es
						if c == 0 {
							break
						}
					}
				default:
					what = "get"
					get(s, k)
				}
				if err := checkAccounting(s); err != nil {
					t.Fatalf("step %d (%s, starved %v): %v", step, what, starve, err)
				}
			}
			setStarve(false)
		})
	}
}
