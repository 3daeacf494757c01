package throttle

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEvery_onePerPeriod(t *testing.T) {
	e := Every{Period: 10 * time.Second}
	t0 := time.Now()
	var let atomic.Int64
	var wg sync.WaitGroup
	for range 8 { // at once: one goes through
		wg.Go(func() {
			if e.Allow(t0) {
				let.Add(1)
			}
		})
	}
	wg.Wait()
	if got := let.Load(); got != 1 {
		t.Fatalf("%d of 8 simultaneous events let through; want 1", got)
	}
	if e.Allow(t0.Add(9 * time.Second)) {
		t.Error("an event within the period let through")
	}
	if !e.Allow(t0.Add(10 * time.Second)) {
		t.Error("the first event after the period held back")
	}
}
