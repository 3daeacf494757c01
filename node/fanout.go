package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Requests that span nodes: a Delete or Exists of keys on several
// primaries, and the cluster-wide Count and Flush, each node doing its part.

// multiKey splits a Delete or Exists by primary, runs the groups in
// parallel (locally or forwarded) and adds up their counts. Every group
// runs, whatever happens to the others. The last group runs on the
// calling goroutine: a request of one group (a DEL of one session, the
// common case) costs no goroutine, and none on an event loop, which
// would otherwise stall waiting for it.
func (n *Node) multiKey(ctx context.Context, v *view, req *protocol.Request, resp *protocol.Response) {
	p, one := onePartition(req.Keys, n.cfg.Partitions)
	if _, primary := v.holds(p); one && primary {
		// One group, here: run as it is, with nothing to add up.
		sub := protocol.Request{Op: req.Op, Keys: req.Keys, Value: req.Value} // not Key: every key counts (execPrimary)
		n.execPrimary(ctx, v, p, &sub, resp)
		return
	}
	var mu sync.Mutex
	var total int64
	var failed failures
	add := func(r *protocol.Response) {
		mu.Lock()
		defer mu.Unlock()
		total += r.N
		failed.add(r)
	}
	var jobs []func()
	forward := func(owner string, keys []string) {
		jobs = append(jobs, func() {
			var r protocol.Response
			_ = n.forward(ctx, v, owner, &protocol.Request{Op: req.Op, Keys: keys, Value: req.Value}, &r, n.peers.timeout)
			add(&r)
		})
	}
	group := func(p int, keys []string) {
		if _, primary := v.holds(p); primary {
			jobs = append(jobs, func() {
				var r protocol.Response
				sub := &protocol.Request{Op: req.Op, Keys: keys, Value: req.Value} // Value: a delete's token
				n.execPrimary(ctx, v, p, sub, &r)
				add(&r)
			})
			return
		}
		if req.Flags&protocol.FlagForwarded != 0 {
			add(&protocol.Response{Code: protocol.CodeNotOwner, Msg: fmt.Sprintf("%s is not the primary of partition %d", n.cfg.Name, p)})
			return
		}
		forward(v.primary(p), keys)
	}
	if one {
		group(p, req.Keys)
	} else {
		byPart := map[int][]string{}
		for _, k := range req.Keys {
			p := ring.Partition(k, n.cfg.Partitions)
			byPart[p] = append(byPart[p], k)
		}
		remote := map[string][]string{} // the keys of other primaries, one request each
		for p, keys := range byPart {
			if _, primary := v.holds(p); primary || req.Flags&protocol.FlagForwarded != 0 {
				group(p, keys)
				continue
			}
			remote[v.primary(p)] = append(remote[v.primary(p)], keys...)
		}
		for owner, keys := range remote {
			forward(owner, keys)
		}
	}
	var wg sync.WaitGroup
	for i, job := range jobs {
		if i == len(jobs)-1 {
			job()
			break
		}
		n.work.Spawn(&wg, job)
	}
	wg.Wait()
	resp.N = total
	failed.report(resp, "group of keys", "groups of keys")
}

// onePartition returns the partition of keys if they all share one.
func onePartition(keys []string, partitions int) (int, bool) {
	if len(keys) == 0 {
		return 0, false
	}
	p := ring.Partition(keys[0], partitions)
	for _, k := range keys[1:] {
		if ring.Partition(k, partitions) != p {
			return 0, false
		}
	}
	return p, true
}

// failures keeps the first of several failed answers, for one answer that
// reports them all: its code and message once (joined, each would repeat
// its code's words), and how many more failed.
type failures struct {
	first protocol.Response
	n     int
}

func (f *failures) add(r *protocol.Response) {
	if r.Code == protocol.CodeOK {
		return
	}
	if f.n++; f.n == 1 {
		f.first.Code, f.first.Msg = r.Code, r.Msg
	}
}

// report sets resp's code and message if any failed; one and many name
// what failed.
func (f *failures) report(resp *protocol.Response, one, many string) {
	if f.n == 0 {
		return
	}
	resp.Code, resp.Msg = f.first.Code, f.first.Msg
	if more := f.n - 1; more > 0 {
		note := fmt.Sprintf("%d more %s failed", more, many)
		if more == 1 {
			note = "1 more " + one + " failed"
		}
		if resp.Msg == "" {
			resp.Msg = note
		} else {
			resp.Msg += " (and " + note + ")"
		}
	}
}

// count counts live keys cluster-wide, and of them those with a TTL: each
// node counts the partitions it is primary for.
func (n *Node) count(ctx context.Context, v *view, req *protocol.Request, resp *protocol.Response) {
	if req.Flags&protocol.FlagLocal != 0 || len(v.table.Members) == 1 {
		for p := range n.cfg.Partitions {
			if _, primary := v.holds(p); primary {
				keys, ttls := n.store.PartitionKeys(p)
				resp.N += int64(keys)
				resp.TTLKeys += int64(ttls)
			}
		}
		return
	}
	n.fanOut(ctx, v, &protocol.Request{Op: protocol.OpCount, Flags: protocol.FlagLocal}, resp)
}

// flush empties every node of the cluster.
func (n *Node) flush(ctx context.Context, v *view, req *protocol.Request, resp *protocol.Response) {
	if req.Flags&protocol.FlagLocal != 0 || len(v.table.Members) == 1 {
		n.store.Flush()
		return
	}
	n.fanOut(ctx, v, &protocol.Request{Op: protocol.OpFlush, Flags: protocol.FlagLocal}, resp)
}

// fanOut runs req on every member, this one included, and adds up N and
// TTLKeys.
func (n *Node) fanOut(ctx context.Context, v *view, req *protocol.Request, resp *protocol.Response) {
	var mu sync.Mutex
	var failed failures
	var wg sync.WaitGroup
	for _, m := range v.table.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r protocol.Response
			if m == n.cfg.Name {
				n.route(ctx, v, req, &r)
			} else if rr, err := n.call(ctx, v, m, req); err != nil {
				r.SetErr(protocol.Wrapf(protocol.CodeUnavailable, err, "ask every member"))
			} else {
				r = *rr
			}
			mu.Lock()
			defer mu.Unlock()
			resp.N += r.N
			resp.TTLKeys += r.TTLKeys
			failed.add(&r)
		}()
	}
	wg.Wait()
	failed.report(resp, "member", "members")
}
