//go:build !unix

package store

// On platforms without mmap the arena lives on the Go heap. It is still
// pointer-free, so the collector does not scan it.
func mapMemory(n int) ([]byte, error) { return make([]byte, n), nil }

func unmapMemory([]byte) {}

func dropPages([]byte) {}
