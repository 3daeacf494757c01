package resp

import (
	"context"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// MGET and MSET name any number of keys, on any partitions and, in a
// cluster, on any nodes. They run in chunks of chunkKeys keys. A chunk's
// requests go to the backend together (DoAll), which sends those for each
// other node in one batch: an MGET of 100 keys spread over three nodes
// costs a round trip to each other node, not one per key. Only one chunk's
// requests and responses exist at a time, so a command of a million keys
// holds a chunk's worth beside its arguments and its reply, not 320 bytes
// a key. An MSET whose keys share a partition runs as one atomic step
// instead, as Redis runs it.

const chunkKeys = 256 // a chunk's requests and responses take about 80 KB

// maxLoopReply is the most bytes of values a read on the event loop
// copies. A read whose values come to more stops there, throws its reply
// away and runs again on a goroutine, where copying them out of the store
// and into the reply holds up no other client: an MGET of 63 values of 1
// MiB held the loop, and every other client of it, for up to a second
// (docs/benchmarks.md, "Large replies"). Reads may run twice; at most
// this much is copied in vain.
const maxLoopReply = 1 << 20

// spread reports whether cmd runs on args in chunks.
func (c *conn) spread(cmd *command, args [][]byte) bool {
	step := cmd.step
	if cmd.flags&flagSpread == 0 || len(args) <= 1+step || (len(args)-1)%step != 0 {
		return false // one key, or a wrong arity that build reports
	}
	if cmd.flags&flagAtomic == 0 {
		return true
	}
	n := c.s.b.Partitions()
	p := ring.Partition(string(args[1]), n)
	for i := 1 + step; i < len(args); i += step {
		if ring.Partition(string(args[i]), n) != p {
			return true
		}
	}
	return false
}

// runSpread runs cmd on args chunk by chunk. A read answers an array of
// each key's value, a write OK; a failed request fails the whole command
// with its error, as it would unchunked (the chunks before it have run).
// On the event loop, every chunk is checked before any runs: if one cannot
// run here without waiting, the whole command goes to a goroutine, having
// done nothing. A read whose values pass maxLoopReply there goes to a
// goroutine too, its reply so far dropped.
func (c *conn) runSpread(ctx context.Context, cmd *command, args [][]byte) {
	defer func() {
		clear(c.part) // the arguments may be a large input buffer: let it go
		c.part = c.part[:0]
		c.trim()
	}()
	step := chunkKeys * cmd.step
	built := false // the first chunk's requests are in c.reqs
	if c.onLoop {
		for i := 1; i < len(args); i += step {
			c.chunk(cmd, args, i)
			if !c.local() {
				c.deferred = true
				return
			}
		}
		built = len(args)-1 <= step
	}
	mark := len(c.w.buf)
	reads := cmd.flags&flagWrite == 0
	if reads {
		c.w.Array((len(args) - 1) / cmd.step)
	}
	rt := c.retrier() // one window for all the chunks
	for i := 1; i < len(args); i += step {
		if !built {
			c.chunk(cmd, args, i)
		}
		built = false
		resps := c.respsFor(len(c.reqs))
		room := -1 // bytes of values the reply has room for; -1: no limit (a write)
		if reads {
			room = maxReply - (len(c.w.buf) - mark)
			if c.onLoop {
				room = min(room, maxLoopReply-(len(c.w.buf)-mark))
			}
		}
		if !c.execAll(ctx, resps, !reads, c.onLoop || c.local(), room) {
			c.w.buf = c.w.buf[:mark]
			if c.onLoop { // a read: it runs again on a goroutine
				c.deferred = true
				return
			}
			c.w.Error(string(errReplyTooLarge))
			return
		}
		c.redoFailed(ctx, &rt, cmd, resps)
		for k := range resps {
			if r := &resps[k]; r.Code != protocol.CodeOK && (!reads || r.Code != protocol.CodeNotFound) {
				c.w.buf = c.w.buf[:mark]
				c.replyErr(r)
				return
			}
		}
		if reads {
			size := 0
			for k := range resps {
				size += len(resps[k].Value) + bulkHeader
			}
			c.w.Grow(size)
			for k := range resps {
				c.replyOptional(&resps[k])
			}
		}
	}
	if !reads {
		c.w.OK()
	}
}

// chunk builds in c.reqs the requests of the chunk of args that starts at
// args[i].
func (c *conn) chunk(cmd *command, args [][]byte, i int) {
	c.part = append(append(c.part[:0], args[0]), args[i:min(len(args), i+chunkKeys*cmd.step)]...)
	c.reqs = c.reqs[:0]
	_ = cmd.build(c, c.part, false) // MGET's and MSET's fail only on an arity spread has checked
}

// execAll runs c.reqs, single-key requests that may run in any order but
// for those writing the same key: one after another when local (this node
// serves them all without waiting), else together through DoAll, which
// may run them at once. The n-th write of each key goes in the n-th DoAll
// call, so a key written twice keeps the last value, as in order.
//
// Unless room is negative, it reports false once the values read come to
// more than room bytes: local requests stop there, before copying more;
// requests sent to other nodes are all answered first (a chunk's worth).
func (c *conn) execAll(ctx context.Context, resps []protocol.Response, writes, local bool, room int) bool {
	if local {
		for i := range c.reqs {
			c.s.b.Do(ctx, &c.reqs[i], &resps[i])
			if room >= 0 {
				if room -= len(resps[i].Value); room < 0 {
					return false
				}
			}
		}
		return true
	}
	round := make([]int, len(c.reqs)) // which DoAll call each request is in
	rounds := 1
	if writes {
		seen := make(map[string]int, len(c.reqs))
		for i := range c.reqs {
			round[i] = seen[c.reqs[i].Key]
			seen[c.reqs[i].Key]++
			rounds = max(rounds, round[i]+1)
		}
	}
	rq := make([]*protocol.Request, 0, len(c.reqs))
	rs := make([]*protocol.Response, 0, len(c.reqs))
	for r := range rounds {
		rq, rs = rq[:0], rs[:0]
		for i := range c.reqs {
			if round[i] == r {
				rq, rs = append(rq, &c.reqs[i]), append(rs, &resps[i])
			}
		}
		c.s.b.DoAll(ctx, rq, rs)
	}
	if room < 0 {
		return true
	}
	for i := range resps {
		if room -= len(resps[i].Value); room < 0 {
			return false
		}
	}
	return true
}
