package store

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// chunkSize is the size of a standard arena chunk. Entries larger than this
// get a chunk of their own.
const chunkSize = 64 << 10

// slabChunks is how many standard chunks are mapped at once.
const slabChunks = 64

// keepFree is how many free chunks keep their pages; beyond it, freed chunks
// give their pages back to the kernel.
const keepFree = 64

// allocator hands out arena chunks mapped outside the Go heap and accounts
// for every byte it hands out.
type allocator struct {
	mu   sync.Mutex // guards free
	free [][]byte   // standard chunks ready for reuse

	inUse atomic.Int64 // bytes of chunks handed out and not yet released

	mapper func(n int) ([]byte, error) // maps memory; nil: mapMemory (tests make it fail)
}

func (a *allocator) mapMemory(n int) ([]byte, error) {
	if a.mapper != nil {
		return a.mapper(n)
	}
	return mapMemory(n)
}

// alloc returns a chunk of at least n bytes: a standard chunk when n fits in
// one, else a dedicated mapping.
func (a *allocator) alloc(n int) ([]byte, error) {
	if n > chunkSize {
		b, err := a.mapMemory(n)
		if err != nil {
			return nil, fmt.Errorf("map %d bytes: %w", n, err)
		}
		a.inUse.Add(int64(len(b)))
		return b, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.free) == 0 {
		slab, err := a.mapMemory(chunkSize * slabChunks)
		if err != nil {
			return nil, fmt.Errorf("map %d bytes: %w", chunkSize*slabChunks, err)
		}
		for i := range slabChunks {
			a.free = append(a.free, slab[i*chunkSize:(i+1)*chunkSize:(i+1)*chunkSize])
		}
	}
	b := a.free[len(a.free)-1]
	a.free = a.free[:len(a.free)-1]
	a.inUse.Add(chunkSize)
	return b, nil
}

// release takes back a chunk returned by alloc.
func (a *allocator) release(b []byte) {
	a.inUse.Add(-int64(len(b)))
	if len(b) != chunkSize {
		unmapMemory(b)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.free) >= keepFree {
		dropPages(b)
	}
	a.free = append(a.free, b)
}
