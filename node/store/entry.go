package store

import "encoding/binary"

// An entry in an arena chunk is a fixed header followed by the key and the
// value. valCap is the room reserved for the value, so an update that fits
// is written in place and a TTL change never moves the entry.
//
//	off  size  field
//	0    1     flags (flagTombstone, flagDead)
//	1    2     key length
//	3    4     value length
//	7    4     value capacity
//	11   8     deadline, store-clock ms (0: none)
//	19   8     version
//	27   ...   key, then value
const hdrSize = 27

// maxKeyLen and maxValueLen are the largest key and value the header's
// length fields can describe.
const (
	maxKeyLen   = 1<<16 - 1
	maxValueLen = 1<<32 - 1
)

const (
	flagTombstone = 1
	// flagDead marks an entry the index no longer points at: its bytes are
	// counted dead, and cleaning passes over it without hashing its key
	// to ask the index. An entry is set dead once, by partition.drop,
	// which counts its room dead, and never comes back.
	flagDead = 2
)

// markDead sets flagDead on the entry whose bytes start at e.
func markDead(e []byte) { e[0] |= flagDead }

type header struct {
	flags    byte
	keyLen   int
	valLen   int
	valCap   int
	deadline int64
	version  uint64
}

func readHeader(b []byte) header {
	return header{
		flags:    b[0],
		keyLen:   int(binary.LittleEndian.Uint16(b[1:])),
		valLen:   int(binary.LittleEndian.Uint32(b[3:])),
		valCap:   int(binary.LittleEndian.Uint32(b[7:])),
		deadline: int64(binary.LittleEndian.Uint64(b[11:])),
		version:  binary.LittleEndian.Uint64(b[19:]),
	}
}

func (h header) write(b []byte) {
	b[0] = h.flags
	binary.LittleEndian.PutUint16(b[1:], uint16(h.keyLen))
	binary.LittleEndian.PutUint32(b[3:], uint32(h.valLen))
	binary.LittleEndian.PutUint32(b[7:], uint32(h.valCap))
	binary.LittleEndian.PutUint64(b[11:], uint64(h.deadline))
	binary.LittleEndian.PutUint64(b[19:], h.version)
}

func (h header) size() int              { return hdrSize + h.keyLen + h.valCap }
func (h header) tombstone() bool        { return h.flags&flagTombstone != 0 }
func (h header) expired(now int64) bool { return h.deadline != 0 && h.deadline <= now }

func setDeadline(b []byte, d int64) { binary.LittleEndian.PutUint64(b[11:], uint64(d)) }
func setVersion(b []byte, v uint64) { binary.LittleEndian.PutUint64(b[19:], v) }

// loc addresses an entry: chunk index in the high half, offset in the low.
type loc uint64

func makeLoc(chunk, off int) loc { return loc(uint64(chunk)<<32 | uint64(off)) }
func (l loc) chunk() int         { return int(l >> 32) }
func (l loc) off() int           { return int(uint32(l)) }
