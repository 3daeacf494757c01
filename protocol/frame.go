package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// FrameHeader is the size of a frame's length prefix.
const FrameHeader = 4

// FrameReader reads frames from a buffered stream, refusing any frame whose
// declared length exceeds its limit before reading or allocating it. Its
// buffer is reused: a frame's bytes are valid until the next call.
type FrameReader struct {
	r   *bufio.Reader
	max int
	buf []byte

	// Partial, if set, is called with true when a frame's header has come
	// but not all of its body, and with false once Next returns that
	// frame (or fails): a server sets a read deadline for the rest, so
	// that a peer cannot hold a frame half-sent, and its buffer, for ever.
	Partial func(waiting bool)
}

// NewFrameReader returns a FrameReader over r that refuses frames over max.
func NewFrameReader(r *bufio.Reader, max int) *FrameReader {
	return &FrameReader{r: r, max: max}
}

// SetMax changes the largest frame Next accepts from the next frame on: a
// server reads a connection's hello under a small limit, and what follows
// under its frame limit.
func (f *FrameReader) SetMax(max int) { f.max = max }

// Next returns the next frame's payload. A frame over the limit returns an
// error wrapping ErrTooLarge; framing is then lost and the stream must be
// closed.
func (f *FrameReader) Next() ([]byte, error) {
	hdr, err := f.r.Peek(FrameHeader)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr))
	if n > f.max {
		return nil, Errorf(CodeTooLarge, "frame of %d bytes; limit %d", n, f.max)
	}
	if _, err := f.r.Discard(FrameHeader); err != nil {
		return nil, err
	}
	if f.Partial != nil && f.r.Buffered() < n {
		f.Partial(true)
		defer f.Partial(false)
	}
	if cap(f.buf) > keepFrameBuf {
		f.buf = nil // do not pin one large frame's buffer for good
	}
	if err := f.read(n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

// keepFrameBuf is the largest frame buffer kept between frames, and the
// step in which a larger one grows.
const keepFrameBuf = 64 << 10

// read reads n bytes into f.buf. A frame larger than the buffer is read in
// growing steps, so that memory follows the bytes that actually arrive, not
// the length a peer declared: a peer that sends a header and stalls costs
// little.
func (f *FrameReader) read(n int) error {
	if n <= cap(f.buf) {
		f.buf = f.buf[:n]
		_, err := io.ReadFull(f.r, f.buf)
		return err
	}
	f.buf = f.buf[:0]
	for len(f.buf) < n {
		have := len(f.buf)
		step := min(n-have, max(have, keepFrameBuf))
		f.buf = slices.Grow(f.buf, step)[:have+step]
		if _, err := io.ReadFull(f.r, f.buf[have:]); err != nil {
			return err
		}
	}
	return nil
}

// Buffered reports how many bytes are already read ahead and waiting.
func (f *FrameReader) Buffered() int { return f.r.Buffered() }

// FrameWriter encodes messages into length-prefixed frames on w (a
// *bufio.Writer or *bytes.Buffer: it does not flush). It reuses one encoder
// and buffer; it is not safe for concurrent use.
type FrameWriter struct {
	// Max, if positive, is the largest frame Write sends: a message that
	// encodes larger is not sent, and Write returns an ErrTooLarge error,
	// for the caller to fail it alone rather than have the reader refuse
	// the frame and drop the connection with everything on it.
	Max int

	w   io.Writer
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// NewFrameWriter returns a FrameWriter over w.
func NewFrameWriter(w io.Writer) *FrameWriter {
	f := &FrameWriter{w: w}
	f.enc = msgpack.NewEncoder(&f.buf)
	return f
}

// encoder is what WriteMessage encodes: a *Request or a *Response.
type encoder interface{ Encode(*msgpack.Encoder) error }

// Write encodes m as one frame onto the writer.
func (f *FrameWriter) Write(m encoder) error {
	f.buf.Reset()
	f.buf.Write([]byte{0, 0, 0, 0})
	if err := m.Encode(f.enc); err != nil {
		return err
	}
	b := f.buf.Bytes()
	if n := len(b) - FrameHeader; f.Max > 0 && n > f.Max {
		f.buf.Reset()
		return Errorf(CodeTooLarge, "a message of %d bytes, over the %d-byte frame limit", n, f.Max)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-FrameHeader))
	_, err := f.w.Write(b)
	return err
}

// AppendFrame appends m to dst as one frame and returns the extended slice.
// It is a convenience for tests and tools; connections use FrameWriter.
func AppendFrame(dst []byte, m encoder) ([]byte, error) {
	var buf bytes.Buffer
	if err := m.Encode(msgpack.NewEncoder(&buf)); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(buf.Len()))
	return append(dst, buf.Bytes()...), nil
}
