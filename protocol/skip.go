package protocol

import (
	"encoding/binary"
	"fmt"
	"io"
)

// skip passes over one msgpack value of any type: a field appended by a
// newer peer. Unlike msgpack's own Skip it never allocates, never recurses
// (so deep nesting cannot exhaust the stack) and refuses any declared length
// or element count larger than the bytes that remain.
func (d *Decoder) skip() error {
	pending := 1 // values still to pass over
	for pending > 0 {
		pending--
		c, err := d.rd.ReadByte()
		if err != nil {
			return io.ErrUnexpectedEOF
		}
		var n, items int // bytes to pass over; nested values to add
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool
		case c <= 0x8f: // fixmap
			items = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			items = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			n = int(c & 0x1f)
		default:
			if n, items, err = d.skipSize(c); err != nil {
				return err
			}
		}
		if n > d.rd.Len() {
			return fmt.Errorf("length %d exceeds the %d bytes left", n, d.rd.Len())
		}
		pending += items
		if pending > d.rd.Len() { // every value takes at least one byte
			return fmt.Errorf("%d values exceed the %d bytes left", pending, d.rd.Len())
		}
		if _, err := d.rd.Seek(int64(n), io.SeekCurrent); err != nil {
			return err
		}
	}
	return nil
}

// skipSize reads the length that follows code c and returns the bytes to
// pass over and the number of nested values.
func (d *Decoder) skipSize(c byte) (n, items int, err error) {
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return 1, 0, nil
	case 0xcd, 0xd1:
		return 2, 0, nil
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 4, 0, nil
	case 0xcb, 0xcf, 0xd3:
		return 8, 0, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, plus the type byte
		return 1<<(c-0xd4) + 1, 0, nil
	case 0xc4, 0xd9: // bin8, str8
		l, err := d.length(1)
		return l, 0, err
	case 0xc5, 0xda:
		l, err := d.length(2)
		return l, 0, err
	case 0xc6, 0xdb:
		l, err := d.length(4)
		return l, 0, err
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, then type byte and data
		l, err := d.length(1 << (c - 0xc7))
		return l + 1, 0, err
	case 0xdc, 0xdd: // array16/32
		l, err := d.length(2 << (c - 0xdc))
		return 0, l, err
	case 0xde, 0xdf: // map16/32
		l, err := d.length(2 << (c - 0xde))
		return 0, 2 * l, err
	}
	return 0, 0, fmt.Errorf("unknown msgpack code %#x", c)
}

// length reads a big-endian length of size bytes.
func (d *Decoder) length(size int) (int, error) {
	var b [4]byte
	if _, err := io.ReadFull(&d.rd, b[4-size:]); err != nil {
		return 0, io.ErrUnexpectedEOF
	}
	return int(binary.BigEndian.Uint32(b[:])), nil
}
