package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
	"go.uber.org/goleak"
)

// startTestNode starts a node with every listener on a loopback port the
// kernel picks, and closes it (checking for leaked goroutines) at cleanup.
func startTestNode(t *testing.T, mutate ...func(*Config)) *Node {
	t.Helper()
	t.Cleanup(func() {
		goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
	}) // runs after the node's Close
	cfg := DefaultConfig()
	cfg.Name = "native-test"
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// rawConn is a native-protocol connection driven byte by byte.
type rawConn struct {
	t   *testing.T
	c   net.Conn
	fr  *protocol.FrameReader
	dec *protocol.Decoder
}

func dialRaw(t *testing.T, n *Node) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, c: c, fr: protocol.NewFrameReader(bufio.NewReader(c), 4<<20), dec: protocol.NewDecoder()}
}

// dialHello dials and completes the handshake.
func dialHello(t *testing.T, n *Node) *rawConn {
	t.Helper()
	rc := dialRaw(t, n)
	if resp := rc.do(&protocol.Request{ID: 1, Op: protocol.OpHello, Version: protocol.Version}); resp.Code != protocol.CodeOK {
		t.Fatalf("hello: got %v; want ok", resp.Err())
	}
	return rc
}

func (rc *rawConn) send(req *protocol.Request) {
	rc.t.Helper()
	b, err := protocol.AppendFrame(nil, req)
	if err != nil {
		rc.t.Fatalf("encode: %v", err)
	}
	rc.sendRaw(b)
}

func (rc *rawConn) sendRaw(b []byte) {
	rc.t.Helper()
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// sendPayload sends b as one whole frame.
func (rc *rawConn) sendPayload(b []byte) {
	rc.t.Helper()
	rc.sendRaw(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
}

func (rc *rawConn) recv() *protocol.Response {
	rc.t.Helper()
	frame, err := rc.fr.Next()
	if err != nil {
		rc.t.Fatalf("read reply: %v", err)
	}
	var resp protocol.Response
	if err := rc.dec.DecodeResponse(frame, &resp); err != nil {
		rc.t.Fatalf("decode reply: %v", err)
	}
	return &resp
}

func (rc *rawConn) do(req *protocol.Request) *protocol.Response {
	rc.t.Helper()
	rc.send(req)
	return rc.recv()
}

// expectClosed checks that the node closed the connection.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	if _, err := rc.fr.Next(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		rc.t.Fatalf("after the error reply: got %v; want the connection closed", err)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }

func expectCode(t *testing.T, what string, resp *protocol.Response, want protocol.Code) {
	t.Helper()
	if resp.Code != want {
		t.Errorf("%s: got code %v (%q); want %v", what, resp.Code, resp.Msg, want)
	}
}

// storeSessions stores sessions that every bad-input test checks afterwards.
func storeSessions(t *testing.T, n *Node) map[string]string {
	t.Helper()
	rc := dialHello(t, n)
	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("sess:%d", i), fmt.Sprintf("coat %d", i)
		resp := rc.do(&protocol.Request{ID: uint64(10 + i), Op: protocol.OpSet, Key: k, Value: []byte(v), TTL: time.Hour.Milliseconds()})
		expectCode(t, "set "+k, resp, protocol.CodeOK)
		want[k] = v
	}
	return want
}

// checkSessions checks, on a fresh connection, that every stored session
// still holds its value.
func checkSessions(t *testing.T, n *Node, want map[string]string) {
	t.Helper()
	rc := dialHello(t, n)
	for k, v := range want {
		resp := rc.do(&protocol.Request{ID: 99, Op: protocol.OpGet, Key: k})
		if resp.Code != protocol.CodeOK || string(resp.Value) != v {
			t.Errorf("get %s: got %q, %v; want %q", k, resp.Value, resp.Err(), v)
		}
	}
	if got := n.Store().Stats().Keys; got != int64(len(want)) {
		t.Errorf("store holds %d keys; want %d", got, len(want))
	}
}

func TestNative_frameOverLimit_isRefusedBeforeReadingAndClosesOnlyThatConn(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	other := dialHello(t, n)
	for _, size := range []uint32{uint32(n.cfg.Limits.MaxFrame()) + 1, 1<<32 - 1} {
		rc := dialHello(t, n)
		// Only the header is sent: a reply proves the body was not awaited.
		rc.sendRaw(binary.BigEndian.AppendUint32(nil, size))
		expectCode(t, fmt.Sprintf("frame of %d bytes", size), rc.recv(), protocol.CodeTooLarge)
		rc.expectClosed()
	}
	expectCode(t, "ping on another connection", other.do(&protocol.Request{ID: 5, Op: protocol.OpPing}), protocol.CodeOK)
	checkSessions(t, n, want)
}

// warnCounter counts the records logged at warning level or above that
// start with prefix.
type warnCounter struct {
	prefix string
	n      atomic.Int64
}

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, w.prefix) {
		w.n.Add(1)
	}
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

// A client that sends oversized frames on connection after connection
// does not flood the log: one warning, with the count, per ten seconds.
func TestNative_oversizedFrames_areLoggedOnceInAWhile(t *testing.T) {
	warns := &warnCounter{prefix: "native: frame over limit"}
	n := startTestNode(t, func(cfg *Config) { cfg.Logger = slog.New(warns) })
	for range 20 {
		rc := dialHello(t, n)
		rc.sendRaw(binary.BigEndian.AppendUint32(nil, 1<<32-1))
		expectCode(t, "an oversized frame", rc.recv(), protocol.CodeTooLarge)
		rc.expectClosed()
	}
	if got := warns.n.Load(); got != 1 {
		t.Errorf("%d warnings for 20 oversized frames; want 1", got)
	}
}

func TestNative_malformedFrame_getsBadRequestAndConnKeepsWorking(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	rc := dialHello(t, n)
	for name, payload := range map[string][]byte{
		"empty":              {},
		"not msgpack":        []byte("GET sess:1\r\n"),
		"map":                {0x81, 0xa1, 'a', 1},
		"truncated":          {0x9c, 0x2a, 3, 0, 0xa6, 's', 'e'},
		"trailing":           {0x91, 1, 0},
		"huge string length": {0x9c, 0x2a, 3, 0, 0xdb, 0xff, 0xff, 0xff, 0xff},
		"huge array length":  {0xdd, 0xff, 0xff, 0xff, 0xff},
	} {
		rc.sendPayload(payload)
		expectCode(t, name, rc.recv(), protocol.CodeBadRequest)
	}
	// A request whose ID decoded before the bad field gets its ID back.
	rc.sendPayload([]byte{0x93, 0x2a, 0x80, 0})
	if resp := rc.recv(); resp.ID != 0x2a || resp.Code != protocol.CodeBadRequest {
		t.Errorf("bad op field: got id %d code %v; want id 42 code bad_request", resp.ID, resp.Code)
	}
	resp := rc.do(&protocol.Request{ID: 7, Op: protocol.OpGet, Key: "sess:1"})
	if resp.ID != 7 || resp.Code != protocol.CodeOK || string(resp.Value) != want["sess:1"] {
		t.Errorf("get after bad frames: got id %d %q %v; want id 7 %q", resp.ID, resp.Value, resp.Err(), want["sess:1"])
	}
	checkSessions(t, n, want)
}

func TestNative_unknownOp_getsUnknownOp(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	rc := dialHello(t, n)
	for _, op := range []protocol.Op{0, 200, 255} {
		resp := rc.do(&protocol.Request{ID: 3, Op: op, Key: "sess:1"})
		expectCode(t, fmt.Sprintf("op %d", op), resp, protocol.CodeUnknownOp)
		if resp.ID != 3 {
			t.Errorf("op %d: got reply id %d; want 3", op, resp.ID)
		}
	}
	expectCode(t, "ping after", rc.do(&protocol.Request{ID: 4, Op: protocol.OpPing}), protocol.CodeOK)
	checkSessions(t, n, want)
}

func TestNative_handshake_versionErrorThenClose(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	cases := map[string]*protocol.Request{
		"no hello":      {ID: 1, Op: protocol.OpGet, Key: "sess:1"},
		"wrong version": {ID: 1, Op: protocol.OpHello, Version: protocol.Version + 1},
		"version zero":  {ID: 1, Op: protocol.OpHello},
		"set first":     {ID: 1, Op: protocol.OpSet, Key: "sess:1", Value: []byte("stolen"), TTL: 1000},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, n)
			expectCode(t, name, rc.do(req), protocol.CodeVersion)
			rc.expectClosed()
		})
	}
	checkSessions(t, n, want)
}

func TestNative_limitsAndTTL_getClearErrors(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	rc := dialHello(t, n)
	hour := time.Hour.Milliseconds()
	bigKey := strings.Repeat("k", protocol.DefaultMaxKey+1)
	cases := []struct {
		name string
		req  protocol.Request
		want protocol.Code
	}{
		{"key over limit", protocol.Request{Op: protocol.OpSet, Key: bigKey, Value: []byte("v"), TTL: hour}, protocol.CodeTooLarge},
		{"get key over limit", protocol.Request{Op: protocol.OpGet, Key: bigKey}, protocol.CodeTooLarge},
		{"delete key over limit", protocol.Request{Op: protocol.OpDelete, Keys: []string{"sess:1", bigKey}}, protocol.CodeTooLarge},
		{"value over limit", protocol.Request{Op: protocol.OpSet, Key: "sess:1", Value: make([]byte, protocol.DefaultMaxValue+1), TTL: hour}, protocol.CodeTooLarge},
		{"empty key", protocol.Request{Op: protocol.OpSet, Value: []byte("v"), TTL: hour}, protocol.CodeBadRequest},
		{"set ttl zero", protocol.Request{Op: protocol.OpSet, Key: "sess:1", Value: []byte("v")}, protocol.CodeBadRequest},
		{"set ttl negative", protocol.Request{Op: protocol.OpSet, Key: "sess:2", Value: []byte("v"), TTL: -1}, protocol.CodeBadRequest},
		{"add ttl zero", protocol.Request{Op: protocol.OpSet, Flags: protocol.FlagIfAbsent, Key: "new", Value: []byte("v")}, protocol.CodeBadRequest},
		{"touch ttl zero", protocol.Request{Op: protocol.OpTouch, Key: "sess:3"}, protocol.CodeBadRequest},
		{"touch ttl negative", protocol.Request{Op: protocol.OpTouch, Key: "sess:3", TTL: -1000}, protocol.CodeBadRequest},
		{"getandtouch ttl zero", protocol.Request{Op: protocol.OpGetAndTouch, Key: "sess:4"}, protocol.CodeBadRequest},
		{"negative count", protocol.Request{Op: protocol.OpScan, Count: -1}, protocol.CodeBadRequest},
		{"pattern over limit", protocol.Request{Op: protocol.OpScan, Pattern: "*" + strings.Repeat("[ab]", protocol.DefaultMaxKey)}, protocol.CodeTooLarge},
	}
	for i, c := range cases {
		c.req.ID = uint64(100 + i)
		resp := rc.do(&c.req)
		expectCode(t, c.name, resp, c.want)
		if resp.Msg == "" {
			t.Errorf("%s: got an empty error message; want one saying why", c.name)
		}
	}
	ttl := rc.do(&protocol.Request{ID: 1, Op: protocol.OpTTL, Key: "sess:3"})
	if ttl.Code != protocol.CodeOK || ttl.TTL <= time.Hour.Milliseconds()-60_000 {
		t.Errorf("ttl of sess:3 after refused touches: got %dms, %v; want about an hour", ttl.TTL, ttl.Err())
	}
	if n.Store().Stats().Tombstones != 0 {
		t.Errorf("refused requests left %d tombstones; want 0", n.Store().Stats().Tombstones)
	}
	checkSessions(t, n, want)
}

func TestNative_stalledHalfFrame_doesNotBlockOtherClients(t *testing.T) {
	n := startTestNode(t)
	want := storeSessions(t, n)
	halfHeader := dialHello(t, n)
	halfHeader.sendRaw([]byte{0, 0})
	halfBody := dialHello(t, n)
	b, _ := protocol.AppendFrame(nil, &protocol.Request{ID: 9, Op: protocol.OpSet, Key: "sess:1", Value: []byte("half"), TTL: 1000})
	halfBody.sendRaw(b[:len(b)-3])
	bigClaim := dialHello(t, n)
	bigClaim.sendRaw(append(binary.BigEndian.AppendUint32(nil, uint32(n.cfg.Limits.MaxFrame())), 0x9c))

	rc := dialHello(t, n)
	for i := range 50 {
		k := fmt.Sprintf("other:%d", i)
		expectCode(t, "set "+k, rc.do(&protocol.Request{ID: uint64(i), Op: protocol.OpSet, Key: k, Value: []byte("v"), TTL: 60_000}), protocol.CodeOK)
		expectCode(t, "delete "+k, rc.do(&protocol.Request{ID: uint64(i), Op: protocol.OpDelete, Keys: []string{k}}), protocol.CodeOK)
	}
	// The stalled connections were never answered and never applied.
	for _, stalled := range []*rawConn{halfHeader, halfBody, bigClaim} {
		_ = stalled.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := stalled.fr.Next(); !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
			t.Errorf("stalled connection: got %v; want no reply (a read timeout)", err)
		}
	}
	checkSessions(t, n, want)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestNative_pipelinedRequests_repliesCarryTheirIDs(t *testing.T) {
	n := startTestNode(t)
	rc := dialHello(t, n)
	var batch []byte
	for i := range 100 {
		b, err := protocol.AppendFrame(batch, &protocol.Request{ID: uint64(1000 + i), Op: protocol.OpSet, Key: fmt.Sprint("p", i), Value: []byte("v"), TTL: 60_000})
		if err != nil {
			t.Fatal(err)
		}
		batch = b
	}
	rc.sendRaw(batch)
	// Replies may come in any order; each ID must come back once.
	seen := map[uint64]bool{}
	for range 100 {
		resp := rc.recv()
		if resp.ID < 1000 || resp.ID >= 1100 || seen[resp.ID] || resp.Code != protocol.CodeOK {
			t.Fatalf("reply: got id %d code %v; want a new id in [1000,1100) and ok", resp.ID, resp.Code)
		}
		seen[resp.ID] = true
	}
}

// Requests that may wait on other nodes run on the node's workers, which
// outlive them: one after another, they reuse a worker instead of starting
// (and growing the stack of) a goroutine each.
func TestNative_waitingRequests_reuseWorkers(t *testing.T) {
	n := startTestNode(t)
	rc := dialHello(t, n)
	most := 0
	for i := range 50 {
		// A count of keys asks every partition, so it does not run inline.
		if resp := rc.do(&protocol.Request{ID: uint64(10 + i), Op: protocol.OpCount}); resp.Code != protocol.CodeOK {
			t.Fatalf("count: got %v; want ok", resp.Err())
		}
		most = max(most, n.work.Running())
	}
	// A worker may not be back waiting when the next request comes.
	if most < 1 || most > 2 {
		t.Errorf("%d workers ran 50 requests one after another; want 1 or 2, reused", most)
	}
}

// A backup applies a primary's entries on the connection's reader, as
// they come: replies in order and no worker for them (a goroutine and a
// flusher's wakeup per replicated write cost the backups 4% of a cluster's
// SET throughput).
func TestNative_replicatedEntries_applyInOrderWithoutWorkers(t *testing.T) {
	n := startTestNode(t)
	rc := dialHello(t, n)
	v := n.view()
	var batch []byte
	const writes = 50
	for i := range writes {
		key := "s:" + fmt.Sprint(i%5) // five keys, each written ten times
		e := protocol.Entry{Key: key, Value: []byte(fmt.Sprint("v", i)), TTL: 60_000, Version: uint64(1000 + i)}
		b, err := protocol.AppendFrame(batch, &protocol.Request{ID: uint64(100 + i), Op: protocol.OpReplicate, Key: "primary",
			Partition: int32(ring.Partition(key, n.cfg.Partitions)), Table: v.table.Version, TableHash: v.hash, Entries: []protocol.Entry{e}})
		if err != nil {
			t.Fatal(err)
		}
		batch = b
	}
	rc.sendRaw(batch)
	for i := range writes {
		resp := rc.recv()
		if resp.ID != uint64(100+i) || resp.Code != protocol.CodeOK || resp.N != 1 {
			t.Fatalf("reply %d: got id %d, %v, applied %d; want id %d, ok, applied 1", i, resp.ID, resp.Err(), resp.N, 100+i)
		}
	}
	for k := range 5 {
		key := "s:" + fmt.Sprint(k)
		e, ok := n.store.Entry(key)
		if want := fmt.Sprint("v", writes-5+k); !ok || string(e.Value) != want {
			t.Errorf("%s: got %q (present %v); want the last write, %q", key, e.Value, ok, want)
		}
	}
	if w := n.work.Running(); w != 0 {
		t.Errorf("%d workers started for replicated entries; want none", w)
	}
	// A transfer's batch runs on a worker: what follows it on the
	// connection does not wait for it.
	var entries []protocol.Entry
	for i := range maxInlineEntries + 1 {
		entries = append(entries, protocol.Entry{Key: "{t}:" + fmt.Sprint(i), Value: []byte("v"), TTL: 60_000, Version: 1}) // one partition, as a push sends
	}
	p := int32(ring.Partition(entries[0].Key, n.cfg.Partitions))
	resp := rc.do(&protocol.Request{ID: 500, Op: protocol.OpReplicate, Key: "primary", Partition: p, Table: v.table.Version, TableHash: v.hash, Entries: entries})
	if resp.Code != protocol.CodeOK || resp.N != int64(len(entries)) {
		t.Fatalf("transfer batch: %v, applied %d; want ok, %d", resp.Err(), resp.N, len(entries))
	}
	if w := n.work.Running(); w != 1 {
		t.Errorf("%d workers after a transfer's batch; want the one that ran it", w)
	}
}

// A connection that stalls before its hello, or in the middle of a frame,
// is closed; one that idles between frames is not. (Thousands of
// connections each holding a frame nearly sent used to keep 1.7 MB each.)
func TestNative_stalledConnectionsAreClosed(t *testing.T) {
	n := startTestNode(t, func(c *Config) {
		c.timeouts = nativeTimeouts{hello: 300 * time.Millisecond, frame: 300 * time.Millisecond}
	})
	closedWithin := func(rc *rawConn, d time.Duration) bool {
		rc.c.SetReadDeadline(time.Now().Add(d))
		defer rc.c.SetReadDeadline(time.Time{})
		_, err := rc.c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	silent := dialRaw(t, n)
	idle := dialHello(t, n)
	half := dialHello(t, n)
	half.sendRaw(append(binary.BigEndian.AppendUint32(nil, 100_000), make([]byte, 50_000)...))

	if !closedWithin(silent, 5*time.Second) {
		t.Error("a connection that sent no hello is still open")
	}
	if !closedWithin(half, 5*time.Second) {
		t.Error("a connection that stalled in the middle of a frame is still open")
	}
	// Ten times the frame timeout idle between frames, then served.
	if closedWithin(idle, 3*time.Second) {
		t.Fatal("an idle connection was closed")
	}
	if resp := idle.do(&protocol.Request{ID: 2, Op: protocol.OpPing}); resp.Code != protocol.CodeOK {
		t.Errorf("ping after idling: %v", resp.Err())
	}
	// A large frame that arrives whole is read as before.
	big := dialHello(t, n)
	if resp := big.do(&protocol.Request{ID: 3, Op: protocol.OpSet, Key: "k", Value: make([]byte, 900_000), TTL: 60_000}); resp.Code != protocol.CodeOK {
		t.Errorf("a 900 KB SET: %v", resp.Err())
	}
}

// The replies a connection's waiting requests may come to are bounded in
// bytes: a client that pipelines 250 transfers of a partition holding 2 MiB
// and reads nothing used to have the node run all of them and hold every
// reply (up to 256; 265 MB). It runs about maxAsyncReplyBytes' worth, and
// the rest once the client reads.
func TestNative_waitingRepliesAreBoundedInBytes(t *testing.T) {
	n := startTestNode(t)
	rc := dialHello(t, n)
	rc.c.SetDeadline(time.Now().Add(time.Minute)) // 126 MiB to read, under the race detector too
	for i := range 8 {
		key := fmt.Sprint("{big}", i)
		if resp := rc.do(&protocol.Request{ID: uint64(10 + i), Op: protocol.OpSet, Key: key, Value: make([]byte, 256<<10), TTL: 600_000}); resp.Code != protocol.CodeOK {
			t.Fatalf("set %s: %v", key, resp.Err())
		}
	}
	p := int32(ring.Partition("{big}", n.cfg.Partitions))
	const fetches = 250
	var batch []byte
	for i := range fetches {
		b, err := protocol.AppendFrame(batch, &protocol.Request{ID: uint64(100 + i), Op: protocol.OpFetch, Partition: p, Count: math.MaxInt32})
		if err != nil {
			t.Fatal(err)
		}
		batch = b
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rc.sendRaw(batch)
	time.Sleep(2 * time.Second) // reading nothing
	runtime.ReadMemStats(&after)
	// Each reply is a page of the partition: all 250 of them took 126 MiB
	// before the bound; about 58 of them (a frame's room each), 34 MiB.
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d transfers unread: the node allocated %d MiB", fetches, got>>20)
	if got > 100<<20 {
		t.Errorf("%d transfers unread made the node allocate %d MiB; want under 100", fetches, got>>20)
	}
	for range fetches {
		if resp := rc.recv(); resp.Code != protocol.CodeOK || len(resp.Entries) == 0 {
			t.Fatalf("fetch %d: %v with %d entries", resp.ID, resp.Err(), len(resp.Entries))
		}
	}
}
