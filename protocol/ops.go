package protocol

import "fmt"

// Version is the native protocol version spoken by this build. A node
// refuses a Hello that names another version.
const Version = 1

// Op is an operation code. Op codes are part of the wire protocol.
type Op uint8

// ONLY APPEND TO THIS LIST: op codes are part of the wire protocol.
const (
	// OpHello opens a connection: Request.Version is the client's protocol
	// version; the reply's Version is the node's, Value its node name.
	OpHello Op = iota + 1
	// OpPing answers CodeOK; Response.Version is the hash of the member set
	// of the node's partition table (nodes compare it for quorum).
	OpPing
	// OpGet reads Key: reply Value, Version and TTL (remaining ms, -1 none).
	OpGet
	// OpSet writes Key=Value with TTL ms. Flags: IfAbsent, IfPresent,
	// IfVersion (compare Request.Version), KeepTTL, NoTTL, ReturnOld.
	// Reply Version is the new version; with ReturnOld, Value is the old
	// value and N is 1 if there was one.
	OpSet
	// OpTouch sets Key's TTL without touching its value. Flags: NoTTL
	// (persist), TTLIfNone, TTLIfSet, TTLIfGreater, TTLIfLess, AllowPast.
	// Reply N is 1 if the TTL changed.
	OpTouch
	// OpDelete deletes Keys; reply N counts the keys that existed (a key
	// named twice, once). Keys on
	// several nodes are deleted by each, whatever the others do: with an
	// error, N counts those deleted where it took effect. Value, if set, is
	// the call's delete token (DeleteTokenLen bytes, NewDeleteToken): each
	// tombstone keeps it, and a key found deleted under the same token
	// counts as deleted, so a call sent again after an attempt whose answer
	// was lost counts what that attempt deleted, once.
	OpDelete
	// OpGetAndTouch reads Key and sets its TTL in one step (GETEX).
	OpGetAndTouch
	// OpGetAndDelete reads Key and deletes it (GETDEL). With FlagNoValue it
	// only says whether Key was there (a DEL's key in a pipeline or a
	// transaction), and Value may be a delete token, as OpDelete's: a key
	// found deleted under it counts as there.
	OpGetAndDelete
	// OpExists counts how many of Keys exist (a key named twice counts twice).
	OpExists
	// OpTTL reads Key's remaining TTL in ms (-1: no expiry).
	OpTTL
	// OpScan lists keys of partition Partition after cursor Cursor, at most
	// Count of them, matching the glob Pattern when it is set. The reply's
	// Keys are the keys and its Cursor the next cursor (0 when done). A
	// page matches a bounded number of keys against Pattern (ten times
	// Count, at least 100; a key whose match is costly counts as several),
	// so it may hold fewer than Count keys, or none, before the partition
	// ends; reply N counts the keys it examined, so weighted.
	OpScan
	// OpCount counts the live keys on the node (DBSIZE): reply N, and
	// TTLKeys of them have a TTL (INFO's expires=). A node from before
	// TTLKeys leaves it 0.
	OpCount
	// OpFlush deletes every key on the node, when the node allows it.
	OpFlush
	// OpDeleteMatch tombstones every live key of partition Partition that
	// matches the glob Pattern, under one lock: when it returns, none of
	// them is readable. Reply N counts them. Value may be a delete token,
	// as OpDelete's: a key found deleted under it counts too.
	OpDeleteMatch
	// OpTable returns the node's view of the cluster: Value is a
	// ClusterInfo encoded with EncodeClusterInfo.
	OpTable
	// OpReplicate applies Entries of partition Partition, each only if its
	// version is newer than the copy held (node to node). Key names the
	// sender; Table and TableHash identify its table. A node whose table was
	// computed from another member set refuses with CodeNotOwner, so a write
	// is acknowledged only by nodes that agree on who holds it.
	OpReplicate
	// OpFetch returns entries of partition Partition in scan order after
	// Cursor, tombstones included, up to about Count bytes: reply Entries
	// and the next Cursor (0 when done). With Key set it returns just that
	// key's entry, if any. Node to node.
	OpFetch
	// OpAtomic runs the single-key requests encoded in Value (EncodeBatch),
	// whose keys must share one partition, as one atomic step on its
	// primary (MULTI/EXEC). The reply's Value holds their responses; a
	// failed guard (OpGet with FlagIfVersion) fails the whole batch with
	// CodeConflict before anything runs.
	OpAtomic
	// OpStatus returns the node's NodeStatus in Value (EncodeNodeStatus).
	OpStatus
	// OpDigest summarises partition Partition for anti-entropy: reply
	// Version is a hash of its entries' keys and versions, N their number.
	// Node to node.
	OpDigest
	opEnd // keep last
)

var opNames = [...]string{
	OpHello: "hello", OpPing: "ping", OpGet: "get", OpSet: "set",
	OpTouch: "touch", OpDelete: "delete", OpGetAndTouch: "getandtouch",
	OpGetAndDelete: "getanddelete", OpExists: "exists", OpTTL: "ttl",
	OpScan: "scan", OpCount: "count", OpFlush: "flush", OpDeleteMatch: "deletematch",
	OpTable: "table", OpReplicate: "replicate", OpFetch: "fetch", OpAtomic: "atomic", OpStatus: "status", OpDigest: "digest",
}

// Valid reports whether o is an op this build knows.
func (o Op) Valid() bool { return o > 0 && o < opEnd }

func (o Op) String() string {
	if o.Valid() {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Flags modify an op; each op documents the flags it honours.
type Flags uint16

// ONLY APPEND TO THIS LIST: flag bits are part of the wire protocol.
const (
	// FlagIfAbsent makes a Set create-only (Redis NX).
	FlagIfAbsent Flags = 1 << iota
	// FlagIfPresent makes a Set update-only (Redis XX).
	FlagIfPresent
	// FlagIfVersion makes a Set succeed only if the stored version equals
	// Request.Version (compare-and-set).
	FlagIfVersion
	// FlagKeepTTL makes a Set keep the key's current TTL.
	FlagKeepTTL
	// FlagNoTTL stores the key without expiry (Set), or removes its expiry
	// (Touch, GetAndTouch). Without it a TTL must be positive.
	FlagNoTTL
	// FlagReturnOld makes a Set return the value it replaced (SET ... GET).
	FlagReturnOld
	// FlagTTLIfNone makes a Touch apply only when the key has no TTL.
	FlagTTLIfNone
	// FlagTTLIfSet makes a Touch apply only when the key has a TTL.
	FlagTTLIfSet
	// FlagTTLIfGreater makes a Touch apply only when the new TTL is greater.
	FlagTTLIfGreater
	// FlagTTLIfLess makes a Touch apply only when the new TTL is less.
	FlagTTLIfLess
	// FlagAllowPast lets a TTL <= 0 delete the key (Redis EXPIRE k 0)
	// instead of being refused.
	FlagAllowPast
	// FlagForwarded marks a request a node forwarded to the owner; the
	// owner does not forward it again but answers CodeNotOwner.
	FlagForwarded
	// FlagLocal asks a node for its own part only (OpCount counts the
	// partitions it is primary for; OpFlush flushes only itself).
	FlagLocal
	// FlagReplicaRead lets a backup answer a read from its own copy, for a
	// client whose primary is unreachable. It does only if its own table
	// gives the partition exactly two holders (so it has every write the
	// primary acknowledged) and it has fetched any keys it may lack;
	// otherwise it answers Unavailable.
	FlagReplicaRead
	// FlagNoValue makes a Get or GetAndDelete answer only whether the key
	// was there, without its value: a DEL in a transaction, which counts
	// the keys it deleted, need not carry a session back. A node that
	// predates it answers with the value, which the caller ignores.
	FlagNoValue
)

// Repeatable reports whether r may be sent again after an attempt that may
// have been applied (the node that got it did not answer, or could not
// say): applying it twice leaves what applying it once does. Its answer
// may differ only where the first attempt changed what it reports: a
// delete's count, or a Touch that removed the TTL or deleted the key
// (FlagAllowPast) answering not found. A write conditional on what is
// stored (create-only, update-only, compare-and-set, TTL conditions) is
// not repeatable, nor one that returns the value it replaced or deleted:
// its second attempt would fail on, or answer for, its first.
func (r *Request) Repeatable() bool {
	const conditional = FlagIfAbsent | FlagIfPresent | FlagIfVersion | FlagReturnOld |
		FlagTTLIfNone | FlagTTLIfSet | FlagTTLIfGreater | FlagTTLIfLess
	deletes := r.Op == OpGetAndTouch && r.Flags&FlagAllowPast != 0 && r.TTL <= 0 // GETDEL, in effect
	return r.Op != OpGetAndDelete && !deletes && r.Flags&conditional == 0
}
