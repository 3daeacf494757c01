package resp

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// Pipelined keyed commands that may wait (in a cluster: forwarded to their
// key's owner, or replicated) run as batches: the commands of a batch on
// one partition go to the backend as one atomic step, in order, and the
// partitions of a batch run at the same time. A pipeline of 16 SETs to
// another node costs one round trip instead of 16. Replies keep their
// order.

const (
	maxBatch      = 64        // commands
	maxBatchBytes = 256 << 10 // argument bytes
)

// batch returns the deferred command args followed by the pipelined
// commands at the start of rest that may join it, each copied (the input
// is reused once the loop moves on), and how many bytes of rest they took.
// A batch holds keyed commands outside a transaction whose keys each lie
// in one partition; anything else ends it and runs after it. The caller
// releases the batch once it has run.
func (c *conn) batch(args [][]byte, rest []byte) (*batchArgs, int) {
	ba := batchArgsPool.Get().(*batchArgs)
	if len(args) > maxLoopArgs {
		ba.adopt(args) // it runs alone
		c.rd.handOver()
		return ba, 0
	}
	ba.add(args)
	size := 0
	if !c.batchable(args, &size) {
		return ba, 0
	}
	off := 0
	for off < len(rest) && len(ba.cmds) < maxBatch && size < maxBatchBytes {
		next, n, err := c.rd.Parse(rest[off:])
		if err != nil || n == 0 || len(next) == 0 || !c.batchable(next, &size) {
			break // parsed again, and answered, once the batch is done
		}
		off += n
		c.cmds.Add(1)
		ba.add(next)
	}
	return ba, off
}

// batchArgs is a batch's commands, copied out of the input into one
// buffer. They are pooled, so that a pipeline costs no allocation for its
// arguments: nothing keeps a command's arguments once it has been
// answered (a request's value is encoded, or copied into the store,
// before the backend's call returns; what a command keeps, it copies).
type batchArgs struct {
	buf  []byte
	args [][]byte
	cmds [][][]byte // each a run of args, slices of buf
}

var batchArgsPool = sync.Pool{New: func() any { return new(batchArgs) }}

// add copies a command's args in. Growing buf or args leaves the earlier
// commands' slices on the old arrays, which stay as they were.
func (ba *batchArgs) add(args [][]byte) {
	from := len(ba.args)
	for _, a := range args {
		ba.buf = append(ba.buf, a...)
		ba.args = append(ba.args, ba.buf[len(ba.buf)-len(a):len(ba.buf):len(ba.buf)])
	}
	ba.cmds = append(ba.cmds, ba.args[from:len(ba.args):len(ba.args)])
}

// adopt takes a long command's args (their slot array, which the caller
// gives up, and a copy of their bytes) as ba's only command. Copied one
// by one as add copies them, the slots of a command of a million
// arguments took the event loop about 0.1 s to move as buf and args
// grew.
func (ba *batchArgs) adopt(args [][]byte) {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	ba.buf = slices.Grow(ba.buf, size)
	for i, a := range args {
		ba.buf = append(ba.buf, a...)
		args[i] = ba.buf[len(ba.buf)-len(a) : len(ba.buf) : len(ba.buf)]
	}
	ba.cmds = append(ba.cmds, args)
}

// release returns ba to the pool once its batch has run, keeping its
// buffers unless a large command grew them past what is worth keeping.
func (ba *batchArgs) release() {
	clear(ba.args)
	clear(ba.cmds)
	if cap(ba.buf) > keepValue || cap(ba.args) > keepReqs {
		*ba = batchArgs{}
	}
	ba.buf, ba.args, ba.cmds = ba.buf[:0], ba.args[:0], ba.cmds[:0]
	batchArgsPool.Put(ba)
}

// batchable reports whether args may join a batch, adding its size.
func (c *conn) batchable(args [][]byte, size *int) bool {
	if len(args) > maxLoopArgs {
		return false // its keys would take long to look at, and it runs alone
	}
	cmd := c.lookup(args[0])
	if cmd == nil || cmd.build == nil || !cmd.arityOK(len(args)) || !c.authed || c.tx.active {
		return false
	}
	if cmd.flags&flagWrite == 0 && c.spread(cmd, args) {
		// An MGET of several keys runs alone, in chunks (runSpread), where
		// its reply is bounded by maxReply: built whole on a fork, it was
		// answered however large (and one deferred on the loop for
		// maxLoopReply is one whose values are large).
		return false
	}
	keys := cmd.keys(args)
	if len(keys) == 0 {
		return false
	}
	if c.moved(cmd, keys[0]) != "" {
		return false
	}
	n := c.s.b.Partitions()
	p := ring.Partition(string(keys[0]), n)
	for _, k := range keys[1:] {
		if ring.Partition(string(k), n) != p {
			return false
		}
	}
	for _, a := range args {
		*size += len(a)
	}
	return true
}

// runBatch runs a batch off the event loop; its replies go to c.w in
// order.
func (c *conn) runBatch(ctx context.Context, batch [][][]byte) {
	c.onLoop = false
	defer func() { c.onLoop = true }()
	if len(batch) == 1 {
		c.dispatch(ctx, batch[0])
		return
	}
	// Each command builds its requests on a fork of the connection, with
	// its own buffers; commands are grouped by partition. Their retries
	// share one window (retry.go): the pipeline is answered within it.
	if c.s.cfg.RetryWindow > 0 {
		c.batchAt = time.Now()
		defer func() { c.batchAt = time.Time{} }()
	}
	forks := make([]*conn, len(batch))
	errs := make([]error, len(batch))
	groups := map[int][]int{}
	n := c.s.b.Partitions()
	for i, args := range batch {
		f := c.fork()
		forks[i] = f
		if errs[i] = f.lookup(args[0]).build(f, args, true); errs[i] != nil {
			continue
		}
		p := ring.Partition(f.reqs[0].Key, n)
		groups[p] = append(groups[p], i)
	}
	var wg sync.WaitGroup
	var alone []int // commands of one request, alone in their partition
	for _, g := range groups {
		if len(g) == 1 && len(forks[g[0]].reqs) == 1 {
			alone = append(alone, g[0])
			continue
		}
		if len(groups) == 1 {
			c.runGroup(ctx, batch, forks, g)
			break
		}
		c.s.work.Spawn(&wg, func() { c.runGroup(ctx, batch, forks, g) })
	}
	c.runAlone(ctx, batch, forks, alone)
	wg.Wait()
	for i, f := range forks {
		if errs[i] != nil {
			c.w.Error(errs[i].Error())
			continue
		}
		c.w.buf = append(c.w.buf, f.w.Bytes()...)
	}
	releaseForks(forks)
}

// runAlone runs the commands idx of a batch, each one request alone in its
// partition (a pipeline of random keys is mostly such commands), as they
// would run outside a batch, without an atomic step; the backend sends
// those for each other node together (DoAll).
func (c *conn) runAlone(ctx context.Context, batch [][][]byte, forks []*conn, idx []int) {
	switch len(idx) {
	case 0:
		return
	case 1:
		f, args := forks[idx[0]], batch[idx[0]]
		f.runBuilt(ctx, f.lookup(args[0]), args)
		return
	}
	rq := make([]*protocol.Request, len(idx))
	rs := make([]*protocol.Response, len(idx))
	for j, i := range idx {
		f := forks[i]
		rq[j], rs[j] = &f.reqs[0], &f.respsFor(1)[0]
	}
	c.s.b.DoAll(ctx, rq, rs)
	rt := c.retrier()
	c.redo(ctx, &rt, rq, rs, func(j int) bool { return repeatable(forks[idx[j]].lookup(batch[idx[j]][0]), rq[j]) })
	for _, i := range idx {
		f := forks[i]
		f.lookup(batch[i][0]).reply(f, batch[i], f.reqs, f.resps[:1])
	}
}

// runGroup runs the commands g of a batch, which share a partition, as one
// atomic step. If that fails, each command runs again on its own, in
// order, for its own reply: a step that failed took no effect, unless only
// its answer was lost, so after an unavailable step only the commands
// safe to repeat run again.
func (c *conn) runGroup(ctx context.Context, batch [][][]byte, forks []*conn, g []int) {
	var rq []*protocol.Request
	var rs []*protocol.Response
	for _, i := range g {
		f := forks[i]
		resps := f.respsFor(len(f.reqs))
		for j := range f.reqs {
			rq, rs = append(rq, &f.reqs[j]), append(rs, &resps[j])
		}
	}
	if err := c.s.b.DoAtomic(ctx, rq, rs); err != nil {
		code := protocol.CodeOf(err)
		for _, i := range g {
			f := forks[i]
			// An unavailable step may have been applied with its answer
			// lost (a forward that timed out). A command whose answer
			// depends on what it found is answered so, as it would be
			// alone (doAgain), not run again to find its own write; a DEL
			// runs again with its token, to count the keys it deleted.
			if code == protocol.CodeUnavailable && !allRepeatable(f.lookup(batch[i][0]), f.reqs) {
				f.w.Error(string(backendError(code, errMsg(err))))
				continue
			}
			if r := &f.reqs[0]; r.Op == protocol.OpGetAndDelete && r.Flags&protocol.FlagNoValue != 0 {
				f.delToken = r.Value
			}
			f.dispatch(ctx, batch[i])
		}
		return
	}
	for _, i := range g {
		f := forks[i]
		f.lookup(batch[i][0]).reply(f, batch[i], f.reqs, f.resps[:len(f.reqs)])
	}
}

// fork returns a connection that runs one keyed command as c would, with
// its own buffers, those of an earlier batch's fork when one is free
// (releaseForks).
func (c *conn) fork() *conn {
	f := forkPool.Get().(*conn)
	*f = conn{s: c.s, id: c.id, addr: c.addr, laddr: c.laddr, authed: c.authed, created: c.created, w: f.w,
		owner: c, batchAt: c.batchAt, reqs: f.reqs[:0], resps: f.resps}
	f.w.SetProto(c.w.Proto())
	f.resetTx()
	return f
}

var forkPool = sync.Pool{New: func() any { return &conn{w: NewWriter()} }}

// What a pooled fork keeps: a connection keeps more (trim), but forks
// pass from connection to connection and up to maxBatch of them wait in
// the pool at a time.
const (
	keepForkResps = 16
	keepForkValue = 16 << 10
)

// releaseForks returns a batch's forks to the pool once their replies are
// copied out, keeping only their small buffers.
func releaseForks(forks []*conn) {
	for _, f := range forks {
		clear(f.reqs[:cap(f.reqs)]) // they point into the batch's arguments
		reqs, resps := f.reqs[:0], f.resps
		if cap(reqs) > keepForkResps || len(resps) > keepForkResps {
			reqs, resps = nil, nil
		}
		for i := range resps {
			if cap(resps[i].Value) > keepForkValue {
				resps[i].Value = nil
			}
		}
		w := f.w
		if cap(w.buf) > keepForkValue {
			w.buf = nil
		}
		w.buf = w.buf[:0]
		*f = conn{w: w, reqs: reqs, resps: resps}
		forkPool.Put(f)
	}
}
