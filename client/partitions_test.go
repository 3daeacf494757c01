package client_test

import (
	"testing"

	"github.com/cloakroom/cloakroom/node"
)

func TestClient_PartitionsIsWhatTheNodeRuns(t *testing.T) {
	for _, want := range []int{1, 7, 271, 16384} {
		n := startNode(t, func(c *node.Config) { c.Partitions = want })
		c := newClient(t, n.Addr())
		got, err := c.Partitions(ctxT(t))
		if err != nil || got != want {
			t.Errorf("got %d, %v; want %d", got, err, want)
		}
	}
}
