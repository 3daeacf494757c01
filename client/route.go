package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Routing: the client learns the cluster's partition table from any node
// (OpTable) and sends each call straight to the primary of its key's
// partition. Every response carries the node's table version; a newer one
// makes the client refresh its table in the background. A node that is not
// the primary answers ErrNotOwner and the client retries with a fresh
// table. When the primary cannot be reached, reads go to a backup at once,
// and writes are retried, refreshing the table, until the cluster has
// promoted a backup or the retry budget runs out.

// tableTimeout bounds asking one node for the table.
const tableTimeout = time.Second

// routes is an immutable snapshot of the table as the client uses it.
type routes struct {
	version    uint64
	partitions int
	addrs      []string   // native address per member index
	owners     [][]uint16 // per partition: member indexes, primary first
}

func (r *routes) holders(p int) []string {
	out := make([]string, len(r.owners[p]))
	for i, m := range r.owners[p] {
		out[i] = r.addrs[m]
	}
	return out
}

// partitionOf returns the partition req works on, or -1 for requests any
// node can serve.
func (r *routes) partitionOf(req *protocol.Request) int {
	switch req.Op {
	case protocol.OpGet, protocol.OpSet, protocol.OpTouch, protocol.OpGetAndTouch, protocol.OpGetAndDelete, protocol.OpTTL:
		return ring.Partition(req.Key, r.partitions)
	case protocol.OpScan, protocol.OpDeleteMatch:
		return int(req.Partition)
	}
	return -1
}

// readOnly reports whether a backup may serve req when the primary is down
// (see failsOver).
func readOnly(op protocol.Op) bool {
	switch op {
	case protocol.OpGet, protocol.OpTTL, protocol.OpExists, protocol.OpScan:
		return true
	}
	return false
}

// sendRouted runs req on the primary of its partition, retrying as the
// package comment above describes.
func (c *Client) sendRouted(ctx context.Context, req *protocol.Request) (*call, error) {
	if req.Op == protocol.OpDelete || req.Op == protocol.OpExists {
		return c.sendSplit(ctx, req)
	}
	deadline := time.Now().Add(c.cfg.RetryTimeout)
	backoff := 20 * time.Millisecond
	var lastErr error
	for attempt := 0; ; attempt++ {
		r, err := c.currentRoutes(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		p := -1
		if r != nil {
			p = r.partitionOf(req)
		}
		var cl *call
		// Each attempt has a deadline of its own, so that a node that stops
		// answering (cut off, not yet noticed) costs one attempt, not the
		// whole call.
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		if p < 0 || r == nil {
			cl, err = c.sendAny(actx, r, req)
		} else {
			cl, err = c.sendPartition(actx, r, p, req)
		}
		cancel()
		err = c.attemptErr(ctx, err)
		switch {
		case err == nil && (cl.resp.Code == protocol.CodeNotOwner ||
			cl.resp.Code == protocol.CodeUnavailable && req.Repeatable()):
			// The cluster is changing: a node that is not the primary, a
			// primary whose backups have another table, or a forward to a
			// node that is down. Try again with a fresh table.
			lastErr = cl.resp.Err()
			releaseCall(cl)
		case err == nil:
			if r != nil && cl.resp.Table > r.version && c.bgRefresh.CompareAndSwap(false, true) {
				// One background refresh at a time, bounded in time.
				go func() {
					defer c.bgRefresh.Store(false)
					ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DialTimeout)
					defer cancel()
					c.refresh(ctx, r.version)
				}()
			}
			return cl, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			var ns *notSentError
			if !req.Repeatable() && !errors.As(err, &ns) || lasting(err) {
				return nil, err
			}
			lastErr = err
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("after %d attempts: %w", attempt+1, lastErr)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// lasting reports whether err would come again however often the call is
// tried: a request too large for a frame, or a password a node refuses.
func lasting(err error) bool {
	code := protocol.CodeOf(err)
	return code == protocol.CodeTooLarge || code == protocol.CodeAuth
}

// joinErrs joins the errors of a split request's groups, lasting ones
// first: the joined error takes the code of its first part, and a call
// that failed for a lasting reason in one group must not be tried again
// for another's.
func joinErrs(errs []error) error {
	rank := func(err error) int {
		if lasting(err) {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(rank(a), rank(b)) })
	return errors.Join(errs...)
}

// attemptErr words the error of an attempt made with a deadline of its own
// (AttemptTimeout): if that deadline passed and ctx's did not, the node
// may be cut off, so the call may go on elsewhere or later
// (ErrUnavailable).
func (c *Client) attemptErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: attempt timed out after %v: %w", ErrUnavailable, c.cfg.AttemptTimeout, err) // still a notSentError if it was one
	}
	return err
}

// sendPartition sends req to p's primary. If the primary cannot be reached,
// a read that its backup may answer (failsOver) goes to the backup at once.
// A primary that left such a read unanswered within the last AttemptTimeout
// (stopped, cut off: the cluster may take seconds to notice) is asked after
// the backup, not before, so that reads do not each wait for it.
func (c *Client) sendPartition(ctx context.Context, r *routes, p int, req *protocol.Request) (*call, error) {
	holders := r.holders(p)
	primary := c.pool(holders[0])
	if !failsOver(req.Op, holders) {
		return primary.do(ctx, req)
	}
	if primary.quiet() {
		if cl, err := c.readBackup(ctx, holders[1], req); err == nil || ctx.Err() != nil {
			return cl, err
		}
		return primary.do(ctx, req)
	}
	// Leave half the attempt for the backup if the primary is silent.
	pctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout/2)
	defer cancel()
	cl, err := primary.do(pctx, req)
	if err == nil || ctx.Err() != nil {
		return cl, err
	}
	if pctx.Err() != nil {
		primary.markQuiet()
	}
	if cl, berr := c.readBackup(ctx, holders[1], req); berr == nil {
		return cl, nil
	}
	return nil, err
}

// failsOver reports whether a backup may answer op on a partition held by
// holders when the primary cannot: a read, and a backup. The first backup
// answers: with one, it has every write the primary acknowledged; with
// more (a write is acknowledged once one of them has it), it first fetches
// the key from the others.
func failsOver(op protocol.Op, holders []string) bool {
	return readOnly(op) && len(holders) >= 2
}

// readBackup sends the read req to backup, flagged as a replica read, and
// returns its answer if it served the read.
func (c *Client) readBackup(ctx context.Context, backup string, req *protocol.Request) (*call, error) {
	rr := *req
	rr.Flags |= protocol.FlagReplicaRead
	cl, err := c.pool(backup).do(ctx, &rr)
	if err != nil {
		return nil, err
	}
	if code := cl.resp.Code; code != protocol.CodeOK && code != protocol.CodeNotFound {
		err = cl.resp.Err()
		releaseCall(cl)
		return nil, err
	}
	return cl, nil
}

// sendAny sends req to any reachable node: a member, else a seed.
func (c *Client) sendAny(ctx context.Context, r *routes, req *protocol.Request) (*call, error) {
	var lastErr error
	for _, a := range c.candidates(r) {
		cl, err := c.pool(a).do(ctx, req)
		if err == nil {
			return cl, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
	}
	return nil, lastErr
}

// candidates lists addresses to try for any-node requests: the members in
// random order, then the seeds.
//
// Nodes that left a call unanswered lately (quiet) come last: one cut off
// from the network would otherwise hold a refresh up for tableTimeout,
// just when the table is changing because of it.
func (c *Client) candidates(r *routes) []string {
	var all []string
	if r != nil {
		all = append(all, r.addrs...)
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	}
	all = append(all, c.cfg.Addrs...)
	out := make([]string, 0, len(all))
	var quiet []string
	c.mu.Lock()
	for _, a := range all {
		if p := c.pools[a]; p != nil && p.quiet() {
			quiet = append(quiet, a)
		} else {
			out = append(out, a)
		}
	}
	c.mu.Unlock()
	return append(out, quiet...)
}

// sendSplit runs a multi-key Delete or Exists as one request per primary,
// in parallel, and adds up the counts. Every group runs whatever happens
// to the others.
func (c *Client) sendSplit(ctx context.Context, req *protocol.Request) (*call, error) {
	r, err := c.currentRoutes(ctx, false)
	if err != nil {
		return nil, err
	}
	groups := map[string][]string{}
	for _, k := range req.Keys {
		p := ring.Partition(k, r.partitions)
		primary := r.addrs[r.owners[p][0]]
		groups[primary] = append(groups[primary], k)
	}
	var (
		mu    sync.Mutex
		total int64
		errs  []error
		wg    sync.WaitGroup
	)
	run := func(keys []string) {
		// Each group is routed by its first key; a group the node
		// cannot serve alone is split again there (forwarded).
		sub := &protocol.Request{Op: req.Op, Key: keys[0], Keys: keys, Value: req.Value}
		cl, err := c.sendGroup(ctx, sub)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		total += cl.resp.N
		if cl.resp.Code != protocol.CodeOK {
			errs = append(errs, cl.resp.Err())
		}
		releaseCall(cl)
	}
	// Every group but one on a goroutine of its own; that one (the only
	// one, for a Delete of one session) here.
	var last []string
	for _, keys := range groups {
		if prev := last; prev != nil {
			wg.Go(func() { run(prev) })
		}
		last = keys
	}
	if last != nil {
		run(last)
	}
	wg.Wait()
	cl := callPool.Get().(*call)
	cl.resp = protocol.Response{N: total}
	if err := joinErrs(errs); err != nil {
		cl.resp.SetErr(err)
	}
	return cl, nil
}

// sendGroup sends one group of a split request to the primary of its first
// key's partition, with sendRouted's retries and per-attempt deadline.
//
// A Delete's failed attempt may still have deleted some of the keys (those
// on the nodes that answered, or all of them if only the answer was lost).
// Each attempt counts afresh, as an Exists does: the keys an earlier
// attempt deleted keep the call's delete token (Delete), and count again.
func (c *Client) sendGroup(ctx context.Context, sub *protocol.Request) (*call, error) {
	deadline := time.Now().Add(c.cfg.RetryTimeout)
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		r, err := c.currentRoutes(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		addr := r.addrs[r.owners[ring.Partition(sub.Key, r.partitions)][0]]
		req := &protocol.Request{Op: sub.Op, Keys: sub.Keys, Value: sub.Value}
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout) // as sendRouted's
		cl, err := c.pool(addr).do(actx, req)
		cancel()
		err = c.attemptErr(ctx, err)
		if err == nil {
			code := cl.resp.Code
			if code != protocol.CodeNotOwner && code != protocol.CodeUnavailable {
				return cl, nil
			}
			// The cluster is changing; deletes and existence checks are
			// safe to repeat.
			if time.Now().Add(backoff).After(deadline) {
				return cl, nil
			}
			err = cl.resp.Err()
			releaseCall(cl)
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		} else if lasting(err) {
			return nil, err
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// currentRoutes returns the routing table, fetching it first if there is
// none yet or if stale is set.
func (c *Client) currentRoutes(ctx context.Context, stale bool) (*routes, error) {
	r := c.routes.Load()
	if r != nil && !stale {
		return r, nil
	}
	var seen uint64
	if r != nil {
		seen = r.version
	}
	if err := c.refresh(ctx, seen); err != nil && r == nil {
		return nil, err
	}
	return c.routes.Load(), nil
}

// refresh fetches the table from any reachable node unless another
// goroutine already brought one newer than seen.
func (c *Client) refresh(ctx context.Context, seen uint64) error {
	c.refreshing.Lock()
	defer c.refreshing.Unlock()
	if r := c.routes.Load(); r != nil && r.version > seen {
		return nil
	}
	var lastErr error = protocol.Errorf(protocol.CodeUnavailable, "no node to ask for the cluster table")
	for _, a := range c.candidates(c.routes.Load()) {
		// A node cut off from the network must not hold the refresh up:
		// each ask gets a short deadline of its own.
		actx, cancel := context.WithTimeout(ctx, tableTimeout)
		p := c.pool(a)
		cl, err := p.do(actx, &protocol.Request{Op: protocol.OpTable})
		unanswered := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err != nil {
			if unanswered {
				p.markQuiet() // the next refresh asks it last
			}
			lastErr = err
			continue
		}
		ci, derr := protocol.NewDecoder().DecodeClusterInfo(cl.resp.Value)
		code := cl.resp.Code
		releaseCall(cl)
		if code != protocol.CodeOK || derr != nil {
			lastErr = fmt.Errorf("table from %s: code %s: %v", a, code, derr)
			continue
		}
		if cur := c.routes.Load(); cur != nil && cur.version > ci.Version {
			continue // that node is behind
		}
		nr := &routes{version: ci.Version, partitions: ci.Partitions, owners: ci.Owners}
		for _, m := range ci.Members {
			nr.addrs = append(nr.addrs, m.Addr)
		}
		c.routes.Store(nr)
		return nil
	}
	return lastErr
}

// Partitions returns the cluster's partition count, learning the table
// first if needed.
func (c *Client) Partitions(ctx context.Context) (int, error) {
	r, err := c.currentRoutes(ctx, false)
	if err != nil {
		return 0, err
	}
	return r.partitions, nil
}
