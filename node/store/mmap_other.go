//go:build !unix || race

package store

// On platforms without mmap the arena lives on the Go heap. It is still
// pointer-free, so the collector does not scan it.
//
// Race-detector builds use the heap too: the detector does not watch
// memory mapped outside the Go heap, so with mmap'd chunks a race on the
// arena's bytes went unreported.
func mapMemory(n int) ([]byte, error) { return make([]byte, n), nil }

func unmapMemory([]byte) {}

func dropPages([]byte) {}
