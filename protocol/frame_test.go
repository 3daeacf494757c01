package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestFrameReader_overLimit_refusedFromTheHeaderAlone(t *testing.T) {
	// Only the header arrives; a reader that tried to read the body would
	// block, a reader that allocated it would ask for 4 GiB.
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() { _, _ = pw.Write([]byte{0xff, 0xff, 0xff, 0xff}) }()
	fr := NewFrameReader(bufio.NewReader(pr), 1<<20)
	var err error
	got := allocatedBytes(func() { _, err = fr.Next() })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Next: got %v; want ErrTooLarge", err)
	}
	if got > 16<<10 {
		t.Errorf("refusing a 4 GiB frame allocated %d bytes; want at most 16 KiB", got)
	}
}

func TestFrameReader_stalledLargeFrame_allocatesWhatArrived(t *testing.T) {
	const limit = 1 << 20
	stream := binary.BigEndian.AppendUint32(nil, limit)
	stream = append(stream, bytes.Repeat([]byte{1}, 100)...) // then EOF
	fr := NewFrameReader(bufio.NewReader(bytes.NewReader(stream)), limit)
	var err error
	got := allocatedBytes(func() { _, err = fr.Next() })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next: got %v; want io.ErrUnexpectedEOF", err)
	}
	if got > 2*keepFrameBuf+(16<<10) {
		t.Errorf("a frame declaring %d bytes of which 100 arrived allocated %d bytes; want about %d", limit, got, keepFrameBuf)
	}
}

func TestFrameReader_largeFrames_readWholeAndBufferNotPinned(t *testing.T) {
	var stream []byte
	sizes := []int{0, 10, keepFrameBuf - 1, keepFrameBuf + 1, 3*keepFrameBuf + 7, 5}
	for i, n := range sizes {
		stream = binary.BigEndian.AppendUint32(stream, uint32(n))
		stream = append(stream, bytes.Repeat([]byte{byte(i)}, n)...)
	}
	fr := NewFrameReader(bufio.NewReader(bytes.NewReader(stream)), 1<<20)
	for i, n := range sizes {
		f, err := fr.Next()
		if err != nil || len(f) != n || (n > 0 && (f[0] != byte(i) || f[n-1] != byte(i))) {
			t.Fatalf("frame %d: got %d bytes, %v; want %d bytes of %d", i, len(f), err, n, i)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Errorf("after the last frame: got %v; want io.EOF", err)
	}
	if cap(fr.buf) > keepFrameBuf {
		t.Errorf("buffer kept at %d bytes after small frames; want at most %d", cap(fr.buf), keepFrameBuf)
	}
}
