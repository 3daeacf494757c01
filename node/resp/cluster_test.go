package resp

import (
	"strings"
	"testing"
)

// TestServer_ClusterLayout_ascending gives node-a two shards (different
// replicas), each with ranges out of order, adjacent ones among them and
// one adjacent to the other shard's. As Redis: CLUSTER SLOTS lists every
// range by slot, CLUSTER NODES a node's ranges ascending with adjacent
// ones joined, and CLUSTER SHARDS each shard's ranges ascending.
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
	c.expect("*7\r\n"+
		slots(0, 99, a, c3)+
		slots(100, 199, a, b)+
		slots(200, 1390, b, c3)+
		slots(1391, 1450, a, c3)+
		slots(1451, 16142, b, c3)+
		slots(16143, 16202, a, b)+
		slots(16203, 16383, b, c3), "cluster", "slots")

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
