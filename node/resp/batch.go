package resp

import (
	"bytes"
	"context"
	"sync"
)

// maxBatch bounds how many pipelined commands run at once off the loop.
const maxBatch = 64

// batch returns the deferred command args and, after it, the pipelined
// commands at the start of rest that may run at the same time as it, each
// copied (the input is reused once the loop moves on), and how many bytes
// of rest they took. Commands run concurrently only when their order
// cannot be observed through them: keyed commands outside a transaction,
// and no key written by one is read or written by another. Anything else
// ends the batch; it runs after the batch, in order.
func (c *conn) batch(args [][]byte, rest []byte) ([][][]byte, int) {
	batch := [][][]byte{cloneArgs(args)}
	var keys []batchKey
	if !c.batchable(args, &keys) {
		return batch, 0
	}
	off := 0
	for off < len(rest) && len(batch) < maxBatch {
		next, n, err := c.rd.Parse(rest[off:])
		if err != nil || n == 0 || len(next) == 0 || !c.batchable(next, &keys) {
			break // parsed again, and answered, once the batch is done
		}
		off += n
		c.cmds.Add(1)
		batch = append(batch, cloneArgs(next))
	}
	return batch, off
}

// batchKey is a key a batched command reads or writes.
type batchKey struct {
	key   []byte
	write bool
}

// batchable reports whether args may join a batch whose commands use keys,
// and adds its keys if so.
func (c *conn) batchable(args [][]byte, keys *[]batchKey) bool {
	cmd := c.lookup(args[0])
	if cmd == nil || cmd.build == nil || !cmd.arityOK(len(args)) || !c.authed || c.tx.active {
		return false
	}
	write := cmd.flags&flagReadonly == 0
	own := cmd.keys(args)
	for _, k := range own {
		for _, o := range *keys {
			if (write || o.write) && bytes.Equal(k, o.key) {
				return false
			}
		}
	}
	for _, k := range own {
		*keys = append(*keys, batchKey{k, write})
	}
	return true
}

// runBatch runs a batch off the event loop: one command on the connection
// itself, several at once on forks of it, their replies in order.
func (c *conn) runBatch(ctx context.Context, batch [][][]byte) {
	c.onLoop = false
	defer func() { c.onLoop = true }()
	if len(batch) == 1 {
		c.dispatch(ctx, batch[0])
		return
	}
	forks := make([]*conn, len(batch))
	var wg sync.WaitGroup
	for i, args := range batch {
		f := c.fork()
		forks[i] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.dispatch(ctx, args)
		}()
	}
	wg.Wait()
	for _, f := range forks {
		c.w.buf = append(c.w.buf, f.w.Bytes()...)
	}
}

// fork returns a connection that runs one keyed command as c would, with
// its own buffers.
func (c *conn) fork() *conn {
	f := &conn{s: c.s, id: c.id, addr: c.addr, laddr: c.laddr, authed: c.authed, created: c.created, w: NewWriter()}
	f.w.SetProto(c.w.Proto())
	f.resetTx()
	return f
}
