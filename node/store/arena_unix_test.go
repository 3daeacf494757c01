//go:build unix && !race

package store

import "testing"

// TestAllocator_handsOutChunksWithTheirPagesFirst: chunks freed beyond
// keepFree keep their pages until giveBack, which reads them back as
// zeros; free chunks go out warm, then spare, then cold.
func TestAllocator_handsOutChunksWithTheirPagesFirst(t *testing.T) {
	var a allocator
	alloc := func() []byte {
		t.Helper()
		b, err := a.alloc(chunkSize)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	chunks := make([][]byte, keepFree+2)
	for i := range chunks {
		chunks[i] = alloc()
		chunks[i][0] = 0xAB
	}
	for _, b := range chunks {
		a.release(b)
	}
	if a.inUse.Load() != 0 {
		t.Fatalf("in use after releasing every chunk: %d bytes", a.inUse.Load())
	}
	spare1, spare2 := chunks[keepFree], chunks[keepFree+1] // freed with keepFree already kept
	if spare1[0] != 0xAB || spare2[0] != 0xAB {
		t.Fatal("a chunk freed beyond keepFree gave its pages back on the release itself")
	}

	for i := range keepFree {
		if b := alloc(); b[0] != 0xAB || &b[0] == &spare1[0] || &b[0] == &spare2[0] {
			t.Fatalf("chunk %d handed out was not one of the kept ones, while %d waited", i, keepFree-i)
		}
	}
	if b := alloc(); &b[0] != &spare2[0] {
		t.Fatal("with the kept chunks gone, a spare one was not handed out next, before a cold one")
	}
	a.giveBack()
	if spare1[0] != 0 {
		t.Fatal("giveBack left a spare chunk its pages")
	}
	if b := alloc(); &b[0] != &spare1[0] {
		t.Fatal("the chunk whose pages went back was not handed out next")
	}
}
