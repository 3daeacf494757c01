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

const chunkKeys = keepReqs // a chunk's buffers are kept for the next command

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
// with its error, as it would unchunked. On the event loop, the first
// chunk that cannot run here without waiting sends the whole command to a
// goroutine, taking back what the chunks before it wrote: running them
// again there reads the same keys, or writes the same values.
func (c *conn) runSpread(ctx context.Context, cmd *command, args [][]byte) {
	mark := len(c.w.buf)
	reads := cmd.flags&flagWrite == 0
	if reads {
		c.w.Array((len(args) - 1) / cmd.step)
	}
	defer func() {
		clear(c.part) // the arguments may be a large input buffer: let it go
		c.part = c.part[:0]
		c.trim()
	}()
	for i := 1; i < len(args); i += chunkKeys * cmd.step {
		c.part = append(append(c.part[:0], args[0]), args[i:min(len(args), i+chunkKeys*cmd.step)]...)
		c.reqs = c.reqs[:0]
		if err := cmd.build(c, c.part, false); err != nil {
			c.w.buf = c.w.buf[:mark]
			c.w.Error(err.Error())
			return
		}
		if c.onLoop && !c.local() {
			c.w.buf = c.w.buf[:mark]
			c.deferred = true
			return
		}
		resps := c.respsFor(len(c.reqs))
		c.execAll(ctx, resps, !reads)
		for k := range resps {
			if r := &resps[k]; r.Code != protocol.CodeOK && (!reads || r.Code != protocol.CodeNotFound) {
				c.w.buf = c.w.buf[:mark]
				c.replyErr(r)
				return
			}
		}
		if reads {
			for k := range resps {
				c.replyOptional(&resps[k])
			}
		}
	}
	if !reads {
		c.w.OK()
	}
}

// execAll runs c.reqs, single-key requests that may run in any order: one
// after another when this node serves them all without waiting, else
// together through DoAll. Of writes to the same key only the last is sent,
// since DoAll may run them at once; the others answer OK, as the value
// they wrote would have been overwritten.
func (c *conn) execAll(ctx context.Context, resps []protocol.Response, writes bool) {
	if c.local() {
		for i := range c.reqs {
			c.s.b.Do(ctx, &c.reqs[i], &resps[i])
		}
		return
	}
	var last map[string]int
	if writes {
		last = make(map[string]int, len(c.reqs))
		for i := range c.reqs {
			last[c.reqs[i].Key] = i
		}
	}
	rq := make([]*protocol.Request, 0, len(c.reqs))
	rs := make([]*protocol.Response, 0, len(c.reqs))
	for i := range c.reqs {
		if last != nil && last[c.reqs[i].Key] != i {
			resps[i] = protocol.Response{Value: resps[i].Value[:0]}
			continue
		}
		rq, rs = append(rq, &c.reqs[i]), append(rs, &resps[i])
	}
	c.s.b.DoAll(ctx, rq, rs)
}
