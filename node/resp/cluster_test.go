package resp

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestServer_ClusterLayout_ascending gives node-a two shards (different
// replicas), each with ranges out of order, adjacent ones among them and
// one adjacent to the other shard's. As Redis: CLUSTER SLOTS lists every
// range by slot with its primary (adjacent ones of one primary joined; no
// replicas, see TestServer_ClusterSlots_rolesAgreeWithNodes), CLUSTER NODES
// a node's ranges ascending with adjacent ones joined, and CLUSTER SHARDS
// each shard's ranges ascending.
func TestServer_ClusterLayout_ascending(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	a := Peer{Name: "node-a", Addr: ts.addr}
	b := Peer{Name: "node-b", Addr: "10.0.0.2:6379"}
	c3 := Peer{Name: "node-c", Addr: "10.0.0.3:6379"}
	ts.b.topo.Store(&Topology{Epoch: 7, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{16143, 16202}, {100, 199}}, Primary: a, Replicas: []Peer{b}},
		{Slots: [][2]uint16{{50, 99}, {0, 49}, {1391, 1450}}, Primary: a, Replicas: []Peer{c3}},
		{Slots: [][2]uint16{{16203, 16383}, {200, 1390}, {1451, 16142}}, Primary: b, Replicas: []Peer{c3}},
	}})
	c := ts.dial(t)

	c.cmd("cluster", "nodes")
	nodes := c.reply()
	for _, want := range []string{
		" myself,master - 0 0 1 connected 0-199 1391-1450 16143-16202\n",
		nodeID("node-b") + " 10.0.0.2:6379@0,node-b master - 0 0 1 connected 200-1390 1451-16142 16203-16383\n",
	} {
		if !strings.Contains(nodes, want) {
			t.Errorf("CLUSTER NODES: got %q; want a line ending %q", nodes, want)
		}
	}

	node := func(p Peer) string {
		host, port := splitAddr(p.Addr)
		return "*3\r\n$" + itoa(len(host)) + "\r\n" + host + "\r\n:" + itoa(port) + "\r\n$40\r\n" + nodeID(p.Name) + "\r\n"
	}
	slots := func(first, last int, ps ...Peer) string {
		s := "*" + itoa(2+len(ps)) + "\r\n:" + itoa(first) + "\r\n:" + itoa(last) + "\r\n"
		for _, p := range ps {
			s += node(p)
		}
		return s
	}
	c.expect("*6\r\n"+
		slots(0, 199, a)+
		slots(200, 1390, b)+
		slots(1391, 1450, a)+
		slots(1451, 16142, b)+
		slots(16143, 16202, a)+
		slots(16203, 16383, b), "cluster", "slots")

	c.cmd("cluster", "shards")
	shards := c.reply()
	for i, want := range []string{
		"$5\r\nslots\r\n*4\r\n:100\r\n:199\r\n:16143\r\n:16202\r\n",
		"$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:1391\r\n:1450\r\n",
		"$5\r\nslots\r\n*6\r\n:200\r\n:1390\r\n:1451\r\n:16142\r\n:16203\r\n:16383\r\n",
	} {
		if !strings.Contains(shards, want) {
			t.Errorf("CLUSTER SHARDS, shard %d: got %q; want its slots %q", i, shards, want)
		}
	}
}

// TestServer_ClusterSlots_rolesAgreeWithNodes lays out three nodes as a
// cluster of them is, each the primary of some partitions and a backup of
// others, and builds the slot map as redis-rb 4.8's cluster client does:
// each node's role from CLUSTER NODES, its slots from every range CLUSTER
// SLOTS lists it in, the nodes grouped by their list of ranges, and each
// slot given to the master of the last group holding it. Every slot must
// map to its primary. CLUSTER SLOTS used to list each range's backups as
// replicas; as every node is a master in CLUSTER NODES, the client took a
// backup for the primary of about half the slots on three nodes, and its
// first command for each of them was redirected.
func TestServer_ClusterSlots_rolesAgreeWithNodes(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true })
	a := Peer{Name: "node-a", Addr: ts.addr}
	b := Peer{Name: "node-b", Addr: "10.0.0.2:6379"}
	c := Peer{Name: "node-c", Addr: "10.0.0.3:6379"}
	ts.b.topo.Store(&Topology{Epoch: 3, Settled: true, Shards: []Shard{
		{Slots: [][2]uint16{{0, 999}}, Primary: a, Replicas: []Peer{b}},
		{Slots: [][2]uint16{{1000, 1999}}, Primary: b, Replicas: []Peer{a}},
		{Slots: [][2]uint16{{2000, 2999}}, Primary: c, Replicas: []Peer{a}},
		{Slots: [][2]uint16{{3000, 3999}}, Primary: a, Replicas: []Peer{c}},
		{Slots: [][2]uint16{{4000, 9999}}, Primary: b, Replicas: []Peer{c}},
		{Slots: [][2]uint16{{10000, 16383}}, Primary: c, Replicas: []Peer{b}},
	}})
	primary := func(slot int) string {
		for _, p := range []struct {
			last int
			addr string
		}{{999, a.Addr}, {1999, b.Addr}, {2999, c.Addr}, {3999, a.Addr}, {9999, b.Addr}, {16383, c.Addr}} {
			if slot <= p.last {
				return p.addr
			}
		}
		return ""
	}
	rdb := newGoRedis(t, ts.addr, 2)
	ctx := context.Background()
	ranges, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	nodes, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	role := map[string]string{} // address → master or slave
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		addr, _, _ := strings.Cut(f[1], "@")
		for _, flag := range strings.Split(f[2], ",") {
			if flag == "master" || flag == "slave" {
				role[addr] = flag
				break
			}
		}
	}
	// Each node's ranges, the nodes in the order CLUSTER SLOTS names them.
	var order []string
	held := map[string][]goredis.ClusterSlot{}
	for _, r := range ranges {
		for _, n := range r.Nodes {
			if _, ok := held[n.Addr]; !ok {
				order = append(order, n.Addr)
			}
			held[n.Addr] = append(held[n.Addr], r)
		}
	}
	// Nodes with the same ranges form a group; its master serves them.
	type group struct {
		ranges []goredis.ClusterSlot
		master string
	}
	var groups []*group
	byRanges := map[string]*group{}
	for _, addr := range order {
		key := fmt.Sprint(held[addr])
		g := byRanges[key]
		if g == nil {
			g = &group{ranges: held[addr]}
			byRanges[key] = g
			groups = append(groups, g)
		}
		if role[addr] != "slave" {
			g.master = addr
		}
	}
	var master [16384]string
	for _, g := range groups {
		for _, r := range g.ranges {
			for s := r.Start; s <= r.End; s++ {
				master[s] = g.master
			}
		}
	}
	wrong := 0
	for s := range master {
		if master[s] != primary(s) {
			if wrong == 0 {
				t.Errorf("slot %d: the client's master is %q; its primary is %s", s, master[s], primary(s))
			}
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of 16384 slots map to a node other than their primary", wrong)
	}
}
