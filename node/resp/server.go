package resp

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Backend is what the RESP server needs from a node. *node.Node implements
// it; every key operation goes through Do, DoAtomic or DoAll, which route it to the
// key's owner, so the RESP layer never touches a store.
type Backend interface {
	// Do runs one request and fills resp.
	Do(ctx context.Context, req *protocol.Request, resp *protocol.Response)
	// DoAtomic runs single-key requests sharing one partition as one step;
	// a failed guard (OpGet with FlagIfVersion) aborts it with ErrConflict.
	DoAtomic(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response) error
	// DoAll runs independent single-key requests (no two write the same
	// key), each as Do would, and fills resps; it may run them at once, in
	// any order, and send those for each other node together.
	DoAll(ctx context.Context, reqs []*protocol.Request, resps []*protocol.Response)
	// Partitions returns the cluster's partition count.
	Partitions() int
	// Name returns this node's name.
	Name() string
	// Topology returns the current slot ownership, with the addresses
	// plain clients dial, or with tls those TLS clients dial. It must be
	// cheap: the server calls it for every keyed command in cluster mode,
	// and caches what it derives from it for as long as the same pointer
	// comes back.
	Topology(tls bool) *Topology
	// Local reports whether Do (or DoAtomic, for requests sharing a
	// partition) would serve req on this node without network I/O or any
	// other wait, so that it may run on the event loop that serves many
	// connections. It must be cheap, and answer false when unsure: a
	// request it calls local must never block.
	Local(req *protocol.Request) bool
}

// Topology is an immutable snapshot of which node serves which slots.
type Topology struct {
	// Shards lists every slot range with its primary and replicas.
	Shards []Shard
	// Epoch increases with every ownership change.
	Epoch uint64
	// Settled says that every node serves from this same layout. Only
	// then does the server answer MOVED for a slot another node serves;
	// while nodes disagree (a member joined or left moments ago) it serves
	// the command itself, through the backend, which forwards it to the
	// owner. Two nodes on different layouts would otherwise send a client
	// back and forth between them until it gave up.
	Settled bool
}

// Shard is a set of slot ranges served by one primary and its replicas.
type Shard struct {
	// Slots are inclusive [first, last] slot ranges, in any order; CLUSTER
	// SLOTS, SHARDS and NODES list them ascending, adjacent ones joined.
	Slots [][2]uint16
	// Primary serves the slots.
	Primary Peer
	// Replicas hold copies.
	Replicas []Peer
}

// Peer is a node as Redis clients see it.
type Peer struct {
	// Name is the node's name, unique in the cluster.
	Name string
	// Addr is the node's RESP address, host:port, as clients dial it.
	Addr string
}

// Config configures a Server. The zero value serves RESP without a password
// and without cluster mode.
type Config struct {
	// Password, when set, is required by AUTH or HELLO ... AUTH before any
	// other command.
	Password string
	// ClusterMode makes the server act as a Redis Cluster node: CLUSTER
	// commands answer and keys owned elsewhere get MOVED redirects (once
	// the topology is settled; see Topology.Settled).
	ClusterMode bool
	// Limits bound one command; zero fields mean DefaultLimits' values.
	Limits Limits
	// Version is the redis_version the server reports. Empty means 7.2.0.
	Version string
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the wall clock for EXPIREAT, PXAT and TIME. Nil means time.Now.
	Now func() time.Time
	// EventLoops is how many event loops serve the connections. Zero means
	// one per two CPUs, at least one.
	EventLoops int
	// IdleSpin is how long an event loop keeps polling its connections for
	// more input after serving some, before it sleeps (Linux only, and only
	// when GOMAXPROCS exceeds EventLoops; see spinner). Zero means
	// DefaultIdleSpin; negative disables it.
	IdleSpin time.Duration
	// MaxClients bounds the open connections. A connection past it is
	// told "ERR max number of clients reached" and closed, as Redis does
	// at its maxclients, so that a flood of connections cannot take the
	// descriptors the node needs for its peers and other clients. Zero
	// means DefaultMaxClients; negative, no limit. A limit above half the
	// open-file limit is lowered to it, with a warning.
	MaxClients int
	// TLS says that the server will serve a listener of TLS clients. A
	// TLS client takes three descriptors (tls.go), so the automatic
	// lowering of MaxClients leaves room for every client to be one.
	TLS bool
	// MaxWaitingInput bounds the input all connections together hold in
	// the node's memory unrun: commands not complete yet (a large value
	// arriving), and complete ones waiting their turn. When a connection's
	// growing input takes the total past it, the connection holding the
	// most is closed. Each connection's own is
	// bounded by the command limit already, but 20 connections sending
	// 30 MiB each of an unfinished command held 3.1 GB of the node's
	// memory (under 0.5 GB with this bound at its default, the rest being
	// the garbage collector's headroom; see pending.go). Zero means the
	// larger of 128 MiB and twice Limits.MaxCommand, so that one command
	// at the limit always fits; negative, no limit.
	MaxWaitingInput int64
	// IdleTimeout closes a connection that has sent nothing for this long
	// and has no command running, as Redis's timeout does. Zero means
	// never.
	IdleTimeout time.Duration
	// RetryWindow is how long a command that fails because the cluster is
	// changing (TRYAGAIN: a node lost and not yet dropped, tables that
	// differ) is tried again, off the event loop, before that error is
	// answered; see retry.go. Zero means DefaultRetryWindow; negative
	// answers at once.
	RetryWindow time.Duration

	workerIdle       time.Duration // how long an idle worker waits; zero means workpool.DefaultIdle (tests shorten it)
	handshakeTimeout time.Duration // a TLS client's time to handshake; zero means TLSHandshakeTimeout (tests shorten it)
	tlsDrain         time.Duration // see tlsDrain; zero means it (tests shorten it)
}

// DefaultLimits returns the limits for values up to maxValue bytes.
func DefaultLimits(maxValue int) Limits {
	return Limits{MaxArgs: 1 << 20, MaxBulk: maxValue, MaxCommand: max(64<<20, 2*maxValue), MaxInline: 64 << 10}
}
