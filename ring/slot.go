package ring

// SlotCount is the number of hash slots, as in Redis Cluster. Keys map to
// slots, slots map to partitions in contiguous ranges.
const SlotCount = 16384

// DefaultPartitions is the partition count a cluster uses unless told
// otherwise. Every node of one cluster must use the same count.
const DefaultPartitions = 271

// MaxPartitions bounds the partition count so that every partition holds at
// least one slot.
const MaxPartitions = SlotCount

// Slot returns the hash slot of key: CRC16-XMODEM of the key, or of the
// first non-empty "{hash tag}" in it, modulo SlotCount. It is the function
// Redis Cluster uses, so CLUSTER KEYSLOT agrees with Redis.
func Slot(key string) uint16 {
	if i := indexByte(key, '{'); i >= 0 {
		if j := indexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % SlotCount
}

// PartitionOfSlot returns the partition that holds slot when the cluster has
// n partitions. Partition p holds the contiguous slot range SlotRange(p, n).
func PartitionOfSlot(slot uint16, n int) int {
	return int(slot) * n / SlotCount
}

// Partition returns the partition that holds key when the cluster has n
// partitions.
func Partition(key string, n int) int {
	return PartitionOfSlot(Slot(key), n)
}

// SlotRange returns the first and last slot (inclusive) of partition p of n.
func SlotRange(p, n int) (first, last uint16) {
	// Smallest s with s*n/SlotCount >= p, i.e. ceil(p*SlotCount/n).
	lo := (p*SlotCount + n - 1) / n
	hi := ((p+1)*SlotCount+n-1)/n - 1
	return uint16(lo), uint16(hi)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// crc16 is CRC16-XMODEM (polynomial 0x1021, initial value 0), eight bytes
// a step ("slicing by 8"): crcTables[k][x] is the CRC register after byte
// x then k zero bytes, so by linearity the register after eight bytes is
// the XOR of one lookup per byte, with the register folded into the first
// two. The bytes of a step are independent lookups instead of a chain of
// eight dependent ones, which makes a session ID's slot several times
// cheaper. The tail goes a byte at a time.
func crc16(s string) uint16 {
	var crc uint16
	t := &crcTables
	for len(s) >= 8 {
		crc = t[7][s[0]^byte(crc>>8)] ^ t[6][s[1]^byte(crc)] ^ t[5][s[2]] ^ t[4][s[3]] ^
			t[3][s[4]] ^ t[2][s[5]] ^ t[1][s[6]] ^ t[0][s[7]]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ t[0][byte(crc>>8)^s[i]]
	}
	return crc
}

var crcTables = func() (t [8][256]uint16) {
	for i := range t[0] {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[0][i] = c
	}
	for k := 1; k < len(t); k++ {
		for i := range t[k] {
			c := t[k-1][i]
			t[k][i] = c<<8 ^ t[0][byte(c>>8)]
		}
	}
	return t
}()
