package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// nodePool is a fixed set of connections to one node, redialled on failure.
type nodePool struct {
	addr   string
	cfg    Config
	next   atomic.Uint32
	slots  []poolSlot
	closed atomic.Bool // set by close; a closed pool dials nothing
	// quietUntil (unix nanoseconds): a read or a table request here went
	// unanswered lately, so until then reads ask a backup first (see
	// sendPartition) and refreshes ask this node last (see candidates).
	quietUntil atomic.Int64
	// refused is the node's last refusal of the password (ErrAuth), which
	// calls get again without dialling until it ends: a misconfigured
	// application at thousands of calls a second would otherwise open, and
	// have refused, a connection a call.
	refused atomic.Pointer[refusal]
}

// refusal is a node's refusal of the password, answered from memory until
// its end (for refusalMemory).
type refusal struct {
	err error
	end time.Time
}

const refusalMemory = time.Second

// quiet reports whether a call here went unanswered within the last
// AttemptTimeout.
func (p *nodePool) quiet() bool { return time.Now().UnixNano() < p.quietUntil.Load() }

// markQuiet records that a call here went unanswered.
func (p *nodePool) markQuiet() {
	p.quietUntil.Store(time.Now().Add(p.cfg.AttemptTimeout).UnixNano())
}

type poolSlot struct {
	conn atomic.Pointer[conn]
	dial sync.Mutex // held while (re)dialling this slot, so only one caller dials
}

func newNodePool(addr string, cfg Config) *nodePool {
	return &nodePool{addr: addr, cfg: cfg, slots: make([]poolSlot, cfg.ConnsPerNode)}
}

func (p *nodePool) do(ctx context.Context, req *protocol.Request) (*call, error) {
	cn, err := p.get(ctx)
	if err != nil {
		return nil, &notSentError{err}
	}
	return cn.do(ctx, req)
}

// notSentError marks a failure before the request left: retrying it cannot
// apply it twice.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// pool returns the connection pool for addr, creating it on first use.
func (c *Client) pool(addr string) *nodePool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[addr]
	if p == nil {
		p = newNodePool(addr, c.cfg)
		if c.closed.Load() {
			p.closed.Store(true) // a late background refresh dials nothing
		}
		c.pools[addr] = p
	}
	return p
}

// get returns a live connection, dialling one if its slot is empty or broken.
func (p *nodePool) get(ctx context.Context) (*conn, error) {
	s := &p.slots[int(p.next.Add(1))%len(p.slots)]
	if cn := s.conn.Load(); cn != nil && !cn.broken() {
		return cn, nil
	}
	s.dial.Lock()
	defer s.dial.Unlock()
	if p.closed.Load() {
		return nil, errClientClosed
	}
	if cn := s.conn.Load(); cn != nil && !cn.broken() {
		return cn, nil // another caller dialled it
	}
	if r := p.refused.Load(); r != nil && time.Now().Before(r.end) {
		return nil, r.err
	}
	cn, err := dial(ctx, p.addr, &p.cfg)
	if err != nil {
		if protocol.CodeOf(err) == protocol.CodeAuth {
			p.refused.Store(&refusal{err, time.Now().Add(refusalMemory)})
		}
		return nil, err
	}
	s.conn.Store(cn)
	return cn, nil
}

func (p *nodePool) close() {
	p.closed.Store(true)
	for i := range p.slots {
		s := &p.slots[i]
		s.dial.Lock()
		if cn := s.conn.Swap(nil); cn != nil {
			cn.close(errClientClosed)
		}
		s.dial.Unlock()
	}
}
