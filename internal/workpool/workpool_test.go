package workpool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stillWaiting runs wait on a goroutine, fails t with msg if it returns
// within 20 ms, and returns a channel closed when it does return.
func stillWaiting(t *testing.T, wait func(), msg string) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal(msg)
	case <-time.After(20 * time.Millisecond):
	}
	return done
}

// waitUntil polls cond until it holds or a generous deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPool_reusesIdleWorkers(t *testing.T) {
	p := New(time.Minute)
	defer func() { p.Close(); p.Wait() }()
	for i := range 100 {
		done := make(chan struct{})
		if !p.Go(func() { close(done) }) {
			t.Fatalf("task %d refused by an open pool", i)
		}
		<-done
	}
	// A worker may not be back in its select when the next task comes.
	if n := p.Running(); n > 2 {
		t.Errorf("%d workers ran 100 tasks one after another; want them reused", n)
	}
}

func TestPool_runsTasksAtOnce(t *testing.T) {
	p := New(time.Minute)
	defer func() { p.Close(); p.Wait() }()
	const n = 8
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		p.Go(func() {
			started.Done()
			<-release
		})
	}
	started.Wait() // every task runs while the others block
	close(release)
}

func TestPool_workersEndWhenIdle(t *testing.T) {
	p := New(10 * time.Millisecond)
	defer func() { p.Close(); p.Wait() }()
	p.Go(func() {})
	waitUntil(t, "the idle worker ends", func() bool { return p.Running() == 0 })
	ran := make(chan struct{})
	p.Go(func() { close(ran) }) // a new worker starts
	<-ran
}

func TestPool_closeRefusesNewTasksAndWaitsForRunningOnes(t *testing.T) {
	p := New(time.Minute)
	release := make(chan struct{})
	var finished atomic.Bool
	p.Go(func() {
		<-release
		finished.Store(true)
	})
	p.Close()
	if p.Go(func() { t.Error("a closed pool ran a task") }) {
		t.Error("Go after Close reported true")
	}
	waited := stillWaiting(t, p.Wait, "Wait returned while a task was still running")
	close(release)
	<-waited
	if !finished.Load() {
		t.Error("Wait returned before the running task finished")
	}
	p.Close() // a second Close is harmless
}

func TestPool_spawnCountsTheTaskAndRunsItEvenWhenClosed(t *testing.T) {
	p := New(time.Minute)
	var wg sync.WaitGroup
	var ran atomic.Int32
	release := make(chan struct{})
	p.Spawn(&wg, func() {
		<-release
		ran.Add(1)
	})
	waited := stillWaiting(t, wg.Wait, "the WaitGroup was done before the task ran")
	close(release)
	<-waited
	p.Close()
	p.Spawn(&wg, func() { ran.Add(1) }) // on the caller: returns once it ran
	if got := ran.Load(); got != 2 {
		t.Errorf("%d tasks ran; want 2, the second on the caller after Close", got)
	}
	wg.Wait()
	p.Wait()
}
