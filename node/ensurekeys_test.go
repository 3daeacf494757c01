package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/node"
	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/ring"
)

// A new primary whose partition is still arriving fetches a request's
// keys from the nodes that held it first. When none of them answers (here
// the only one has crashed, not yet noticed), it refuses the request, to
// be tried again, rather than answer "not found" for a session it has not
// received yet.
func TestNode_movingPartition_noSourceAnswers_refusesRatherThanNotFound(t *testing.T) {
	first := nodetest.StartNode(t, func(cfg *node.Config) { cfg.Name, cfg.GossipPreset = "node-1", "local" })
	ctx := ctxFor(t)
	cl := nodetest.DirectClient(t, first.Addr())
	value := []byte(strings.Repeat("v", 1024))
	const keys = 300
	for i := range keys {
		if err := cl.Set(ctx, fmt.Sprint("s", i), value, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	second := nodetest.StartNode(t, func(cfg *node.Config) {
		cfg.Name, cfg.GossipPreset, cfg.Join = "node-2", "local", []string{first.GossipAddr()}
		cfg.TransferRate = 4 << 10 // partitions arrive over more than a minute
	})
	nodetest.WaitFor(t, 20*time.Second, func() error {
		if len(second.Members()) != 2 || second.TableVersion() != first.TableVersion() {
			return fmt.Errorf("node-2 sees %v at table %d, node-1 table %d", second.Members(), second.TableVersion(), first.TableVersion())
		}
		return nil
	})
	// A key node-2 is now primary of and has not received.
	ci := second.ClusterInfo()
	key := ""
	for i := range keys {
		k := fmt.Sprint("s", i)
		owners := ci.Owners[ring.Partition(k, ci.Partitions)]
		if ci.Members[owners[0]].Name != "node-2" {
			continue
		}
		if _, ok := second.Store().Entry(k); !ok {
			key = k
			break
		}
	}
	if key == "" {
		t.Fatal("node-2 already holds every key it is primary of; the transfer was not slow enough")
	}
	first.Close() // crashed: node-2 notices only by failure detection
	_, err := nodetest.DirectClient(t, second.Addr()).Get(ctx, key)
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("get %s on node-2 right after node-1 crashed: %v; want ErrUnavailable (it was stored, and not here yet)", key, err)
	}
}
