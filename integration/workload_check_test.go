package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// verdict is what a final read of every key found through one client.
type verdict struct {
	via                          string
	keys, lost, resurrected, bad int // bad: acknowledged touch lost its TTL
	failed                       int // reads that got no answer
}

func (v verdict) String() string {
	return fmt.Sprintf("via %s: %d keys, lost %d, resurrected %d, touched TTL wrong %d, failed reads %d",
		v.via, v.keys, v.lost, v.resurrected, v.bad, v.failed)
}

// check reads every key the workload wrote through cl, after the workload
// has stopped, and judges each against what its writer was told. With
// ttls it also checks that a key whose last acknowledged change was a
// Touch to touchTTL still has a TTL above setTTL.
func (w *workload) check(ctx context.Context, via string, cl *client.Client, ttls bool) verdict {
	w.mu.RLock()
	keys := w.keys
	w.mu.RUnlock()
	parts, _ := cl.Partitions(ctx)
	var (
		lost, revived, bad, failed atomic.Int64
		next                       atomic.Int64
		wg                         sync.WaitGroup
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(keys); i = int(next.Add(1) - 1) {
				k := keys[i]
				it, err := cl.GetItem(ctx, k.key)
				seq := int64(-1)
				switch {
				case errors.Is(err, client.ErrNotFound):
				case err != nil:
					failed.Add(1)
					w.notes.add("failed final read", "via %s: %s: %v", via, k.key, err)
					continue
				default:
					seq = seqOf(k.key, it.Value)
				}
				k.mu.Lock()
				acked, del, unknown, touched, at := k.acked, k.del, len(k.unknown), k.touched, k.ackedAt
				k.mu.Unlock()
				where := ""
				if parts > 0 {
					where = fmt.Sprintf(" (partition %d)", ring.Partition(k.key, parts))
				}
				switch {
				case k.accepts(seq):
					if ttls && touched && seq == acked && it != nil && (it.TTL <= setTTL || it.TTL > touchTTL) {
						bad.Add(1)
						w.notes.add("touched TTL wrong", "via %s: %s%s: TTL %v after a touch to %v", via, k.key, where, it.TTL, touchTTL)
					}
				case del == delAcked:
					revived.Add(1)
					w.suspect(k.key)
					w.notes.add("resurrected", "via %s: %s%s deleted (acknowledged at %s) but reads seq %d", via, k.key, where, stamp(at), seq)
				default:
					lost.Add(1)
					w.suspect(k.key)
					w.notes.add("lost", "via %s: %s%s reads seq %d; seq %d acknowledged at %s, %d failed sets, delete state %d",
						via, k.key, where, seq, acked, stamp(at), unknown, del)
				}
			}
		}()
	}
	wg.Wait()
	return verdict{via: via, keys: len(keys), lost: int(lost.Load()), resurrected: int(revived.Load()),
		bad: int(bad.Load()), failed: int(failed.Load())}
}

// expect says which counts a test asserts to be zero beyond lost and
// resurrected, which every test asserts.
type expect struct {
	noFalseNotFound bool
	touchedTTLs     bool
}

// verify stops the workload, reads every key through the routed client and
// through each running node, logs the figures and fails the test on any
// lost or resurrected session (and what e asks for).
func (w *workload) verify(ctx context.Context, c *procCluster, e expect) {
	t := w.t
	t.Helper()
	w.stopAndWait()
	t.Logf("workload: %s", w.summary())
	vs := []verdict{w.check(ctx, "routed client", w.cl, e.touchedTTLs)}
	for _, p := range c.running() {
		vs = append(vs, w.check(ctx, p.name, c.direct(p.native), false))
	}
	failed := false
	for _, v := range vs {
		t.Logf("final check %v", v)
		if v.lost > 0 || v.resurrected > 0 || v.bad > 0 {
			failed = true
		}
	}
	if n := w.revive.Load(); n > 0 {
		failed = true
	}
	if n := w.falseNotFound.Load(); n > 0 && e.noFalseNotFound {
		failed = true
	}
	w.notes.log(t)
	if failed || w.falseNotFound.Load()+w.staleReads.Load() > 0 {
		nodes := map[string]string{}
		for _, p := range c.running() {
			nodes[p.name] = p.native
		}
		w.explain(ctx, nodes, c.password)
		c.logOutputs()
	}
	if failed {
		t.Errorf("sessions lost, resurrected or falsely not found; see the log above (%s)", w.summary())
	}
}

// logAnomalies logs the first reports of each kind; for tests that fail
// before verify.
func (w *workload) logAnomalies(t *testing.T) { w.notes.log(t) }

// suspect records key as found lost or resurrected, for explain.
func (w *workload) suspect(key string) {
	w.badMu.Lock()
	defer w.badMu.Unlock()
	if len(w.badKeys) < 5 && !slices.Contains(w.badKeys, key) {
		w.badKeys = append(w.badKeys, key)
	}
}

// explain logs what each node holds locally of the first keys a final
// check found lost or resurrected (nodes: name → native address), so that
// a failure shows where a value or a tombstone went. Its clients give
// password.
func (w *workload) explain(ctx context.Context, nodes map[string]string, password string) {
	w.badMu.Lock()
	keys := slices.Clone(w.badKeys)
	w.badMu.Unlock()
	names := slices.Sorted(maps.Keys(nodes))
	for _, key := range keys {
		var sb strings.Builder
		for _, name := range names {
			fmt.Fprintf(&sb, " | %s: %s", name, localEntry(ctx, nodes[name], password, key, w.parts))
		}
		w.t.Logf("held of %s (partition %d):%s", key, ring.Partition(key, w.parts), sb.String())
	}
}

// localEntry describes what the node at addr holds of key, without routing.
func localEntry(ctx context.Context, addr, password, key string, parts int) string {
	c, err := client.New(client.Config{Addrs: []string{addr}, Direct: true, DialTimeout: time.Second, Password: password})
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := c.Exchange(ctx, &protocol.Request{Op: protocol.OpFetch, Partition: int32(ring.Partition(key, parts)), Key: key})
	switch {
	case err != nil:
		return err.Error()
	case r.Err() != nil:
		return r.Err().Error()
	case len(r.Entries) == 0:
		return "nothing"
	}
	e := r.Entries[0]
	what := fmt.Sprintf("seq %d", seqOf(key, e.Value))
	if e.Tombstone {
		what = "tombstone"
	}
	return fmt.Sprintf("%s v%d ttl %v", what, e.Version, time.Duration(e.TTL)*time.Millisecond)
}
