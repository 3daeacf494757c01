package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

func sampleBatch(n, valueLen int) ([]*Request, []*Response) {
	reqs := make([]*Request, n)
	resps := make([]*Response, n)
	for i := range n {
		reqs[i] = &Request{ID: uint64(i), Op: OpSet, Key: fmt.Sprintf("{s}k%d", i), Value: bytes.Repeat([]byte{byte('a' + i%26)}, valueLen), TTL: 60000, Flags: FlagIfAbsent}
		resps[i] = &Response{ID: uint64(i), Code: CodeOK, Value: bytes.Repeat([]byte{byte('A' + i%26)}, valueLen), Version: uint64(i + 1), TTL: 59000, N: 1}
	}
	return reqs, resps
}

func TestBatch_roundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 16, 300} { // 300 items of 200 bytes outgrow the first buffer
		reqs, resps := sampleBatch(n, 200)
		roundTrip(t, "requests", reqs, DecodeRequestBatch)
		roundTrip(t, "responses", resps, DecodeResponseBatch)
	}
}

// AppendBatch appends what EncodeBatch returns, after dst's bytes, and a
// buffer with room for the batch is reused as it is.
func TestBatch_appendReusesTheBuffer(t *testing.T) {
	reqs, _ := sampleBatch(16, 200)
	want, err := EncodeBatch(reqs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendBatch([]byte("prefix"), reqs)
	if err != nil || string(got) != "prefix"+string(want) {
		t.Fatalf("AppendBatch after a prefix: %v; want the prefix and EncodeBatch's bytes", err)
	}
	buf := make([]byte, 0, len(want))
	got, err = AppendBatch(buf, reqs)
	if err != nil || !bytes.Equal(got, want) || &got[0] != &buf[:1][0] {
		t.Fatalf("AppendBatch into room enough: %v, same bytes %t, in place %t", err, bytes.Equal(got, want), &got[0] == &buf[:1][0])
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = AppendBatch(buf[:0], reqs) }); allocs > 1 {
		t.Errorf("AppendBatch into room enough: %.0f allocations; want at most 1 (the buffer's header)", allocs)
	}
}

// roundTrip encodes ms as a batch and checks that decode gives them back.
func roundTrip[M encoder](t *testing.T, what string, ms []M, decode func([]byte) ([]M, error)) {
	t.Helper()
	b, err := EncodeBatch(ms)
	if err != nil {
		t.Fatalf("EncodeBatch(%d %s): %v", len(ms), what, err)
	}
	got, err := decode(b)
	if err != nil {
		t.Fatalf("decode %d %s: %v", len(ms), what, err)
	}
	if len(got) != len(ms) || (len(ms) > 0 && !reflect.DeepEqual(got, ms)) {
		t.Fatalf("%d %s came back as %d, different", len(ms), what, len(got))
	}
}

// A batch encoded item by item with minimal-length bins (how EncodeBatch
// wrote them before it wrote bin32 in place) still decodes.
func TestBatch_decodesMinimalBins(t *testing.T) {
	reqs, _ := sampleBatch(3, 10)
	var buf, one bytes.Buffer
	e, oe := msgpack.NewEncoder(&buf), msgpack.NewEncoder(&one)
	if err := e.EncodeArrayLen(len(reqs)); err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		one.Reset()
		if err := r.Encode(oe); err != nil {
			t.Fatal(err)
		}
		if err := e.EncodeBytes(one.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := DecodeRequestBatch(buf.Bytes())
	if err != nil || !reflect.DeepEqual(got, reqs) {
		t.Fatalf("DecodeRequestBatch = %v, %v; want the requests back", got, err)
	}
}

// Decoded items own their memory: the input buffer is reused once the
// batch is decoded.
func TestBatch_decodedItemsDoNotShareTheInput(t *testing.T) {
	reqs, resps := sampleBatch(4, 50)
	notShared(t, reqs, DecodeRequestBatch)
	notShared(t, resps, DecodeResponseBatch)
}

func notShared[M encoder](t *testing.T, ms []M, decode func([]byte) ([]M, error)) {
	t.Helper()
	b := mustEncodeBatch(t, ms)
	got, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !reflect.DeepEqual(got, ms) {
		t.Fatal("decoded batch items changed when the input was overwritten")
	}
}

func TestBatch_refusesBadInput(t *testing.T) {
	reqs, _ := sampleBatch(2, 10)
	good, err := EncodeBatch(reqs)
	if err != nil {
		t.Fatal(err)
	}
	tooMany := func() []byte {
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		_ = e.EncodeArrayLen(maxBatch + 1)
		for range maxBatch + 1 {
			_ = e.EncodeBytes([]byte{0x90})
		}
		return buf.Bytes()
	}()
	for name, tc := range map[string]struct {
		b    []byte
		code Code
	}{
		"empty":                {nil, CodeBadRequest},
		"not an array":         {[]byte{0xc0}, CodeBadRequest},
		"truncated":            {good[:len(good)-3], CodeBadRequest},
		"trailing bytes":       {append(append([]byte{}, good...), 0x01), CodeBadRequest},
		"item longer than all": {[]byte{0x91, msgpcode.Bin32, 0x7f, 0xff, 0xff, 0xff, 0x90}, CodeBadRequest},
		"item not a request":   {[]byte{0x91, 0xc4, 0x01, 0x07}, CodeBadRequest},
		"over the limit":       {tooMany, CodeTooLarge},
	} {
		_, err := DecodeRequestBatch(tc.b)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%s: DecodeRequestBatch error = %v; want code %v", name, err, tc.code)
		}
	}
}

func BenchmarkEncodeBatch_responses16(b *testing.B) {
	_, resps := sampleBatch(16, 200)
	benchmarkBatch(b, func() error { _, err := EncodeBatch(resps); return err })
}

func BenchmarkDecodeRequestBatch16(b *testing.B) {
	reqs, _ := sampleBatch(16, 200)
	enc := mustEncodeBatch(b, reqs)
	benchmarkBatch(b, func() error { _, err := DecodeRequestBatch(enc); return err })
}

func BenchmarkDecodeResponseBatch16(b *testing.B) {
	_, resps := sampleBatch(16, 200)
	enc := mustEncodeBatch(b, resps)
	benchmarkBatch(b, func() error { _, err := DecodeResponseBatch(enc); return err })
}

func mustEncodeBatch[M encoder](tb testing.TB, ms []M) []byte {
	tb.Helper()
	enc, err := EncodeBatch(ms)
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func benchmarkBatch(b *testing.B, run func() error) {
	b.ReportAllocs()
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
}

// Batches come from other nodes and from clients (OpAtomic): whatever the
// input, decoding returns a protocol error or requests that hold no more
// bytes than the input and survive a round trip.
func FuzzDecodeRequestBatch(f *testing.F) {
	for _, n := range []int{0, 1, 3} {
		reqs, _ := sampleBatch(n, 5)
		f.Add(mustEncodeBatch(f, reqs))
	}
	f.Add([]byte{0x91, msgpcode.Bin32, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeRequestBatch(b)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("DecodeRequestBatch error %v; want a protocol error", err)
			}
			return
		}
		total := 0
		for _, r := range reqs {
			total += decodedBytes(r)
		}
		if total > len(b) {
			t.Fatalf("decoded %d bytes of fields from %d bytes of input", total, len(b))
		}
		again, err := DecodeRequestBatch(mustEncodeBatch(t, reqs))
		if err != nil {
			t.Fatalf("decode re-encoded batch: %v", err)
		}
		if !reflect.DeepEqual(again, reqs) {
			t.Fatal("round trip changed the batch")
		}
	})
}
