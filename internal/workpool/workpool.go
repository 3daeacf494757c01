// Package workpool runs short tasks that may block (on another node, on
// replication) on goroutines that outlive them.
//
// A request that a node forwards or replicates runs a deep call path: a
// goroutine started for it grows (copies) its stack several times, and the
// garbage collector shrinks it again, so a goroutine per request spent 10 to
// 15% of a node's CPU on stack copies. A worker keeps its grown stack for
// the next task and ends after it has been idle for a while.
package workpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultIdle is how long a worker waits for another task before it ends.
const DefaultIdle = 5 * time.Second

// Pool runs tasks on worker goroutines. Its zero value is not usable; see
// New.
type Pool struct {
	idle    time.Duration
	work    chan func()   // tasks for idle workers
	stop    chan struct{} // closed by Close
	running atomic.Int32
	closed  atomic.Bool // set by Close: Go refuses tasks

	mu sync.Mutex     // orders wg.Add after a closed check against Close
	wg sync.WaitGroup // workers running
}

// New returns a pool whose workers end after idle without a task.
func New(idle time.Duration) *Pool {
	return &Pool{idle: idle, work: make(chan func()), stop: make(chan struct{})}
}

// Go runs f on an idle worker if there is one, else on a new one. It
// reports false, without running f, once the pool is closed.
func (p *Pool) Go(f func()) bool {
	if p.closed.Load() {
		return false
	}
	select {
	case p.work <- f: // an idle worker took it
		return true
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.wg.Add(1)
	p.running.Add(1)
	go p.worker(f)
	return true
}

// Spawn runs f on a worker, counted in wg until it returns; once the pool
// is closed it runs f on the caller instead, so that f always runs.
func (p *Pool) Spawn(wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	task := func() {
		defer wg.Done()
		f()
	}
	if !p.Go(task) {
		task()
	}
}

func (p *Pool) worker(f func()) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		f()
		f = nil // an idle worker must not keep its last task's memory
		idle.Reset(p.idle)
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Running returns how many workers are running, busy or idle.
func (p *Pool) Running() int { return int(p.running.Load()) }

// Close makes Go refuse new tasks and idle workers end; tasks already
// running finish (a task that Go handed over while Close ran, too). Wait
// waits for them.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed.Load() {
		p.closed.Store(true)
		close(p.stop)
	}
}

// Wait waits until every worker has ended. Call it after Close.
func (p *Pool) Wait() { p.wg.Wait() }
