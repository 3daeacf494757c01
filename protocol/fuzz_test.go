package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// maxDecodedBytes is how many bytes of keys, values and strings a decoded
// message may hold: never more than the input itself.
func decodedBytes(r *Request) int {
	n := len(r.Key) + cap(r.Value) + len(r.Pattern)
	for _, k := range r.Keys {
		n += len(k)
	}
	return n
}

func FuzzDecodeRequest(f *testing.F) {
	addSeeds(f, requestSeeds(f))
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		err := d.DecodeRequest(b, &r)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeRequest error %v; want one wrapping ErrBadRequest", err)
			}
			return
		}
		if got := decodedBytes(&r); got > len(b) {
			t.Fatalf("decoded %d bytes of fields from %d bytes of input", got, len(b))
		}
		if cap(r.Keys) > len(b) {
			t.Fatalf("Keys capacity %d from %d bytes of input", cap(r.Keys), len(b))
		}
		// Whatever decodes must encode and decode to the same request.
		frame, err := AppendFrame(nil, &r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again Request
		if err := d.DecodeRequest(frame[FrameHeader:], &again); err != nil {
			t.Fatalf("decode re-encoded request: %v", err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip: %s", diff(again, r))
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	addSeeds(f, responseSeeds(f))
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Response
		err := d.DecodeResponse(b, &r)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("DecodeResponse error %v; want one wrapping ErrBadRequest", err)
			}
			return
		}
		n := len(r.Msg) + cap(r.Value)
		for _, k := range r.Keys {
			n += len(k)
		}
		if n > len(b) || cap(r.Keys) > len(b) {
			t.Fatalf("decoded %d bytes, %d keys from %d bytes of input", n, cap(r.Keys), len(b))
		}
		frame, err := AppendFrame(nil, &r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again Response
		if err := d.DecodeResponse(frame[FrameHeader:], &again); err != nil {
			t.Fatalf("decode re-encoded response: %v", err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip: %s", diff(again, r))
		}
	})
}

// frameSeeds are byte streams for FuzzFrameReaderNext, with a frame limit.
var frameSeeds = []struct {
	name   string
	stream []byte
	max    uint16
}{
	{"two_frames", []byte{0, 0, 0, 3, 0x93, 1, 2, 0, 0, 0, 0}, 16},
	{"claims_4GiB", []byte{0xff, 0xff, 0xff, 0xff, 1}, 1024},
	{"claims_1MiB_sends_2", []byte{0x00, 0x10, 0x00, 0x00, 1, 2}, 1024},
	{"claims_limit_sends_2", []byte{0, 0, 0xff, 0xff, 1, 2}, 0xffff},
	{"half_header", []byte{0, 0, 0}, 8},
	{"half_frame", []byte{0, 0, 0, 8, 1, 2, 3}, 8},
	{"empty_frames", bytes.Repeat([]byte{0, 0, 0, 0}, 8), 0},
}

func FuzzFrameReaderNext(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add(s.stream, s.max)
	}
	f.Fuzz(func(t *testing.T, stream []byte, max uint16) {
		fr := NewFrameReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), int(max))
		total := 0
		for {
			frame, err := fr.Next()
			if err != nil {
				switch {
				case errors.Is(err, ErrTooLarge):
					if fr.Buffered() < FrameHeader {
						t.Fatalf("the refused frame's header was consumed")
					}
				case err == io.EOF, err == io.ErrUnexpectedEOF:
				default:
					t.Fatalf("Next: unexpected error %v", err)
				}
				break
			}
			if len(frame) > int(max) {
				t.Fatalf("frame of %d bytes; limit %d", len(frame), max)
			}
			total += FrameHeader + len(frame)
			if total > len(stream) {
				t.Fatalf("read %d bytes of frames from a %d-byte stream", total, len(stream))
			}
		}
		if cap(fr.buf) > 2*len(stream)+keepFrameBuf {
			t.Fatalf("frame buffer grew to %d for a %d-byte stream", cap(fr.buf), len(stream))
		}
	})
}

func FuzzMatchGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"*", ""}, {"sess:*", "sess:abc"}, {"h?llo", "hello"}, {"h[ae]llo", "hallo"},
		{"h[^e]llo", "hello"}, {"h[a-b]llo", "hbllo"}, {`h\*llo`, "h*llo"}, {"*a*b*", "xxaxxbxx"},
		{"[", "a"}, {"[a-", "a"}, {`\`, `\`}, {`[\`, `\`}, {"a*b*c*d*e*f", "aabbccddeeff"},
		{"[z-a]", "m"}, {"[]]", "]"}, {"*?", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 24 || len(s) > 48 {
			return // the reference matcher is exponential without its memo
		}
		if got, want := MatchGlob(pattern, s), refMatch(pattern, s); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v; want %v", pattern, s, got, want)
		}
	})
}

// refMatch is a plain recursive glob matcher to check MatchGlob's
// backtracking against. Character classes share matchClass.
func refMatch(pattern, s string) bool {
	memo := map[[2]int]bool{}
	var match func(p, i int) bool
	match = func(p, i int) bool {
		k := [2]int{p, i}
		if v, ok := memo[k]; ok {
			return v
		}
		var ok bool
		switch {
		case p == len(pattern):
			ok = i == len(s)
		case pattern[p] == '*':
			ok = match(p+1, i) || (i < len(s) && match(p, i+1))
		case i == len(s):
			ok = false
		case pattern[p] == '?':
			ok = match(p+1, i+1)
		case pattern[p] == '[':
			np, hit := matchClass(pattern, p, s[i])
			ok = hit && match(np, i+1)
		case pattern[p] == '\\' && p+1 < len(pattern):
			ok = pattern[p+1] == s[i] && match(p+2, i+1)
		default:
			ok = pattern[p] == s[i] && match(p+1, i+1)
		}
		memo[k] = ok
		return ok
	}
	return match(0, 0)
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint8(OpSet), uint16(FlagIfAbsent), "sess:1", []byte("coat"), int64(60000), uint64(7), "", int32(0), uint64(0), int32(0), "", "", uint64(0))
	f.Add(uint64(1<<63), uint8(OpDelete), uint16(0), "", []byte(nil), int64(-1), uint64(0), "a,b,c", int32(-1), uint64(1<<47), int32(1<<31-1), "sess:*", "detail", uint64(3))
	f.Add(uint64(0), uint8(255), uint16(1<<16-1), strings.Repeat("k", 300), bytes.Repeat([]byte{0xc1}, 70000), int64(-1<<63), uint64(1<<64-1), ",", int32(-1<<31), uint64(1<<64-1), int32(-1<<31), "[", "", uint64(1<<64-1))
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, id uint64, op uint8, flags uint16, key string, value []byte, ttl int64,
		version uint64, keys string, partition int32, cursor uint64, count int32, pattern, msg string, table uint64) {
		var ks []string
		if keys != "" {
			ks = strings.Split(keys, ",")
		}
		req := Request{ID: id, Op: Op(op), Flags: Flags(flags), Key: key, Value: value, TTL: ttl,
			Version: version, Keys: ks, Partition: partition, Cursor: cursor, Count: count, Pattern: pattern, Table: table}
		var got Request
		decodeFrame(t, dec, &req, func(b []byte) error { return dec.DecodeRequest(b, &got) })
		if !reflect.DeepEqual(got, req) {
			t.Fatalf("request round trip: %s", diff(got, req))
		}
		// Each entry carries a prefix of value, at most 1 MiB for all of
		// them: every entry carrying all of it made a frame of len(ks) times
		// len(value) bytes, and an input of 3,000 commas and a 70 KB value
		// took one fuzzing run 4 s (CI's fuzz step stalled for 45 s on one).
		ev := value[:min(len(value), (1<<20)/max(len(ks), 1))]
		var es []Entry
		for i, k := range ks {
			es = append(es, Entry{Key: k, Value: ev, TTL: ttl, Version: version + uint64(i), Tombstone: i%2 == 1})
		}
		resp := Response{ID: id, Code: Code(op), Msg: msg, Value: value, Version: version, TTL: ttl,
			N: int64(cursor), Keys: ks, Cursor: cursor, Table: table, Entries: es}
		var gotResp Response
		decodeFrame(t, dec, &resp, func(b []byte) error { return dec.DecodeResponse(b, &gotResp) })
		if !reflect.DeepEqual(gotResp, resp) {
			t.Fatalf("response round trip: %s", diff(gotResp, resp))
		}
	})
}

// diff names the first field in which got and want differ, with short
// renderings of both values.
func diff(got, want any) string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	short := func(v reflect.Value) string {
		s := fmt.Sprintf("%#v", v.Interface())
		if len(s) > 120 {
			s = s[:120] + "..."
		}
		return s
	}
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			return fmt.Sprintf("%s: got %s; want %s", g.Type().Field(i).Name, short(g.Field(i)), short(w.Field(i)))
		}
	}
	return "no difference"
}

// decodeFrame writes m with a FrameWriter, reads it back with a FrameReader
// and hands the payload to decode.
func decodeFrame(t *testing.T, _ *Decoder, m encoder, decode func([]byte) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := NewFrameWriter(&buf).Write(m); err != nil {
		t.Fatalf("write frame: %v", err)
	}
	fr := NewFrameReader(bufio.NewReader(&buf), buf.Len())
	frame, err := fr.Next()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if err := decode(frame); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after the only frame: got %v; want io.EOF", err)
	}
}
