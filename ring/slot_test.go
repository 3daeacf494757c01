package ring

import "testing"

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
