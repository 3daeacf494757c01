package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Config configures a Client. Zero fields take the defaults documented on
// each.
type Config struct {
	// Addrs are native addresses (host:port) of one or more nodes.
	Addrs []string
	// ConnsPerNode is how many connections the client keeps to each node;
	// calls are multiplexed over them. Zero means 2.
	ConnsPerNode int
	// DialTimeout bounds connecting to a node. Zero means 5s.
	DialTimeout time.Duration
	// Direct sends every call to the first reachable address in Addrs, in
	// order, instead of routing it to the owner of its key. Tools use it to
	// talk to one node; nodes use it to talk to each other.
	Direct bool
	// RetryTimeout bounds how long a call keeps retrying while the cluster
	// changes (a primary down until a backup is promoted, a table being
	// refreshed). Zero means 15s, longer than failure detection takes.
	RetryTimeout time.Duration
	// AttemptTimeout bounds one attempt of a routed call; a call whose
	// attempt times out is retried (if it is safe to repeat) or, for a
	// read, sent to a backup. Zero means 2s.
	AttemptTimeout time.Duration
	// Limits are checked before a request is sent, so that an oversized
	// value fails fast. They should match the nodes'. Zero fields mean the
	// protocol defaults.
	Limits protocol.Limits
	// Peer is the member name of the node this client speaks for, sent
	// in the hello of each connection. A node at its connection limit
	// (--max-conns) still takes a connection from a member that names
	// itself and connects from the address it gossips from. Nodes set it
	// for each other; applications leave it empty.
	Peer string
	// Password is sent in the hello of each connection, for nodes started
	// with --native-password. A node that requires another one refuses the
	// connection, and calls fail at once with ErrAuth. Nodes that require
	// none ignore it.
	Password string
}

func (c Config) withDefaults() Config {
	if c.ConnsPerNode <= 0 {
		c.ConnsPerNode = 2
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = 15 * time.Second
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 2 * time.Second
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// Client talks to a Cloakroom cluster. It is safe for concurrent use.
type Client struct {
	cfg   Config
	seeds []*nodePool // pools of cfg.Addrs, in order

	mu     sync.Mutex // guards pools
	pools  map[string]*nodePool
	routes atomic.Pointer[routes] // nil until first learnt (routed mode)
	// refreshing is held by the one goroutine refreshing routes.
	refreshing sync.Mutex
	bgRefresh  atomic.Bool // a background refresh is running

	closed atomic.Bool
}

// New returns a Client for the nodes at cfg.Addrs. It connects lazily: a
// node that is down now does not make New fail.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("%w: no node addresses", ErrBadRequest)
	}
	c := &Client{cfg: cfg, pools: map[string]*nodePool{}}
	for _, a := range cfg.Addrs {
		c.seeds = append(c.seeds, c.pool(a))
	}
	return c, nil
}

// Close closes every connection. Calls in flight fail.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		p.close()
	}
	return nil
}

// Item is a session with its metadata.
type Item struct {
	Key     string
	Value   []byte
	Version uint64        // changes on every write; pass to CompareAndSwap
	TTL     time.Duration // remaining; -1 if the key never expires
}

// Set stores value under key for ttl (which must be positive).
func (c *Client) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := c.write(ctx, key, value, ttl, 0, 0)
	return err
}

// Add stores value under key only if key does not exist, and returns the new
// version. It returns ErrExists otherwise.
func (c *Client) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (uint64, error) {
	return c.write(ctx, key, value, ttl, protocol.FlagIfAbsent, 0)
}

// CompareAndSwap stores value under key only if its current version is
// version, and returns the new version. It returns ErrConflict if another
// write came first, ErrNotFound if the key is gone.
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, ttl time.Duration, version uint64) (uint64, error) {
	return c.write(ctx, key, value, ttl, protocol.FlagIfVersion, version)
}

func (c *Client) write(ctx context.Context, key string, value []byte, ttl time.Duration, flags protocol.Flags, version uint64) (uint64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, err
	}
	resp, err := c.do(ctx, &protocol.Request{Op: protocol.OpSet, Key: key, Value: value, TTL: ttlMillis(ttl), Flags: flags, Version: version})
	if err != nil {
		return 0, err
	}
	defer releaseCall(resp)
	return resp.resp.Version, nil
}

// Get returns the value stored under key, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	it, err := c.GetItem(ctx, key)
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

// GetItem returns the value stored under key with its version and TTL.
func (c *Client) GetItem(ctx context.Context, key string) (*Item, error) {
	return c.item(ctx, &protocol.Request{Op: protocol.OpGet, Key: key})
}

// GetAndTouch returns the value under key and resets its TTL to ttl in the
// same round trip (sliding expiry, like Redis GETEX).
func (c *Client) GetAndTouch(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	it, err := c.item(ctx, &protocol.Request{Op: protocol.OpGetAndTouch, Key: key, TTL: ttlMillis(ttl)})
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (c *Client) item(ctx context.Context, req *protocol.Request) (*Item, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer releaseCall(resp)
	r := &resp.resp
	it := &Item{Key: req.Key, Value: r.Value, Version: r.Version, TTL: -1}
	if it.Value == nil {
		it.Value = []byte{}
	}
	if r.TTL >= 0 {
		it.TTL = time.Duration(r.TTL) * time.Millisecond
	}
	return it, nil
}

// Touch sets key's TTL without changing its value. It reports false if the
// key does not exist.
func (c *Client) Touch(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	resp, err := c.do(ctx, &protocol.Request{Op: protocol.OpTouch, Key: key, TTL: ttlMillis(ttl)})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	releaseCall(resp)
	return true, nil
}

// TTL returns key's remaining time to live, or ErrNotFound.
func (c *Client) TTL(ctx context.Context, key string) (time.Duration, error) {
	resp, err := c.do(ctx, &protocol.Request{Op: protocol.OpTTL, Key: key})
	if err != nil {
		return 0, err
	}
	defer releaseCall(resp)
	if resp.resp.TTL < 0 {
		return -1, nil
	}
	return time.Duration(resp.resp.TTL) * time.Millisecond, nil
}

// Delete deletes keys and returns how many of them existed. Deleted keys are
// unreadable everywhere when it returns; a key named twice counts once.
// Every attempt of the call carries one token, which the nodes keep in the
// keys' tombstones: a key that an attempt deleted without its answer
// arriving (it timed out) is counted by the attempt that answers.
func (c *Client) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	resp, err := c.do(ctx, &protocol.Request{Op: protocol.OpDelete, Keys: keys}) // send adds the token
	if err != nil {
		return 0, err
	}
	defer releaseCall(resp)
	return int(resp.resp.N), nil
}

// Ping checks that a node answers.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.do(ctx, &protocol.Request{Op: protocol.OpPing})
	if err != nil {
		return err
	}
	releaseCall(resp)
	return nil
}

// Do sends a raw protocol request and returns the node's response, or its
// error. It is for tools and adapters that need an op without a method. A
// delete (OpDelete, OpDeleteMatch) without a token is sent with one, as
// Delete's is.
func (c *Client) Do(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer releaseCall(resp)
	r := resp.resp
	return &r, nil
}

// Exchange sends a raw protocol request and returns the node's response
// whatever its code; the error is for calls that got no response.
func (c *Client) Exchange(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	cl, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	defer releaseCall(cl)
	r := cl.resp
	return &r, nil
}

// ExchangeAll sends raw protocol requests together, on one connection to
// the first configured node that can be reached (in one write when they
// are buffered at once), and returns each one's response in order,
// whatever its code. A request that got no response has a nil response
// and its error in errs (which is nil when every request got one); one
// that is slow to answer fails alone, when ctx is done. A node may run the
// requests of one connection at the same time: send together only
// requests that may run in any order. It is for clients made with
// Config.Direct, as nodes make for each other.
func (c *Client) ExchangeAll(ctx context.Context, reqs []*protocol.Request) (resps []*protocol.Response, errs []error) {
	resps = make([]*protocol.Response, len(reqs))
	all := func(err error) ([]*protocol.Response, []error) {
		errs = make([]error, len(reqs))
		for i := range errs {
			errs[i] = err
		}
		return resps, errs
	}
	switch {
	case len(reqs) == 0:
		return resps, nil
	case c.closed.Load():
		return all(errClientClosed)
	case !c.cfg.Direct:
		return all(fmt.Errorf("%w: ExchangeAll needs a client with Config.Direct", ErrBadRequest))
	case ctx.Err() != nil:
		return all(ctx.Err())
	}
	for _, r := range reqs {
		if err := c.cfg.Limits.Check(r); err != nil {
			return all(err)
		}
	}
	var cn *conn
	var err error
	for _, p := range c.seeds {
		if cn, err = p.get(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return all(ctx.Err())
		}
	}
	if cn == nil {
		return all(err)
	}
	sent := make([]sentCall, 0, len(reqs))
	for i, r := range reqs {
		req := *r // start assigns the request ID
		sc, err := cn.start(&req)
		if err != nil { // this one and the rest are not sent; those sent are waited for
			errs = make([]error, len(reqs))
			for j := i; j < len(reqs); j++ {
				errs[j] = err
			}
			break
		}
		sent = append(sent, sc)
	}
	for i, sc := range sent {
		cl, err := cn.wait(ctx, sc)
		if err != nil {
			if errs == nil {
				errs = make([]error, len(reqs))
			}
			errs[i] = err
			continue
		}
		r := cl.resp
		releaseCall(cl)
		resps[i] = &r
	}
	return resps, errs
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl must be positive, got %v", ErrBadRequest, ttl)
	}
	return nil
}

// ttlMillis rounds ttl up to whole milliseconds, so that a positive TTL
// never becomes zero.
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// do checks req against the limits and runs it on a node, failing over to
// the next node when one cannot be reached. On success the caller must
// releaseCall the result.
func (c *Client) do(ctx context.Context, req *protocol.Request) (*call, error) {
	cl, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if cl.resp.Code != protocol.CodeOK {
		err := cl.resp.Err()
		releaseCall(cl)
		return nil, err
	}
	return cl, nil
}

// send runs req and returns the response whatever its code: on the first
// node that answers in Direct mode, else on the owner of its partition.
func (c *Client) send(ctx context.Context, req *protocol.Request) (*call, error) {
	if c.closed.Load() {
		return nil, errClientClosed
	}
	if err := c.cfg.Limits.Check(req); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if (req.Op == protocol.OpDelete || req.Op == protocol.OpDeleteMatch) && len(req.Value) == 0 {
		// One token for every attempt of the call (see Delete), on a copy:
		// the caller's request is left as it was.
		r := *req
		r.Value = protocol.NewDeleteToken()
		req = &r
	}
	if c.cfg.Direct {
		return c.sendDirect(ctx, req)
	}
	return c.sendRouted(ctx, req)
}

// sendDirect tries the configured nodes in order.
func (c *Client) sendDirect(ctx context.Context, req *protocol.Request) (*call, error) {
	var lastErr error
	for _, n := range c.seeds {
		cl, err := n.do(ctx, req)
		if err == nil {
			return cl, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = err
	}
	return nil, lastErr
}
