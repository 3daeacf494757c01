// Package resp serves the Redis protocol (RESP2 and RESP3) on a Cloakroom
// node, so that Redis clients and session libraries use Cloakroom by
// changing only the address.
//
// A Server answers connections for a Backend, which *node.Node
// implements. Every key operation becomes a protocol.Request passed to
// Backend.Do (or Backend.DoAtomic for MULTI/EXEC and MSET), so the same
// commands work on one node or on any node of a cluster: the node routes
// each request to the key's owner.
//
//	srv := resp.NewServer(backend, resp.Config{Password: "secret"})
//	ln, _ := net.Listen("tcp", "127.0.0.1:6379")
//	go srv.Serve(ln)
//	defer srv.Close()
//
// The supported commands follow Redis's semantics and error wording:
// strings (GET, SET with every option, SETEX, GETEX, MGET, MSET, ...),
// keys (DEL, EXISTS, EXPIRE with NX/XX/GT/LT, TTL, SCAN, KEYS, ...),
// transactions (MULTI, EXEC, DISCARD, WATCH), connection commands (HELLO,
// AUTH, CLIENT, SELECT 0), server introspection (INFO, CONFIG GET,
// COMMAND) and, in cluster mode, CLUSTER SLOTS/SHARDS/NODES/INFO with
// MOVED redirects.
//
// Choices where Cloakroom differs from Redis:
//   - Only strings exist, and database 0 only.
//   - Multi-key commands (DEL, EXISTS, MGET, MSET) accept keys of any slot,
//     also in cluster mode: the node splits them across owners instead of
//     answering CROSSSLOT.
//   - A transaction's keys must share a partition (a range of slots);
//     a queued command that breaks this is refused with CROSSSLOT and EXEC
//     then aborts, as Redis Cluster does.
//   - SCAN cursors encode a partition and a position in it, so a cursor
//     stays valid while partitions move between nodes.
//
// Input is bounded: declared lengths are checked against Limits before
// anything is allocated, and a framing error closes only the offending
// connection.
//
// Connections are served from event loops (gnet), as redis-server serves
// them from one: a loop runs every complete command a connection has sent
// and answers them in one write. Serve therefore needs a TCP or Unix
// listener. A command whose backend call may wait (Backend.Local says so:
// in a cluster, keys another node owns and replicated writes) runs on a
// goroutine, with the keyed commands pipelined behind it batched per
// partition; the connection's further input waits until it is answered.
package resp
