package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"golang.org/x/sync/semaphore"
)

// connBufSize is each connection's read and write buffer: large enough to
// batch many small requests, small enough for thousands of connections.
const connBufSize = 16 << 10

// maxInlineEntries is the most entries of a replicated write a backup
// applies on the connection's reader: an atomic batch's most keys.
const maxInlineEntries = 64

// maxAsyncPerConn bounds the requests of one connection that wait on other
// nodes at once; the reader stops reading while they are all busy.
const maxAsyncPerConn = 256

// maxAsyncReplyBytes bounds, per connection, the replies its waiting
// requests may come to, each counted at the most it may be (replyRoom):
// a client that pipelines transfers (OpFetch) and reads nothing used to
// have the node hold 256 replies of up to a frame each, 265 MB a
// connection. The reader stops reading while the room is taken. It leaves
// room for more than 50 forwarded pipelines (an atomic step each) at once.
// Replies of at most smallReply are not counted: maxAsyncPerConn bounds
// them.
const (
	maxAsyncReplyBytes = 64 << 20
	smallReply         = 1 << 10
)

// replyRoom is the most req's reply may take.
func (n *Node) replyRoom(req *protocol.Request) int64 {
	switch req.Op {
	case protocol.OpSet:
		if req.Flags&protocol.FlagReturnOld == 0 {
			return smallReply
		}
		return int64(n.cfg.Limits.MaxValue) + 1<<10
	case protocol.OpTouch, protocol.OpDelete, protocol.OpExists, protocol.OpTTL, protocol.OpCount,
		protocol.OpFlush, protocol.OpDigest, protocol.OpReplicate:
		return smallReply // a count or a code: no value
	case protocol.OpGet, protocol.OpGetAndTouch, protocol.OpGetAndDelete:
		return int64(n.cfg.Limits.MaxValue) + 1<<10
	case protocol.OpScan:
		return 64 << 10 // a page stops at 48 KiB of keys
	}
	return int64(n.cfg.Limits.MaxFrame()) // a transfer's batch, an atomic step, keys deleted
}

// A native connection must send its hello within helloTimeout, and once a
// frame's header has come, the rest of it within frameTimeout: a
// connection that stalls before either is closed, so that thousands of
// connections cannot each hold a frame buffer half-filled (up to twice the
// frame limit each). Between frames a connection may idle.
//
// Until its hello is served, a connection's frames are limited to
// helloMaxFrame: a hello carries a member's name (at most maxNameLen) and
// the password (at most maxPasswordLen), and a connection that has not
// given them must not make the node buffer a megabyte for it.
const (
	helloTimeout  = 10 * time.Second
	frameTimeout  = 30 * time.Second
	helloMaxFrame = 16 << 10

	maxNameLen     = 255 // a DNS name's length, and a Kubernetes pod's
	maxPasswordLen = 4 << 10
)

// nativeConn is one native-protocol connection. A reader goroutine decodes
// requests; those this node answers from memory alone run inline, and those
// that wait on other nodes (forwarding, replication, transfers) run on
// the node's workers so that they do not hold up the rest of the
// connection. Replies share one buffered writer: inline ones are flushed
// when no more input is waiting (pipelined requests share one write), and
// asynchronous ones are flushed by a flusher goroutine that coalesces them.
type nativeConn struct {
	n    *Node
	c    net.Conn
	peer string

	wmu sync.Mutex // guards bw and fw
	bw  *bufio.Writer
	fw  *protocol.FrameWriter

	kick  chan struct{} // capacity 1: asynchronous replies wait to be flushed
	async sync.WaitGroup
	sem   chan struct{}       // one token per asynchronous request in flight
	room  *semaphore.Weighted // maxAsyncReplyBytes, taken by their replies' room

	unauth bool // let in without the password (helloAuth); read by serveNative once readLoop is done
}

// serveNative serves one native-protocol connection until it closes. A
// connection taken past --max-conns for a member (track) must name that
// member in its hello within the peer timeout.
func (n *Node) serveNative(c net.Conn, member bool) {
	nc := &nativeConn{n: n, c: c, peer: c.RemoteAddr().String(),
		bw: bufio.NewWriterSize(c, connBufSize), kick: make(chan struct{}, 1), sem: make(chan struct{}, maxAsyncPerConn),
		room: semaphore.NewWeighted(maxAsyncReplyBytes)}
	nc.fw = protocol.NewFrameWriter(nc.bw)
	nc.fw.Max = n.cfg.Limits.MaxFrame() // as its clients read (client.Config.Limits)
	done := make(chan struct{})
	flushed := make(chan struct{})
	go nc.flushLoop(done, flushed)
	if member { // reads and writes: one that floods and never reads is closed too
		_ = c.SetDeadline(time.Now().Add(n.cfg.PeerTimeout))
	} else {
		_ = c.SetReadDeadline(time.Now().Add(n.cfg.timeouts.hello))
	}
	nc.readLoop(member)
	nc.async.Wait()
	close(done)
	<-flushed
	if nc.unauth {
		n.metrics.unauthConns.Dec()
	}
}

func (nc *nativeConn) readLoop(member bool) {
	n := nc.n
	br := bufio.NewReaderSize(nc.c, connBufSize)
	fr := protocol.NewFrameReader(br, helloMaxFrame)
	hello := false
	fr.Partial = func(waiting bool) {
		switch {
		case !hello: // the hello's own deadline stands
		case waiting:
			_ = nc.c.SetReadDeadline(time.Now().Add(n.cfg.timeouts.frame))
		default:
			_ = nc.c.SetReadDeadline(time.Time{})
		}
	}
	dec := protocol.NewDecoder()
	var req protocol.Request
	var resp protocol.Response
	for {
		frame, err := fr.Next()
		if err != nil {
			if errors.Is(err, protocol.ErrTooLarge) {
				// Framing is lost: say why, then close.
				if !hello {
					err = fmt.Errorf("before the hello: %w", err)
				}
				n.warnOversized(nc.peer, err)
				resp = protocol.Response{}
				resp.SetErr(err)
				nc.reply(&resp, true)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("native: read", "peer", nc.peer, "err", err)
			}
			return
		}
		if err := dec.DecodeRequest(frame, &req); err != nil {
			if member && !hello {
				return // past the limit, only a member's hello is served
			}
			// The frame was whole, so the stream is still in step: reply and
			// go on serving.
			resp = protocol.Response{ID: req.ID}
			resp.SetErr(err)
			n.metrics.badFrames.Inc()
			nc.reply(&resp, fr.Buffered() == 0)
			continue
		}
		if !hello || req.Op == protocol.OpHello {
			if req.Op != protocol.OpHello || req.Version != protocol.Version {
				resp = protocol.Response{ID: req.ID}
				resp.SetErr(protocol.Errorf(protocol.CodeVersion, "node speaks protocol %d; open with hello version %d", protocol.Version, protocol.Version))
				nc.reply(&resp, true)
				return
			}
			if err := n.helloAuth(nc, req.Value); err != nil {
				resp = protocol.Response{ID: req.ID}
				resp.SetErr(err)
				nc.reply(&resp, true)
				return
			}
			if member && !hello {
				if req.Key == "" || !n.members.at(req.Key, hostOf(nc.c.RemoteAddr())) {
					n.metrics.refusedConns.Inc()
					n.log.Debug("native: at --max-conns, refused a connection that is not a member's", "peer", nc.peer, "names", req.Key)
					resp = protocol.Response{ID: req.ID}
					resp.SetErr(protocol.Errorf(protocol.CodeUnavailable, "node is at --max-conns (%d connections); only its cluster's members may connect", n.cfg.MaxConns))
					nc.reply(&resp, true)
					return
				}
				_ = nc.c.SetDeadline(time.Time{})
			}
			_ = nc.c.SetReadDeadline(time.Time{})
			fr.SetMax(n.cfg.Limits.MaxFrame())
			hello = true
			resp = protocol.Response{ID: req.ID, Version: protocol.Version, Value: []byte(n.cfg.Name)}
			nc.reply(&resp, fr.Buffered() == 0)
			continue
		}
		if !n.inline(&req) {
			room := min(n.replyRoom(&req), maxAsyncReplyBytes)
			if room <= smallReply {
				room = 0
			} else if nc.room.Acquire(n.ctx, room) != nil {
				return // the node is closing
			}
			nc.sem <- struct{}{}
			r := req // the task owns its copy
			n.work.Spawn(&nc.async, func() {
				var resp protocol.Response
				n.Do(n.ctx, &r, &resp)
				resp.ID = r.ID
				nc.reply(&resp, false)
				<-nc.sem
				if room > 0 {
					nc.room.Release(room)
				}
			})
			continue
		}
		n.Do(n.ctx, &req, &resp)
		resp.ID = req.ID
		if !nc.reply(&resp, fr.Buffered() == 0) {
			return
		}
	}
}

// reply writes resp. With flush it is sent at once; otherwise the flusher
// sends it with whatever else is waiting. It reports false if the
// connection failed.
func (nc *nativeConn) reply(resp *protocol.Response, flush bool) bool {
	nc.wmu.Lock()
	defer nc.wmu.Unlock()
	err := nc.fw.Write(resp)
	if pe := (*protocol.Error)(nil); errors.As(err, &pe) && pe.Code == protocol.CodeTooLarge {
		// A reply its client would refuse (a transaction's values, say):
		// fail that request alone, keeping the connection.
		err = nc.fw.Write(&protocol.Response{ID: resp.ID, Code: protocol.CodeTooLarge, Msg: "the reply would be " + pe.Msg})
	}
	if err != nil {
		nc.n.log.Debug("native: write reply", "peer", nc.peer, "err", err)
		nc.c.Close()
		return false
	}
	if flush {
		if err := nc.bw.Flush(); err != nil {
			nc.c.Close()
			return false
		}
		return true
	}
	select {
	case nc.kick <- struct{}{}:
	default:
	}
	return true
}

// flushLoop flushes asynchronous replies until done is closed, then once
// more, and closes flushed.
func (nc *nativeConn) flushLoop(done <-chan struct{}, flushed chan<- struct{}) {
	defer close(flushed)
	flush := func() {
		nc.wmu.Lock()
		defer nc.wmu.Unlock()
		if nc.bw.Buffered() > 0 && nc.bw.Flush() != nil {
			nc.c.Close()
		}
	}
	for {
		select {
		case <-nc.kick:
			// Let other replies about to be written join this write.
			runtime.Gosched()
			flush()
		case <-done:
			flush()
			return
		}
	}
}

// inline reports whether req can be answered from this node's memory alone,
// without waiting on another node. A backup applies a primary's write
// inline: in order, and without a goroutine and a flusher's wakeup for each
// replicated write. A transfer's batch (up to 768 KiB) runs on a worker, so
// that the requests behind it on the connection do not wait for it.
func (n *Node) inline(req *protocol.Request) bool {
	if !singleKey(req.Op) {
		switch req.Op {
		case protocol.OpPing, protocol.OpTable, protocol.OpStatus:
			return true
		case protocol.OpReplicate:
			return len(req.Entries) <= maxInlineEntries
		}
		return false
	}
	v := n.view()
	p := ring.Partition(req.Key, n.cfg.Partitions)
	holds, primary := v.holds(p)
	switch {
	case !holds, n.unsure(p):
		return false
	case !primary: // a backup's read waits on no other node only with one backup
		return req.Flags&protocol.FlagReplicaRead != 0 && !mutates(req.Op) && len(v.table.Owners[p]) == 2
	}
	return !mutates(req.Op) || len(v.table.Owners[p]) == 1
}

// warnOversized logs a frame refused as over the limit. A client sending
// such frames on connection after connection (garbage, a hostile client)
// would flood the log, so a warning goes out at most once every ten
// seconds, with the count so far; the others are logged at debug level.
func (n *Node) warnOversized(peer string, err error) {
	total := n.oversized.Add(1)
	if n.oversizedLog.Allow(time.Now()) {
		n.log.Warn("native: frame over limit; closing (logged at most every 10 s)", "peer", peer, "err", err, "oversized_total", total)
		return
	}
	n.log.Debug("native: frame over limit; closing", "peer", peer, "err", err)
}
