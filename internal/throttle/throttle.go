// Package throttle lets an event through at most once per period, from
// any goroutine: a warning that a flood of clients would otherwise repeat
// for each of them is logged once in a while.
package throttle

import (
	"sync/atomic"
	"time"
)

// Every lets one event through per Period. The zero value with a Period
// lets the first event through.
type Every struct {
	Period time.Duration
	last   atomic.Int64 // Unix ns of the last event let through
}

// Allow reports whether the event at now goes through: none has in the
// last Period.
func (e *Every) Allow(now time.Time) bool {
	t := now.UnixNano()
	last := e.last.Load()
	return t-last >= int64(e.Period) && e.last.CompareAndSwap(last, t)
}
