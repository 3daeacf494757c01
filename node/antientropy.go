package node

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// Anti-entropy: replication keeps backups in step write by write, and
// transfers move whole partitions when the table changes; anti-entropy
// catches whatever both missed (a backup that was briefly unreachable, a
// write acknowledged while a transfer was under way). Every interval a
// primary compares a digest of each partition with each backup's and, where
// they differ, pushes its entries to the backup and pulls the backup's
// back. Entries apply by version, tombstones included, so the newest write
// wins on both sides and nothing deleted comes back.

// runAntiEntropy compares and repairs until the node closes.
func (n *Node) runAntiEntropy() {
	every := n.cfg.AntiEntropyInterval
	if every <= 0 {
		return
	}
	for {
		// Jitter so that nodes do not all compare at once.
		wait := every/2 + time.Duration(rand.Int64N(int64(every)))
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		n.antiEntropyRound(n.ctx)
	}
}

// antiEntropyRound compares every partition this node is primary for with
// its backups, repairing differences. It skips partitions in transfer.
func (n *Node) antiEntropyRound(ctx context.Context) {
	v := n.view()
	if !n.serving() || n.noQuorum() != "" {
		return
	}
	for p := range v.table.Owners {
		if _, primary := v.holds(p); !primary || n.transfers.syncing(p) {
			continue
		}
		others := v.others(p)
		if len(others) == 0 {
			continue // no copy to compare with: a single node, or --replicas 0
		}
		sum, count := n.store.Digest(p)
		for _, b := range others {
			if ctx.Err() != nil || n.view() != v {
				return // closing, or the table changed: transfers take over
			}
			r, err := n.call(ctx, v, b, &protocol.Request{Op: protocol.OpDigest, Partition: int32(p)})
			if err != nil || r.Code != protocol.CodeOK {
				continue
			}
			if r.Version == sum && r.N == int64(count) {
				continue
			}
			n.log.Info("anti-entropy: repairing partition", "partition", p, "peer", b, "entries_here", count, "entries_there", r.N)
			n.metrics.repairs.Inc()
			if err := n.transfers.pushTo(ctx, v, pushJob{p, b}); err != nil {
				n.log.Warn("anti-entropy push", "partition", p, "peer", b, "err", err)
			}
			if err := n.transfers.pullFrom(ctx, v, p, b); err != nil {
				n.log.Warn("anti-entropy pull", "partition", p, "peer", b, "err", err)
			}
		}
	}
}
