package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// A seed is a named decoder input. Hostile seeds must be refused.
type seed struct {
	name    string
	b       []byte
	hostile bool
}

func encoded(tb testing.TB, m encoder) []byte {
	tb.Helper()
	b, err := AppendFrame(nil, m)
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return b[FrameHeader:]
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// withExtraField returns m's encoding with one more field than this
// version knows, holding extra: what a newer peer might send.
func withExtraField(tb testing.TB, m encoder, extra []byte) []byte {
	tb.Helper()
	b := encoded(tb, m)
	switch {
	case b[0] >= 0x90 && b[0] < 0x9f: // fixarray with room for one more
		b[0]++
	case b[0] == 0x9f: // 15 fields: the 16th needs an array16 header
		b = cat([]byte{0xdc, 0, 16}, b[1:])
	case b[0] == 0xdc:
		binary.BigEndian.PutUint16(b[1:], binary.BigEndian.Uint16(b[1:])+1)
	default:
		tb.Fatalf("encoding starts with %#x; want an array header", b[0])
	}
	return cat(b, extra)
}

func requestSeeds(tb testing.TB) []seed {
	set := encoded(tb, &Request{ID: 7, Op: OpSet, Key: "sess:1", Value: []byte("coat"), TTL: 60000})
	return []seed{
		{"set", set, false},
		{"hello", encoded(tb, &Request{ID: 1, Op: OpHello, Version: Version}), false},
		{"delete_keys", encoded(tb, &Request{ID: 2, Op: OpDelete, Keys: []string{"a", "b"}}), false},
		{"scan", encoded(tb, &Request{ID: 3, Op: OpScan, Partition: 5, Cursor: 1 << 40, Count: 100, Pattern: "s*"}), false},
		{"fewer_fields", []byte{0x93, 9, 2, 0}, false},
		{"newer_peer_field", withExtraField(tb, &Request{Key: "k"}, []byte{0x82, 0xa1, 'x', 0x91, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0xd4, 1, 2}), false},
		{"empty", []byte{}, true},
		{"truncated", set[:len(set)/2], true},
		{"trailing_byte", cat(set, []byte{0}), true},
		{"never_used_code", []byte{0xc1}, true},
		{"map_not_array", []byte{0x81, 0xa1, 'a', 1}, true},
		{"array32_of_4g_fields", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, true},
		{"key_str32_4GiB", []byte{0x9c, 1, 4, 0, 0xdb, 0xff, 0xff, 0xff, 0xff}, true},
		{"value_bin32_4GiB", []byte{0x9c, 1, 4, 0, 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff}, true},
		{"keys_array32_4G", []byte{0x9c, 1, 6, 0, 0xa0, 0xc0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff}, true},
		{"keys_str32_4GiB", []byte{0x9c, 1, 6, 0, 0xa0, 0xc0, 0, 0, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff}, true},
		{"extra_field_str32_4GiB", withExtraField(tb, &Request{Key: "k"}, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}), true},
		{"extra_field_bin32_4GiB", withExtraField(tb, &Request{Key: "k"}, []byte{0xc6, 0xff, 0xff, 0xff, 0xff}), true},
		{"extra_field_ext32_4GiB", withExtraField(tb, &Request{Key: "k"}, []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1}), true},
		{"extra_field_map32_4G", withExtraField(tb, &Request{Key: "k"}, []byte{0xdf, 0xff, 0xff, 0xff, 0xff}), true},
		{"extra_field_array32_4G", withExtraField(tb, &Request{Key: "k"}, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}), true},
		{"extra_field_deep_nesting", withExtraField(tb, &Request{Key: "k"}, bytes.Repeat([]byte{0x91}, 4096)), true},
		{"op_out_of_range", []byte{0x92, 1, 0xcd, 1, 0}, true},
		{"op_negative", []byte{0x92, 1, 0xff}, true},
		{"op_as_float", []byte{0x92, 1, 0xca, 0x40, 0x40, 0, 0}, true},
		{"key_as_map", []byte{0x94, 1, 4, 0, 0x80}, true},
		{"ttl_as_string", []byte{0x96, 1, 4, 0, 0xa1, 'k', 0xc0, 0xa1, '1'}, true},
		{"id_as_fixext", []byte{0x91, 0xd4, 1, 2}, true},
	}
}

func responseSeeds(tb testing.TB) []seed {
	return []seed{
		{"ok", encoded(tb, &Response{ID: 7, Value: []byte("coat"), Version: 9, TTL: 1500}), false},
		{"error", encoded(tb, &Response{ID: 8, Code: CodeTooLarge, Msg: "frame of 2000000 bytes"}), false},
		{"keys", encoded(tb, &Response{ID: 9, Keys: []string{"a", ""}, Cursor: 3, N: -1}), false},
		{"empty", []byte{}, true},
		{"msg_str32_4GiB", []byte{0x93, 1, 1, 0xdb, 0xff, 0xff, 0xff, 0xff}, true},
		{"value_bin32_4GiB", []byte{0x94, 1, 0, 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff}, true},
		{"keys_array32_4G", []byte{0x98, 1, 0, 0xa0, 0xc0, 0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff}, true},
		{"extra_field_deep_nesting", withExtraField(tb, &Response{ID: 1}, bytes.Repeat([]byte{0x91}, 4096)), true},
		{"code_out_of_range", []byte{0x92, 1, 0xcd, 1, 0}, true},
		{"trailing_bytes", []byte{0x91, 1, 1, 1}, true},
		{"extra_field_str32_4GiB", withExtraField(tb, &Response{ID: 1}, []byte{0xdb, 0xff, 0xff, 0xff, 0xff}), true},
		{"extra_field_ext32_4GiB", withExtraField(tb, &Response{ID: 1}, []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1}), true},
		{"entries_array32_4G", withEntries(tb, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}), true},
		{"entry_of_4_fields", withEntries(tb, []byte{0x91, 0x94, 0xa1, 'k', 0xc0, 0, 0}), true},
		{"entry_key_str32_4GiB", withEntries(tb, []byte{0x91, 0x95, 0xdb, 0xff, 0xff, 0xff, 0xff}), true},
		{"entries", encoded(tb, &Response{ID: 4, Table: 9, Entries: []Entry{{Key: "a", Value: []byte("v"), TTL: -1, Version: 3}, {Key: "b", Tombstone: true}}}), false},
	}
}

// withEntries returns a response of the first 11 fields (fields are
// append-only, so this layout stays valid) whose last, Entries, is entries.
func withEntries(_ testing.TB, entries []byte) []byte {
	// ID 1, code 0, msg "", value nil, version 0, ttl 0, n 0, keys nil,
	// cursor 0, table 0, then Entries.
	return cat([]byte{0x9b, 1, 0, 0xa0, 0xc0, 0, 0, 0, 0xc0, 0, 0}, entries)
}

func addSeeds(f *testing.F, seeds []seed) {
	for _, s := range seeds {
		f.Add(s.b)
	}
}

func TestDecoder_seeds(t *testing.T) {
	d := NewDecoder()
	for _, s := range requestSeeds(t) {
		t.Run("request/"+s.name, func(t *testing.T) {
			var r Request
			checkSeedResult(t, s, d.DecodeRequest(s.b, &r))
		})
	}
	for _, s := range responseSeeds(t) {
		t.Run("response/"+s.name, func(t *testing.T) {
			var r Response
			checkSeedResult(t, s, d.DecodeResponse(s.b, &r))
		})
	}
}

func checkSeedResult(t *testing.T, s seed, err error) {
	t.Helper()
	switch {
	case s.hostile && !errors.Is(err, ErrBadRequest):
		t.Errorf("got error %v; want one wrapping ErrBadRequest", err)
	case !s.hostile && err != nil:
		t.Errorf("got error %v; want none", err)
	}
}

// TestDecoder_hostileInputsAllocateLittle decodes each tiny hostile input
// and checks that what it allocates is bounded by a few KiB, whatever
// lengths the input declares.
func TestDecoder_hostileInputsAllocateLittle(t *testing.T) {
	const budget = 16 << 10 // bytes per decode
	d := NewDecoder()
	var r Request
	var resp Response
	for _, s := range append(requestSeeds(t), responseSeeds(t)...) {
		if !s.hostile {
			continue
		}
		got := allocatedBytes(func() {
			for range 10 {
				_ = d.DecodeRequest(s.b, &r)
				_ = d.DecodeResponse(s.b, &resp)
			}
		}) / 20
		if got > budget {
			t.Errorf("%s (%d bytes): decoding allocated %d bytes; want at most %d", s.name, len(s.b), got, budget)
		}
	}
}

func allocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecoder_smallRequestAllocations(t *testing.T) {
	d := NewDecoder()
	b := encoded(t, &Request{ID: 7, Op: OpGet, Key: "sess:1"})
	var r Request
	allocs := testing.AllocsPerRun(100, func() { _ = d.DecodeRequest(b, &r) })
	if allocs > 2 {
		t.Errorf("decoding a get allocated %v times; want at most 2", allocs)
	}
}

// TestWriteFuzzCorpus rewrites testdata/fuzz from the seeds above when
// CLOAKROOM_WRITE_CORPUS=1, so that `go test` runs them without -fuzz.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CLOAKROOM_WRITE_CORPUS") != "1" {
		t.Skip("set CLOAKROOM_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(fuzz string, seeds []seed) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.b)))
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecodeRequest", requestSeeds(t))
	write("FuzzDecodeResponse", responseSeeds(t))
	dir := filepath.Join("testdata", "fuzz", "FuzzFrameReaderNext")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range frameSeeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint16(%d)\n", strconv.Quote(string(s.stream)), s.max)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
