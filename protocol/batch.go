package protocol

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// An atomic batch (OpAtomic) travels in Request.Value as an array of
// encoded requests; its reply's Value is an array of encoded responses.

// maxBatch bounds the requests in one atomic batch.
const maxBatch = 1024

// EncodeBatch encodes requests or responses for an OpAtomic Value.
func EncodeBatch[M encoder](ms []M) ([]byte, error) {
	var buf, one bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	oe := msgpack.NewEncoder(&one)
	if err := e.EncodeArrayLen(len(ms)); err != nil {
		return nil, err
	}
	for _, m := range ms {
		one.Reset()
		if err := m.Encode(oe); err != nil {
			return nil, err
		}
		if err := e.EncodeBytes(one.Bytes()); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// DecodeRequestBatch decodes an OpAtomic request Value.
func DecodeRequestBatch(b []byte) ([]*Request, error) {
	blobs, err := decodeBlobs(b)
	if err != nil {
		return nil, err
	}
	d := NewDecoder()
	out := make([]*Request, len(blobs))
	for i, blob := range blobs {
		out[i] = new(Request)
		if err := d.DecodeRequest(blob, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DecodeResponseBatch decodes an OpAtomic reply Value.
func DecodeResponseBatch(b []byte) ([]*Response, error) {
	blobs, err := decodeBlobs(b)
	if err != nil {
		return nil, err
	}
	d := NewDecoder()
	out := make([]*Response, len(blobs))
	for i, blob := range blobs {
		out[i] = new(Response)
		if err := d.DecodeResponse(blob, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeBlobs(b []byte) ([][]byte, error) {
	d := NewDecoder()
	d.rd.Reset(b)
	d.dec.Reset(&d.rd)
	n, err := d.arrayLen(1)
	if err != nil {
		return nil, malformed(fmt.Errorf("batch: %w", err))
	}
	if n > maxBatch {
		return nil, Errorf(CodeTooLarge, "batch of %d requests; limit %d", n, maxBatch)
	}
	out := make([][]byte, n)
	for i := range out {
		if out[i], err = d.bytes(); err != nil {
			return nil, malformed(fmt.Errorf("batch item %d: %w", i, err))
		}
	}
	return out, d.end()
}
