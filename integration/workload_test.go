package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/ring"
)

// A workload records what a cluster acknowledged while it changes, so that
// a checker can say afterwards what was lost. Each key has exactly one
// writer, so "the latest acknowledged value" of a key is well defined: the
// value of the acknowledged Set with the highest sequence number. A call
// that failed is unknown, not acknowledged: its write may or may not have
// happened, so a value it wrote is accepted if it is newer than the last
// acknowledged one. Deleted keys are never written again, as a logged-out
// session's ID is never reused.

const (
	setTTL   = time.Hour
	touchTTL = 3 * time.Hour // a touched key's TTL is over setTTL
	callWait = 20 * time.Second
)

type delState int

const (
	delNone delState = iota
	delStarted
	delAcked
	delUnknown // the Delete call failed
)

// keyState is what one key's writer did to it.
type keyState struct {
	key string

	mu      sync.Mutex // guards below
	issued  int64      // highest sequence number sent in a Set
	acked   int64      // sequence number of the latest acknowledged Set, 0 if none
	unknown []int64    // sequence numbers of Sets whose call failed
	touched bool       // a Touch to touchTTL was acknowledged after the acked Set
	del     delState
	ackedAt time.Time // when the latest acknowledged Set, or the Delete, returned
}

// valueFor is the value of the seq'th Set of key, about 200 bytes.
func valueFor(key string, seq int64) []byte {
	v := fmt.Sprintf("%s|%d|", key, seq)
	return []byte(v + strings.Repeat("c", 200-len(v)))
}

// seqOf returns the sequence number valueFor wrote into v, or -1 if v is
// not a value written for key.
func seqOf(key string, v []byte) int64 {
	rest, ok := strings.CutPrefix(string(v), key+"|")
	if !ok {
		return -1
	}
	n, _, ok := strings.Cut(rest, "|")
	seq, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || string(v) != string(valueFor(key, seq)) {
		return -1
	}
	return seq
}

// accepts reports whether reading seq (-1 for not found) is consistent with
// what the key's writer was told.
func (k *keyState) accepts(seq int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.del == delAcked:
		return seq == -1
	case seq == -1:
		return k.acked == 0 || k.del == delUnknown
	case seq == k.acked:
		return true
	}
	for _, u := range k.unknown {
		if u == seq && u > k.acked {
			return true
		}
	}
	return false
}

// workloadOpts shapes a workload.
type workloadOpts struct {
	writers, readers int
	perSecond        int  // operations per second per goroutine
	touches          bool // writers touch and readers get-and-touch too
}

// workload runs writers and readers against a cluster and counts what went
// wrong while it ran.
type workload struct {
	t    *testing.T
	cl   *client.Client
	opts workloadOpts

	parts int // partition count, for notes

	mu   sync.RWMutex // guards keys
	keys []*keyState

	stop chan struct{}
	wg   sync.WaitGroup

	sets, deletes, touches, reads                  atomic.Int64 // acknowledged
	failedSets, failedDeletes, failedTouches       atomic.Int64
	failedReads, falseNotFound, staleReads, revive atomic.Int64
	notes                                          anomalies

	badMu   sync.Mutex // guards badKeys
	badKeys []string   // keys a final check found lost or resurrected, first few
}

// anomalies keeps the first few reports of each kind, for the test log.
type anomalies struct {
	mu   sync.Mutex // guards byKind
	byKi map[string][]string
}

func (a *anomalies) add(kind, format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byKi == nil {
		a.byKi = map[string][]string{}
	}
	if len(a.byKi[kind]) < 8 {
		a.byKi[kind] = append(a.byKi[kind], time.Now().UTC().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (a *anomalies) log(t *testing.T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for kind, notes := range a.byKi {
		for _, n := range notes {
			t.Logf("%s: %s", kind, n)
		}
	}
}

// startWorkload starts the writers and readers; stopAndWait ends them.
func startWorkload(t *testing.T, cl *client.Client, opts workloadOpts) *workload {
	w := &workload{t: t, cl: cl, opts: opts, stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	parts, err := cl.Partitions(ctx)
	if err != nil {
		t.Fatalf("partition count: %v", err)
	}
	w.parts = parts
	for i := range opts.writers {
		w.wg.Add(1)
		go w.writer(i)
	}
	for range opts.readers {
		w.wg.Add(1)
		go w.reader()
	}
	t.Cleanup(w.stopAndWait)
	return w
}

// stopAndWait stops the workload and waits for every call in flight.
func (w *workload) stopAndWait() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// pace returns a ticker for the per-goroutine rate.
func (w *workload) pace() *time.Ticker {
	return time.NewTicker(time.Second / time.Duration(max(w.opts.perSecond, 1)))
}

func (w *workload) writer(id int) {
	defer w.wg.Done()
	tick := w.pace()
	defer tick.Stop()
	var live []*keyState
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		r := rand.Float64()
		switch {
		case len(live) < 50 || r < 0.2:
			k := &keyState{key: fmt.Sprintf("churn:w%02d:%07d", id, n)}
			w.mu.Lock()
			w.keys = append(w.keys, k)
			w.mu.Unlock()
			live = append(live, k)
			w.set(k)
		case r < 0.3:
			i := rand.IntN(len(live))
			k := live[i]
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
			w.delete(k)
		case w.opts.touches && r < 0.5:
			w.touch(live[rand.IntN(len(live))])
		default:
			w.set(live[rand.IntN(len(live))])
		}
	}
}

func (w *workload) set(k *keyState) {
	k.mu.Lock()
	k.issued++
	seq := k.issued
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	err := w.cl.Set(ctx, k.key, valueFor(k.key, seq), setTTL)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.unknown = append(k.unknown, seq)
		w.failedSets.Add(1)
		w.notes.add("failed set", "%s seq %d: %v", k.key, seq, err)
		return
	}
	k.acked, k.touched, k.ackedAt = seq, false, time.Now()
	w.sets.Add(1)
}

func (w *workload) delete(k *keyState) {
	k.mu.Lock()
	k.del = delStarted
	acked, clean := k.acked, len(k.unknown) == 0
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	n, err := w.cl.Delete(ctx, k.key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.del = delUnknown
		w.failedDeletes.Add(1)
		w.notes.add("failed delete", "%s: %v", k.key, err)
		return
	}
	k.del, k.ackedAt = delAcked, time.Now()
	w.deletes.Add(1)
	if n == 0 && acked > 0 && clean {
		w.falseNotFound.Add(1)
		w.notes.add("false not found", "delete of %s (acked seq %d) found nothing", k.key, acked)
	}
}

func (w *workload) touch(k *keyState) {
	k.mu.Lock()
	acked, clean := k.acked, len(k.unknown) == 0
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	ok, err := w.cl.Touch(ctx, k.key, touchTTL)
	switch {
	case err != nil:
		w.failedTouches.Add(1)
		w.notes.add("failed touch", "%s: %v", k.key, err)
	case !ok && acked > 0:
		w.falseNotFound.Add(1)
		w.notes.add("false not found", "touch of %s (acked seq %d, clean %v) found nothing", k.key, acked, clean)
	case ok:
		w.touches.Add(1)
		k.mu.Lock()
		k.touched = k.acked == acked && clean
		k.mu.Unlock()
	}
}

func (w *workload) reader() {
	defer w.wg.Done()
	tick := w.pace()
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.mu.RLock()
		if len(w.keys) == 0 {
			w.mu.RUnlock()
			continue
		}
		k := w.keys[rand.IntN(len(w.keys))]
		w.mu.RUnlock()
		w.read(k)
	}
}

// read reads k once and judges the answer against what k's writer had been
// told before the read started and after it ended.
func (w *workload) read(k *keyState) {
	k.mu.Lock()
	acked, del, at := k.acked, k.del, k.ackedAt
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	op := "get"
	var v []byte
	var err error
	if w.opts.touches && rand.IntN(2) == 0 {
		op = "get-and-touch"
		v, err = w.cl.GetAndTouch(ctx, k.key, touchTTL)
	} else {
		v, err = w.cl.Get(ctx, k.key)
	}
	k.mu.Lock()
	delAfter := k.del
	k.mu.Unlock()
	switch {
	case errors.Is(err, client.ErrNotFound):
		w.reads.Add(1)
		if acked > 0 && del == delNone && delAfter == delNone {
			w.falseNotFound.Add(1)
			w.notes.add("false not found", "%s of %s (partition %d, seq %d acknowledged at %s)", op, k.key, w.part(k), acked, stamp(at))
		}
	case err != nil:
		w.failedReads.Add(1)
		w.notes.add("failed read", "%s of %s: %v", op, k.key, err)
	default:
		w.reads.Add(1)
		seq := seqOf(k.key, v)
		switch {
		case del == delAcked:
			w.revive.Add(1)
			w.notes.add("resurrected read", "%s of %s (partition %d) deleted at %s: seq %d", op, k.key, w.part(k), stamp(at), seq)
		case seq < acked:
			w.staleReads.Add(1)
			w.notes.add("stale read", "%s of %s (partition %d): seq %d; seq %d acknowledged at %s", op, k.key, w.part(k), seq, acked, stamp(at))
		}
	}
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func (w *workload) part(k *keyState) int { return ring.Partition(k.key, w.parts) }

// summary is one line of figures for the test log and docs/benchmarks.md.
func (w *workload) summary() string {
	w.mu.RLock()
	keys := len(w.keys)
	w.mu.RUnlock()
	return fmt.Sprintf("keys %d; acknowledged sets %d, deletes %d, touches %d, reads %d; "+
		"failed calls: sets %d, deletes %d, touches %d, reads %d; during the run: false not-found %d, "+
		"resurrected reads %d, stale reads %d",
		keys, w.sets.Load(), w.deletes.Load(), w.touches.Load(), w.reads.Load(),
		w.failedSets.Load(), w.failedDeletes.Load(), w.failedTouches.Load(), w.failedReads.Load(),
		w.falseNotFound.Load(), w.revive.Load(), w.staleReads.Load())
}
