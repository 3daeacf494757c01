package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/protocol"
)

// peers keeps one pooled, multiplexed client per peer node for forwarding,
// replication and partition transfer. Node-to-node traffic never uses
// memberlist's per-message connections.
type peers struct {
	self     string // this node's name, sent in each connection's hello
	password string // Config.NativePassword, sent there too
	limits   protocol.Limits
	timeout  time.Duration

	mu      sync.RWMutex // guards clients and closed
	clients map[string]*peerClient
	closed  bool
}

type peerClient struct {
	addr string
	c    *client.Client
}

func newPeers(self, password string, limits protocol.Limits, timeout time.Duration) *peers {
	return &peers{self: self, password: password, limits: limits, timeout: timeout, clients: make(map[string]*peerClient)}
}

// get returns the client for peer name at addr, replacing one that was made
// for an older address.
func (ps *peers) get(name, addr string) (*client.Client, error) {
	ps.mu.RLock()
	if pc := ps.clients[name]; pc != nil && pc.addr == addr && !ps.closed {
		ps.mu.RUnlock()
		return pc.c, nil
	}
	ps.mu.RUnlock()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "node is closing")
	}
	if pc := ps.clients[name]; pc != nil && pc.addr == addr {
		return pc.c, nil
	} else if pc != nil {
		pc.c.Close()
	}
	c, err := client.New(client.Config{Addrs: []string{addr}, Direct: true, Limits: ps.limits, DialTimeout: ps.timeout, Peer: ps.self, Password: ps.password})
	if err != nil {
		return nil, err
	}
	ps.clients[name] = &peerClient{addr: addr, c: c}
	return c, nil
}

// retain closes clients of peers that are no longer members.
func (ps *peers) retain(members map[string]protocol.MemberInfo) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name, pc := range ps.clients {
		if _, ok := members[name]; !ok {
			pc.c.Close()
			delete(ps.clients, name)
		}
	}
}

func (ps *peers) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.closed = true
	for name, pc := range ps.clients {
		pc.c.Close()
		delete(ps.clients, name)
	}
}

// call sends req to the member called name in view v, bounded by the peer
// timeout as well as ctx.
func (n *Node) call(ctx context.Context, v *view, name string, req *protocol.Request) (*protocol.Response, error) {
	return n.callWithin(ctx, v, name, req, n.peers.timeout)
}

// callWithin is call bounded by d instead of the peer timeout.
func (n *Node) callWithin(ctx context.Context, v *view, name string, req *protocol.Request, d time.Duration) (*protocol.Response, error) {
	c, err := n.peer(v, name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r := *req // the client assigns its own request ID
	resp, err := c.Exchange(ctx, &r)
	if err != nil {
		n.peerErr(name, err)
		return nil, fmt.Errorf("%s %s: %w", req.Op, name, err)
	}
	return resp, nil
}

// callAll sends reqs to the member called name together, as callWithin
// sends one, and returns their responses in order; a request that got none
// has a nil response and its error in errs.
func (n *Node) callAll(ctx context.Context, v *view, name string, reqs []*protocol.Request, d time.Duration) ([]*protocol.Response, []error) {
	c, err := n.peer(v, name)
	if err != nil {
		errs := make([]error, len(reqs))
		for i := range errs {
			errs[i] = err
		}
		return make([]*protocol.Response, len(reqs)), errs
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	resps, errs := c.ExchangeAll(ctx, reqs)
	if i := slices.IndexFunc(errs, func(err error) bool { return err != nil }); i >= 0 {
		n.peerErr(name, errs[i])
	}
	return resps, errs
}

// peer returns the client for the member called name in view v.
func (n *Node) peer(v *view, name string) (*client.Client, error) {
	m, ok := v.members[name]
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "no address for member %s", name)
	}
	return n.peers.get(name, m.Addr)
}
