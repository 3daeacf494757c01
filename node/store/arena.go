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
//
// Free chunks go out warm first (they kept their pages), then spare (they
// still have them), then cold (gave them back, or never had any): writes
// that clean chunks release one and take one in turn, and handing out a
// cold chunk while a warm one waited made every such turn fault a chunk's
// pages in. A chunk freed with keepFree already warm is spare until the
// background gives its pages back (giveBack): dropping them on the write
// that freed it, a system call, took a third of a node's CPU while it
// cleaned (docs/benchmarks.md, "Dead room back a chunk at a time").
type allocator struct {
	mu    sync.Mutex // guards warm, spare and cold
	warm  [][]byte   // free standard chunks with their pages, at most keepFree
	spare [][]byte   // free standard chunks beyond those, pages not yet given back
	cold  [][]byte   // free standard chunks without pages

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
	if len(a.warm) == 0 && len(a.spare) == 0 && len(a.cold) == 0 {
		slab, err := a.mapMemory(chunkSize * slabChunks)
		if err != nil {
			return nil, fmt.Errorf("map %d bytes: %w", chunkSize*slabChunks, err)
		}
		for i := range slabChunks {
			a.cold = append(a.cold, slab[i*chunkSize:(i+1)*chunkSize:(i+1)*chunkSize])
		}
	}
	list := &a.warm
	switch {
	case len(a.warm) > 0:
	case len(a.spare) > 0:
		list = &a.spare
	default:
		list = &a.cold
	}
	b := (*list)[len(*list)-1]
	*list = (*list)[:len(*list)-1]
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
	if len(a.warm) < keepFree {
		a.warm = append(a.warm, b)
	} else {
		a.spare = append(a.spare, b)
	}
}

// giveBack gives the pages of the spare chunks back to the kernel; the
// store's background expiry calls it.
func (a *allocator) giveBack() {
	a.mu.Lock()
	spare := a.spare
	a.spare = nil
	a.mu.Unlock()
	if len(spare) == 0 {
		return
	}
	for _, b := range spare {
		dropPages(b) // outside the lock: no one else holds these now
	}
	a.mu.Lock()
	a.cold = append(a.cold, spare...)
	a.mu.Unlock()
}
