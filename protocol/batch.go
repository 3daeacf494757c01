package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// An atomic batch (OpAtomic) travels in Request.Value as an array of
// encoded requests; its reply's Value is an array of encoded responses.

// maxBatch bounds the requests in one atomic batch.
const maxBatch = 1024

// EncodeBatch encodes requests or responses for an OpAtomic Value. Each
// item is a msgpack bin32 written in place: its length is filled in once
// the item is encoded, so no item is copied.
func EncodeBatch[M encoder](ms []M) ([]byte, error) {
	return AppendBatch(make([]byte, 0, batchItemGuess*(len(ms)+1)), ms)
}

// AppendBatch is EncodeBatch appending to dst, whose spare room it uses
// first: a caller that sends batches often can reuse one buffer.
func AppendBatch[M encoder](dst []byte, ms []M) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	e := msgpack.GetEncoder()
	defer msgpack.PutEncoder(e)
	e.Reset(buf)
	if err := e.EncodeArrayLen(len(ms)); err != nil {
		return nil, err
	}
	for _, m := range ms {
		at := buf.Len()
		buf.Write([]byte{msgpcode.Bin32, 0, 0, 0, 0})
		if err := m.Encode(e); err != nil {
			return nil, err
		}
		b := buf.Bytes()
		binary.BigEndian.PutUint32(b[at+1:at+5], uint32(len(b)-at-5))
	}
	return buf.Bytes(), nil
}

// batchItemGuess sizes EncodeBatch's buffer: an item's fields without
// its value, plus a short value.
const batchItemGuess = 96

// DecodeRequestBatch decodes an OpAtomic request Value. The requests do
// not share memory with b.
func DecodeRequestBatch(b []byte) ([]*Request, error) {
	d := NewDecoder()
	blobs, err := d.blobs(b)
	if err != nil {
		return nil, err
	}
	out := make([]*Request, len(blobs))
	rs := make([]Request, len(blobs))
	for i, blob := range blobs {
		out[i] = &rs[i]
		if err := d.DecodeRequest(blob, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DecodeResponseBatch decodes an OpAtomic reply Value. The responses do
// not share memory with b.
func DecodeResponseBatch(b []byte) ([]*Response, error) {
	d := NewDecoder()
	blobs, err := d.blobs(b)
	if err != nil {
		return nil, err
	}
	out := make([]*Response, len(blobs))
	rs := make([]Response, len(blobs))
	for i, blob := range blobs {
		out[i] = &rs[i]
		if err := d.DecodeResponse(blob, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// blobs splits a batch into its items, which are slices of b: decoding
// an item copies what it keeps.
func (d *Decoder) blobs(b []byte) ([][]byte, error) {
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
		if out[i], err = d.view(b); err != nil {
			return nil, malformed(fmt.Errorf("batch item %d: %w", i, err))
		}
	}
	return out, d.end()
}
