//go:build unix && !race

package store

import "syscall"

// mapMemory returns n bytes of zeroed memory outside the Go heap, so that
// the garbage collector neither scans it nor counts it towards its goal.
func mapMemory(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

func unmapMemory(b []byte) { _ = syscall.Munmap(b) }

// dropPages tells the kernel it may reclaim b's pages; b stays mapped and
// reads back as zeros.
func dropPages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_DONTNEED) }
