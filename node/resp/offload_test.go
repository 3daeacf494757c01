package resp

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
	"github.com/cloakroom/cloakroom/ring"
)

// slowRemote makes keys starting with "r:" remote: each of their calls
// waits for delay (or the server's context).
func slowRemote(delay time.Duration) func(*Config, *storeBackend) {
	return func(_ *Config, b *storeBackend) {
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
		}
	}
}

func TestServer_RemoteCommands_KeepPipelineOrder(t *testing.T) {
	ts := startServer(t, slowRemote(5*time.Millisecond))
	c := ts.dial(t)
	var in strings.Builder
	var want []string
	for i := range 20 {
		k := "l:" + itoa(i%3)
		if i%2 == 0 {
			k = "r:" + itoa(i%3)
		}
		v := itoa(i)
		in.WriteString("*3\r\n$3\r\nset\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n$" + itoa(len(v)) + "\r\n" + v + "\r\n")
		in.WriteString("*2\r\n$3\r\nget\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n")
		in.WriteString("PING\r\n")
		want = append(want, "+OK\r\n", "$"+itoa(len(v))+"\r\n"+v+"\r\n", "+PONG\r\n")
	}
	c.send(in.String())
	for i, w := range want {
		if got := c.reply(); got != w {
			t.Fatalf("reply %d: got %q; want %q", i, got, w)
		}
	}
	c.expect("$2\r\n15\r\n", "get", "l:0")
	c.expect("$2\r\n18\r\n", "get", "r:0")
}

func TestServer_RemoteCommand_OthersServedMeanwhile(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	slow := ts.dial(t)
	slow.send("*2\r\n$3\r\nget\r\n$3\r\nr:x\r\nPING\r\n")
	other := ts.dial(t)
	other.expect("+OK\r\n", "set", "k", "v")
	other.expect("$1\r\nv\r\n", "get", "k")
	close(release)
	if got := slow.reply(); got != "$-1\r\n" {
		t.Errorf("got %q; want a null", got)
	}
	if got := slow.reply(); got != "+PONG\r\n" {
		t.Errorf("got %q; want PONG after the remote GET", got)
	}
}

func TestServer_Close_WhileRemoteCommandWaits(t *testing.T) {
	waiting := make(chan struct{})
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			close(waiting)
			<-ctx.Done()
		}
	})
	c := ts.dial(t)
	c.send("*2\r\n$3\r\nget\r\n$3\r\nr:x\r\n")
	<-waiting
	ts.mustClose(t, "while a command waited on the backend")
}

func TestServer_PipelinedRemoteReads_RunTogether(t *testing.T) {
	var running, most atomic.Int32
	var mu sync.Mutex
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		b.remote = func(key string) bool { return strings.HasPrefix(key, "r:") }
		b.wait = func(ctx context.Context, _ *protocol.Request) {
			n := running.Add(1)
			mu.Lock()
			most.Store(max(most.Load(), n))
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
		}
	})
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "r:a", "1")
	var in strings.Builder
	for i := range 8 {
		k := "r:" + itoa(i)
		in.WriteString("*2\r\n$3\r\nget\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n")
	}
	in.WriteString("*2\r\n$3\r\nget\r\n$3\r\nr:a\r\n*2\r\n$3\r\nget\r\n$3\r\nr:a\r\n")
	// A write of a key read before it waits for that read.
	in.WriteString("*3\r\n$3\r\nset\r\n$3\r\nr:a\r\n$1\r\n2\r\n*2\r\n$3\r\nget\r\n$3\r\nr:a\r\n")
	c.send(in.String())
	for i := range 8 {
		if got := c.reply(); got != "$-1\r\n" {
			t.Fatalf("GET r:%d: got %q; want null", i, got)
		}
	}
	for _, want := range []string{"$1\r\n1\r\n", "$1\r\n1\r\n", "+OK\r\n", "$1\r\n2\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q; want %q", got, want)
		}
	}
	if most.Load() < 2 {
		t.Errorf("at most %d remote calls ran at once; want pipelined reads of different keys together", most.Load())
	}
}

// A pipelined command alone in its partition runs as it would alone, not
// as a one-request atomic step; commands sharing a partition still run as
// one.
func TestServer_PipelinedGroupsOfOne_SkipTheAtomicStep(t *testing.T) {
	var b *storeBackend
	ts := startServer(t, slowRemote(0), func(_ *Config, sb *storeBackend) { b = sb })
	c := ts.dial(t)
	n := b.Partitions()
	var keys []string // remote keys in partitions of their own
	seen := map[int]bool{ring.Partition("r:a", n): true}
	for i := 0; len(keys) < 8; i++ {
		k := "r:" + itoa(i)
		if p := ring.Partition(k, n); !seen[p] {
			seen[p] = true
			keys = append(keys, k)
		}
	}
	var in strings.Builder
	var want []string
	for i, k := range keys {
		v := itoa(i)
		in.WriteString("*3\r\n$3\r\nset\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n$" + itoa(len(v)) + "\r\n" + v + "\r\n")
		want = append(want, "+OK\r\n")
	}
	in.WriteString("*3\r\n$3\r\nset\r\n$3\r\nr:a\r\n$1\r\n1\r\n*2\r\n$3\r\nget\r\n$3\r\nr:a\r\n")
	want = append(want, "+OK\r\n", "$1\r\n1\r\n")
	c.send(in.String())
	for i, w := range want {
		if got := c.reply(); got != w {
			t.Fatalf("reply %d: got %q; want %q", i, got, w)
		}
	}
	if got := b.atomics.Load(); got != 1 {
		t.Errorf("%d atomic steps for 8 commands alone in their partitions and 2 sharing one; want 1", got)
	}
	if got := b.alls.Load(); got != 1 {
		t.Errorf("the 8 commands alone in their partitions went to the backend in %d DoAll calls; want 1 (together)", got)
	}
	for i, k := range keys {
		c.expect("$1\r\n"+itoa(i)+"\r\n", "get", k)
	}
}

func TestServer_Quit_RepliesThenClosesWithoutRunningTheRest(t *testing.T) {
	ts := startServer(t)
	c := ts.dial(t)
	c.send("*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\nQUIT\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n")
	for _, want := range []string{"+OK\r\n", "+OK\r\n"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q; want %q", got, want)
		}
	}
	if !c.closed() {
		t.Fatal("connection open after QUIT")
	}
	d := ts.dial(t)
	d.expect("$1\r\n1\r\n", "get", "a")
	d.expect("$-1\r\n", "get", "b")
}

func TestServer_Clients_CountsOpenConnections(t *testing.T) {
	ts := startServer(t)
	a, b := ts.dial(t), ts.dial(t)
	a.expect("+PONG\r\n", "ping")
	b.expect("+PONG\r\n", "ping")
	if n := ts.srv.Clients(); n != 2 {
		t.Fatalf("Clients: got %d; want 2", n)
	}
	b.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.Clients() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Clients: got %d after a client left; want 1", ts.srv.Clients())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.cmd("client", "list")
	if got := a.reply(); strings.Count(got, "id=") != 1 {
		t.Errorf("CLIENT LIST: got %q; want one connection", got)
	}
}

func TestServer_RemoteCommands_ReuseWorkers(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	c := ts.dial(t)
	most := 0
	for i := range 100 {
		c.expect("+OK\r\n", "set", "r:"+itoa(i%7), "v")
		most = max(most, ts.srv.work.Running())
	}
	// A worker may not be back waiting when the next command comes.
	if most > 2 {
		t.Errorf("%d workers ran 100 commands one after another; want them reused", most)
	}
}

func TestServer_Workers_EndWhenIdle(t *testing.T) {
	ts := startServer(t, slowRemote(0), func(cfg *Config, _ *storeBackend) { cfg.workerIdle = 10 * time.Millisecond })
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "r:a", "v")
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.work.Running() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still running long after their idle time", ts.srv.work.Running())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.expect("$1\r\nv\r\n", "get", "r:a") // a new worker starts
}

// Pipelined replies wait in their loop's flush queue until the loop has
// read every connection with input. Clients that pipeline, mix in remote
// commands (which run on workers) and hang up without reading must never
// see another's reply, nor miss or reorder their own: a queued reply
// written after its connection closed could reach a new connection that
// got the same descriptor.
func TestServer_QueuedReplies_ReachOnlyTheirClient(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	c := ts.dial(t)
	c.expect("+OK\r\n", "set", "r:x", "remote")
	const clients, rounds = 12, 40
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				var in strings.Builder
				var want []string
				for j := range 1 + (id+r)%20 {
					if (id+r+j)%5 == 0 {
						in.WriteString("*2\r\n$3\r\nget\r\n$3\r\nr:x\r\n")
						want = append(want, "$6\r\nremote\r\n")
						continue
					}
					v := itoa(id) + "-" + itoa(r) + "-" + itoa(j)
					in.WriteString("*2\r\n$4\r\necho\r\n$" + itoa(len(v)) + "\r\n" + v + "\r\n")
					want = append(want, "$"+itoa(len(v))+"\r\n"+v+"\r\n")
				}
				if _, err := nc.Write([]byte(in.String())); err != nil {
					t.Errorf("write: %v", err)
					nc.Close()
					return
				}
				if r%3 == 0 { // hang up with replies on their way
					nc.Close()
					continue
				}
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(nc)
				for i, w := range want {
					var sb strings.Builder
					if err := readReply(br, &sb); err != nil || sb.String() != w {
						t.Errorf("client %d round %d reply %d: got %q, %v; want %q", id, r, i, sb.String(), err, w)
						break
					}
				}
				nc.Close()
			}
		}()
	}
	wg.Wait()
	c.expect("+PONG\r\n", "ping")
}

// Pipelines of remote commands reuse the buffers of earlier batches (their
// copied arguments, the forks that run their commands): nothing of one
// batch may show in another's replies. Two connections, one speaking
// RESP3, take turns, with values of every size, one past what a pooled
// buffer keeps, and reads of keys written, deleted and never written.
func TestServer_PipelinedRemoteCommands_ShareNothingAcrossBatches(t *testing.T) {
	ts := startServer(t, slowRemote(0))
	conns := []*rawConn{ts.dial(t), ts.dial(t)}
	conns[1].cmd("hello", "3")
	if got := conns[1].reply(); !strings.HasPrefix(got, "%") {
		t.Fatalf("HELLO 3: got %q; want a map", got)
	}
	null := []string{"$-1\r\n", "_\r\n"}
	pipeline := func(c *rawConn, cmds [][]string) {
		t.Helper()
		var in strings.Builder
		for _, args := range cmds {
			in.WriteString("*" + itoa(len(args)) + "\r\n")
			for _, a := range args {
				in.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
			}
		}
		c.send(in.String())
	}
	for round := range 12 {
		ci := round % 2
		c := conns[ci]
		size := []int{0, 1, 200, 5000, keepValue + 1, 3}[round%6]
		var sets, gets [][]string
		var want []string
		for i := range 16 {
			k := "r:" + itoa(round) + ":" + itoa(i)
			v := strings.Repeat(string(rune('a'+round)), size) + itoa(i)
			switch i % 4 {
			case 0, 1:
				sets = append(sets, []string{"set", k, v})
				gets = append(gets, []string{"get", k})
				want = append(want, "$"+itoa(len(v))+"\r\n"+v+"\r\n")
			case 2: // written, then deleted
				sets = append(sets, []string{"set", k, v}, []string{"del", k})
				gets = append(gets, []string{"get", k})
				want = append(want, null[ci])
			case 3: // a key never written
				gets = append(gets, []string{"get", "r:never:" + itoa(round) + ":" + itoa(i)})
				want = append(want, null[ci])
			}
		}
		pipeline(c, sets)
		for _, args := range sets {
			w := "+OK\r\n"
			if args[0] == "del" {
				w = ":1\r\n"
			}
			if got := c.reply(); got != w {
				t.Fatalf("round %d: %s %s: got %.80q; want %q", round, args[0], args[1], got, w)
			}
		}
		pipeline(c, gets)
		for i, w := range want {
			if got := c.reply(); got != w {
				t.Fatalf("round %d: %q: got %.80q; want %.80q", round, gets[i], got, w)
			}
		}
	}
}

// A command naming more keys than maxLoopArgs allows runs off the event
// loop, whether its keys are here or not: held in the backend, it holds up
// none of the loop's other clients, and its reply and the commands
// pipelined behind it come in order once it is let go.
func TestServer_ManyKeyCommand_OthersServedMeanwhile(t *testing.T) {
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		cfg.EventLoops = 1 // every connection on the loop the command would hold
		b.hold = func(ctx context.Context, req *protocol.Request) {
			if req.Key != "many:0" && (len(req.Keys) == 0 || req.Keys[0] != "many:0") {
				return
			}
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	const n = maxLoopArgs // keys: one command of n+1 arguments
	keys := make([]string, n)
	pairs := make([]string, 0, 2*n)
	for i := range keys {
		keys[i] = "many:" + itoa(i)
		pairs = append(pairs, keys[i], "v")
	}
	mgetReply := "*" + itoa(n) + "\r\n" + strings.Repeat("$1\r\nv\r\n", n)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"MSET"}, pairs...), "+OK\r\n"},
		{append([]string{"MGET"}, keys...), mgetReply},
		{append([]string{"EXISTS"}, keys...), ":" + itoa(n) + "\r\n"},
		{append([]string{"DEL"}, keys...), ":" + itoa(n) + "\r\n"},
	} {
		slow := ts.dial(t)
		slow.send(resp(tc.args...) + "PING\r\n")
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of %d keys never reached the backend", tc.args[0], n)
		}
		other := ts.dial(t)
		other.expect("+OK\r\n", "set", "k", tc.args[0])
		other.expect(bulk(tc.args[0]), "get", "k")
		release <- struct{}{}
		if got := slow.reply(); got != tc.want {
			t.Errorf("%s of %d keys: got %.80q; want %.80q", tc.args[0], n, got, tc.want)
		}
		if got := slow.reply(); got != "+PONG\r\n" {
			t.Errorf("after %s: got %q; want PONG", tc.args[0], got)
		}
	}
}

// A command at maxLoopArgs runs on the loop as before, one past it off
// the loop: the bound is where it says.
func TestServer_CommandAtMaxLoopArgs_RunsOnTheLoop(t *testing.T) {
	var mu sync.Mutex
	var onLoop []bool // for each EXISTS the backend saw
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		b.hold = func(_ context.Context, req *protocol.Request) {
			if len(req.Keys) > 0 && req.Keys[len(req.Keys)-1] == "last" {
				mu.Lock()
				defer mu.Unlock()
				onLoop = append(onLoop, onEventLoop())
			}
		}
	})
	c := ts.dial(t)
	args := []string{"EXISTS"}
	for len(args) < maxLoopArgs-1 {
		args = append(args, "k"+itoa(len(args)))
	}
	args = append(args, "last")
	c.expect(":0\r\n", args...)
	c.expect(":0\r\n", append(args[:1:1], append([]string{"one-more"}, args[1:]...)...)...)
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false}; !slices.Equal(onLoop, want) {
		t.Errorf("EXISTS of %d and %d arguments on the event loop: %v; want %v", maxLoopArgs, maxLoopArgs+1, onLoop, want)
	}
}

// onEventLoop reports whether the caller runs on one of gnet's event
// loops.
func onEventLoop() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "gnet/v2.(*eventloop)")
}

// An MGET whose values pass maxLoopReply stops on the event loop and runs
// again, whole, on a goroutine; its reply is that run's alone, and the
// commands behind it follow it. A smaller one stays on the loop.
func TestServer_LargeMGet_RunsAgainOffTheLoop(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]bool{} // for each key, on the loop or not, per Do
	ts := startServer(t, func(cfg *Config, b *storeBackend) {
		b.hold = func(_ context.Context, req *protocol.Request) {
			if req.Op == protocol.OpGet {
				mu.Lock()
				defer mu.Unlock()
				calls[req.Key] = append(calls[req.Key], onEventLoop())
			}
		}
	})
	c := ts.dial(t)
	big := strings.Repeat("v", maxLoopReply/2+1)
	for _, k := range []string{"big:0", "big:1", "big:2"} {
		c.expect("+OK\r\n", "set", k, big)
	}
	c.expect("+OK\r\n", "set", "small", "s")
	c.send(resp("MGET", "big:0", "big:1", "big:2", "nope") + resp("MGET", "small", "big:0") + "PING\r\n")
	if got, want := c.reply(), "*4\r\n"+strings.Repeat(bulk(big), 3)+"$-1\r\n"; got != want {
		t.Errorf("MGET of 3 large values: got %d bytes %.40q; want %d bytes", len(got), got, len(want))
	}
	if got, want := c.reply(), "*2\r\n"+bulk("s")+bulk(big); got != want {
		t.Errorf("MGET of one large value: got %d bytes %.40q; want %d bytes", len(got), got, len(want))
	}
	if got := c.reply(); got != "+PONG\r\n" {
		t.Errorf("after the MGETs: got %q; want PONG", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string][]bool{
		"big:0": {true, false, true}, // stopped on the loop, again off it; the second MGET on it
		"big:1": {true, false},       // the value that passed the bound
		"big:2": {false},
		"nope":  {false},
		"small": {true},
	}
	for k, w := range want {
		if !slices.Equal(calls[k], w) {
			t.Errorf("GETs of %s on the event loop: %v; want %v", k, calls[k], w)
		}
	}
}
