package client

import (
	"slices"
	"testing"
)

// A node that left a call unanswered is asked for the table last, so that
// one cut off from the network does not hold every refresh up.
func TestCandidates_quietNodesLast(t *testing.T) {
	c, err := New(Config{Addrs: []string{"seed:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &routes{addrs: []string{"a:1", "b:1", "c:1", "d:1"}}
	c.pool("b:1").markQuiet()
	c.pool("seed:1").markQuiet()
	for range 20 { // the members come shuffled
		got := c.candidates(r)
		if len(got) != 5 {
			t.Fatalf("candidates = %q; want the 4 members and the seed", got)
		}
		if !slices.Equal(got[3:], []string{"b:1", "seed:1"}) {
			t.Fatalf("candidates = %q; want the quiet b:1 and seed:1 last, in that order", got)
		}
	}
}
