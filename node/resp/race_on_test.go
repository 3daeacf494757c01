//go:build race

package resp

// raceBuild: the race detector is on. Allocation counts then say little:
// the store's arena is on the Go heap (node/store's mmap_other.go) and
// sync.Pool drops items at random, so tests that bound allocations check
// them only without it.
const raceBuild = true
