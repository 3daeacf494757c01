package ring

import (
	"math/rand/v2"
	"testing"
)

func TestSlot_matchesRedisCluster(t *testing.T) {
	// Values from Redis's CLUSTER KEYSLOT.
	cases := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"somekey", 11058},
		{"123456789", 12739},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
		{"", 0},
	}
	for _, c := range cases {
		if got := Slot(c.key); got != c.want {
			t.Errorf("Slot(%q) = %d; want %d", c.key, got, c.want)
		}
	}
}

func TestCRC16_matchesBytewise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 100 {
		b := make([]byte, n)
		for range 20 {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if got, want := crc16(string(b)), crc16Bytewise(string(b)); got != want {
				t.Fatalf("crc16(%x) = %#04x; want %#04x", b, got, want)
			}
		}
	}
}

func TestSlotRange_coversEverySlotOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 271, 1024, SlotCount} {
		next := 0
		for p := range n {
			lo, hi := SlotRange(p, n)
			if int(lo) != next || hi < lo {
				t.Fatalf("n=%d p=%d: range [%d,%d]; want start %d", n, p, lo, hi, next)
			}
			for _, s := range []uint16{lo, hi} {
				if got := PartitionOfSlot(s, n); got != p {
					t.Fatalf("n=%d: PartitionOfSlot(%d) = %d; want %d", n, s, got, p)
				}
			}
			next = int(hi) + 1
		}
		if next != SlotCount {
			t.Fatalf("n=%d: ranges end at %d; want %d", n, next, SlotCount)
		}
	}
}

func BenchmarkPartition(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = Partition("session:0123456789abcdef0123456789abcdef", DefaultPartitions)
	}
}

func BenchmarkPartition_short(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Partition("key:000000000042", DefaultPartitions) // redis-benchmark's key shape
	}
}

// crc16Bytewise is crc16 a byte at a time, the reference the tests check
// crc16 against.
func crc16Bytewise(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crcTables[0][byte(crc>>8)^s[i]]
	}
	return crc
}
