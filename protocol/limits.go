package protocol

import "fmt"

// Default limits. A node enforces its configured Limits on every request and
// a client checks them before sending.
const (
	DefaultMaxKey   = 1 << 10 // 1 KiB
	DefaultMaxValue = 1 << 20 // 1 MiB
	// frameOverhead is room in a frame beyond its value and one key for
	// the other fields and multi-key lists.
	frameOverhead = 64 << 10
	// atomicFieldsRoom is what an OpAtomic message's fields other than its
	// batch may take of a frame.
	atomicFieldsRoom = 4 << 10
)

// Limits bounds what one request may carry.
type Limits struct {
	// MaxKey is the longest key in bytes. Zero means DefaultMaxKey.
	MaxKey int
	// MaxValue is the longest value in bytes. Zero means DefaultMaxValue.
	MaxValue int
}

// DefaultLimits returns the limits a node uses unless configured otherwise.
func DefaultLimits() Limits { return Limits{MaxKey: DefaultMaxKey, MaxValue: DefaultMaxValue} }

// WithDefaults returns l with zero fields replaced by defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxKey == 0 {
		l.MaxKey = DefaultMaxKey
	}
	if l.MaxValue == 0 {
		l.MaxValue = DefaultMaxValue
	}
	return l
}

// MaxFrame is the largest frame a peer with these limits accepts: one value
// and one key at their limits, plus room for the other fields. Multi-key
// requests must fit too.
func (l Limits) MaxFrame() int {
	l = l.WithDefaults()
	return l.MaxValue + l.MaxKey + frameOverhead
}

// MaxAtomicBatch is the largest batch (EncodeBatch) an OpAtomic request or
// its reply may carry: a transaction's keys and values may fill a frame,
// less room for the message's other fields.
func (l Limits) MaxAtomicBatch() int { return l.MaxFrame() - atomicFieldsRoom }

// MaxAtomicReads is the most bytes of values an atomic batch of n requests
// may read: what its reply (at most MaxAtomicBatch) has room for once each
// response's other fields are counted. A batch sent between nodes holds
// at most maxBatch requests; one run where it was built (a MULTI on the
// key's primary) may hold more, and is allowed as much as the largest
// that travels, so that the bound never vanishes.
func (l Limits) MaxAtomicReads(n int) int {
	return l.MaxAtomicBatch() - atomicReplyItemRoom*(min(n, maxBatch)+1)
}

// atomicReplyItemRoom is room for one response of an atomic batch without
// its value: its fields, a short error message and the batch's framing.
const atomicReplyItemRoom = 160

// MaxTTL bounds a request's TTL (in ms, either sign): about 146 million
// years, more than any expiry Redis accepts but far enough from the int64
// limit that a store's clock plus a TTL cannot overflow.
const MaxTTL = int64(1) << 62

// MaxVersion bounds an entry's version. Versions follow the wall clock in
// µs (about 2^51 today), so none comes near it, and a partition's next
// version, one past the highest it has seen, cannot overflow.
const MaxVersion = uint64(1) << 62

// CheckTTL reports ErrBadRequest for a TTL past MaxTTL either way.
func CheckTTL(ttl int64) error {
	if ttl > MaxTTL || ttl < -MaxTTL {
		return Errorf(CodeBadRequest, "ttl %dms is out of range (at most %dms either way)", ttl, MaxTTL)
	}
	return nil
}

// CheckKey reports ErrTooLarge or ErrBadRequest for a key the limits refuse.
func (l Limits) CheckKey(key string) error {
	l = l.WithDefaults()
	switch {
	case key == "":
		return Errorf(CodeBadRequest, "empty key")
	case len(key) > l.MaxKey:
		return Errorf(CodeTooLarge, "key is %d bytes; limit %d", len(key), l.MaxKey)
	}
	return nil
}

// CheckValue reports ErrTooLarge for a value the limits refuse.
func (l Limits) CheckValue(v []byte) error {
	if max := l.WithDefaults().MaxValue; len(v) > max {
		return Errorf(CodeTooLarge, "value is %d bytes; limit %d", len(v), max)
	}
	return nil
}

// Check validates the keys and value of r against the limits.
func (l Limits) Check(r *Request) error {
	if r.Key != "" || needsKey(r.Op) {
		if err := l.CheckKey(r.Key); err != nil {
			return err
		}
	}
	for _, k := range r.Keys {
		if err := l.CheckKey(k); err != nil {
			return err
		}
	}
	if r.Op == OpAtomic {
		// The batch carries a transaction's values and their keys: it may
		// use the frame, less room for the request's other fields.
		if max := l.MaxAtomicBatch(); len(r.Value) > max {
			return Errorf(CodeTooLarge, "atomic batch is %d bytes; limit %d", len(r.Value), max)
		}
	} else if err := l.CheckValue(r.Value); err != nil {
		return err
	}
	if (r.Op == OpDelete || r.Op == OpGetAndDelete || r.Op == OpDeleteMatch) && len(r.Value) != 0 && len(r.Value) != DeleteTokenLen {
		return Errorf(CodeBadRequest, "delete token is %d bytes; want %d or none", len(r.Value), DeleteTokenLen)
	}
	if r.Count < 0 {
		return Errorf(CodeBadRequest, "negative count %d", r.Count)
	}
	if err := CheckTTL(r.TTL); err != nil {
		return err
	}
	// Matching costs up to pattern length times key length per key, under
	// a partition's lock: a pattern is no longer than a key may be.
	if max := l.WithDefaults().MaxKey; len(r.Pattern) > max {
		return Errorf(CodeTooLarge, "pattern is %d bytes; limit %d (the key limit)", len(r.Pattern), max)
	}
	return nil
}

func needsKey(op Op) bool {
	switch op {
	case OpGet, OpSet, OpTouch, OpGetAndTouch, OpGetAndDelete, OpTTL:
		return true
	}
	return false
}

func (l Limits) String() string {
	l = l.WithDefaults()
	return fmt.Sprintf("key<=%dB value<=%dB frame<=%dB", l.MaxKey, l.MaxValue, l.MaxFrame())
}
