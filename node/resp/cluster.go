package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/cloakroom/cloakroom/ring"
)

// slotTable is what the server derives from one Topology: the shard that
// serves each slot, and the same as ranges.
type slotTable struct {
	topo  *Topology
	owner [ring.SlotCount]int16 // index into topo.Shards; -1 if unassigned
	runs  []slotRun             // ascending; adjacent ones differ in shard
}

// slotRun is a range of slots, first to last inclusive, that one shard
// serves.
type slotRun struct {
	first, last uint16
	shard       int16
}

// table returns the slot table for the backend's current topology as
// plain (tls false) or TLS clients see it, rebuilding it only when the
// topology changed.
func (s *Server) table(tls bool) *slotTable {
	topo := s.b.Topology(tls)
	cache := &s.topo[0]
	if tls {
		cache = &s.topo[1]
	}
	if t := cache.Load(); t != nil && t.topo == topo {
		return t
	}
	t := &slotTable{topo: topo}
	for i := range t.owner {
		t.owner[i] = -1
	}
	if topo != nil {
		for si, sh := range topo.Shards {
			for _, r := range sh.Slots {
				for slot := int(r[0]); slot <= int(r[1]) && slot < ring.SlotCount; slot++ {
					t.owner[slot] = int16(si)
				}
			}
		}
	}
	for slot, o := range t.owner {
		switch n := len(t.runs); {
		case o < 0:
		case n > 0 && t.runs[n-1].shard == o && int(t.runs[n-1].last)+1 == slot:
			t.runs[n-1].last = uint16(slot)
		default:
			t.runs = append(t.runs, slotRun{uint16(slot), uint16(slot), o})
		}
	}
	cache.Store(t)
	return t
}

// moved returns the MOVED redirect for cmd on key in cluster mode, or "".
func (c *conn) moved(cmd *command, key []byte) errReply {
	if !c.s.cfg.ClusterMode {
		return ""
	}
	return c.s.moved(key, c.readonly && cmd.flags&flagWrite == 0, c.tls != nil)
}

// moved returns a MOVED redirect when key's slot is served by another node
// and the topology is settled; a read on a READONLY connection (read) is
// not redirected from a node that replicates the slot. A TLS client (tls)
// is sent to the node's TLS address.
func (s *Server) moved(key []byte, read, tls bool) errReply {
	t := s.table(tls)
	if t.topo == nil || !t.topo.Settled {
		return ""
	}
	slot := ring.Slot(string(key))
	i := t.owner[slot]
	if i < 0 {
		return ""
	}
	sh := &t.topo.Shards[i]
	p := sh.Primary
	if p.Name == s.b.Name() || p.Addr == "" {
		return ""
	}
	if read && slices.ContainsFunc(sh.Replicas, func(r Peer) bool { return r.Name == s.b.Name() }) {
		return ""
	}
	return errReply("MOVED " + strconv.Itoa(int(slot)) + " " + p.Addr)
}

// nodeID is a Redis Cluster style 40-hex-digit ID for a node name.
func nodeID(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// errNoCluster is Redis's answer to cluster commands when cluster mode is off.
const errNoCluster = "ERR This instance has cluster support disabled"

// cmdReadOnly answers READONLY and READWRITE in cluster mode, and Redis's
// refusal otherwise. After READONLY the connection's reads of slots this
// node replicates are served here (the node answers them as it answers
// any client: from the primary, or from a backup if the primary does not
// answer) rather than redirected, as a Redis Cluster replica serves them.
func cmdReadOnly(_ context.Context, c *conn, args [][]byte) {
	if !c.s.cfg.ClusterMode {
		c.w.Error(errNoCluster)
		return
	}
	c.readonly = strings.EqualFold(string(args[0]), "readonly")
	c.w.OK()
}

// clusterArity is the arity of each CLUSTER subcommand the server knows,
// counting CLUSTER and the subcommand, as Redis checks it.
var clusterArity = map[string]int{"keyslot": 3, "slots": 2, "shards": 2, "nodes": 2, "info": 2, "myid": 2, "help": 2}

// cmdCluster answers CLUSTER KEYSLOT always, and SLOTS, SHARDS, NODES,
// INFO, MYID and HELP in cluster mode. As in Redis, an unknown subcommand
// or a wrong number of arguments is reported in either mode, before
// "cluster support disabled".
func cmdCluster(_ context.Context, c *conn, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	want, known := clusterArity[sub]
	switch {
	case !known:
		c.w.Error("ERR unknown subcommand '" + trunc(string(args[1]), 128) + "'. Try CLUSTER HELP.")
		return
	case len(args) != want:
		c.w.Error(string(errArity("cluster|" + sub)))
		return
	case sub == "keyslot": // Redis refuses it without cluster mode; harmless to answer
		c.w.Int(int64(ring.Slot(string(args[2]))))
		return
	case !c.s.cfg.ClusterMode:
		c.w.Error(errNoCluster)
		return
	}
	t := c.s.table(c.tls != nil)
	shards := t.shards()
	switch sub {
	case "slots": // by slot, as Redis; primaries only (primaryRuns)
		runs := t.primaryRuns()
		c.w.Array(len(runs))
		for _, r := range runs {
			p := shards[r.shard].Primary
			host, port := splitAddr(p.Addr)
			c.w.Array(3)
			c.w.Int(int64(r.first))
			c.w.Int(int64(r.last))
			c.w.Array(3)
			c.w.BulkString(host)
			c.w.Int(int64(port))
			c.w.BulkString(nodeID(p.Name))
		}
	case "shards":
		c.w.Array(len(shards))
		for i, sh := range shards {
			runs := t.runsOf(func(shard int16) bool { return shard == int16(i) })
			c.w.Map(2)
			c.w.BulkString("slots")
			c.w.Array(2 * len(runs))
			for _, r := range runs {
				c.w.Int(int64(r[0]))
				c.w.Int(int64(r[1]))
			}
			c.w.BulkString("nodes")
			c.w.Array(1 + len(sh.Replicas))
			for i, p := range append([]Peer{sh.Primary}, sh.Replicas...) {
				role := "master"
				if i > 0 {
					role = "replica"
				}
				host, port := splitAddr(p.Addr)
				c.w.Map(7)
				for _, kv := range [][2]string{{"id", nodeID(p.Name)}, {"ip", host}, {"endpoint", host}, {"hostname", p.Name}, {"role", role}, {"health", "online"}} {
					c.w.BulkString(kv[0])
					c.w.BulkString(kv[1])
				}
				c.w.BulkString("port")
				c.w.Int(int64(port))
			}
		}
	case "nodes":
		c.w.BulkString(c.s.clusterNodes(t))
	case "info":
		known := map[string]bool{}
		for _, sh := range shards {
			known[sh.Primary.Name] = true
			for _, r := range sh.Replicas {
				known[r.Name] = true
			}
		}
		assigned := 0
		for _, o := range t.owner {
			if o >= 0 {
				assigned++
			}
		}
		state := "ok"
		if assigned < ring.SlotCount {
			state = "fail"
		}
		epoch := "0"
		if t.topo != nil {
			epoch = strconv.FormatUint(t.topo.Epoch, 10)
		}
		c.w.BulkString("cluster_enabled:1\r\ncluster_state:" + state +
			"\r\ncluster_slots_assigned:" + strconv.Itoa(assigned) +
			"\r\ncluster_slots_ok:" + strconv.Itoa(assigned) +
			"\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:" + strconv.Itoa(len(known)) +
			"\r\ncluster_size:" + strconv.Itoa(len(shardsByPrimary(shards))) +
			"\r\ncluster_current_epoch:" + epoch + "\r\ncluster_my_epoch:" + epoch + "\r\n")
	case "myid":
		c.w.BulkString(nodeID(c.s.b.Name()))
	case "help":
		c.writeHelp("CLUSTER", clusterHelp)
	}
}

func shardsByPrimary(shards []Shard) map[string]bool {
	m := map[string]bool{}
	for _, sh := range shards {
		m[sh.Primary.Name] = true
	}
	return m
}

// shards returns the topology's shards, none if there is no topology.
func (t *slotTable) shards() []Shard {
	if t.topo == nil {
		return nil
	}
	return t.topo.Shards
}

// primaryRuns returns the slot ranges for CLUSTER SLOTS: ascending, each
// with a shard whose primary serves it, adjacent ones of one primary joined
// as Redis joins them. It names no replicas. A Redis Cluster node is a
// primary or a replica of one primary, and clients rely on that: redis-rb
// 4.8 takes each node's role from CLUSTER NODES (every node that leads a
// partition is a master there) and its slots from every range CLUSTER SLOTS
// lists it in, so a node listed as another's replica was taken for the
// primary of those slots too (about half of them, on three nodes), and the
// client's first command for each was redirected. A node here is a backup of
// partitions other nodes lead, which Redis cannot express.
func (t *slotTable) primaryRuns() []slotRun {
	shards := t.shards()
	var out []slotRun
	for _, r := range t.runs {
		n := len(out)
		if n > 0 && int(out[n-1].last)+1 == int(r.first) && shards[out[n-1].shard].Primary.Name == shards[r.shard].Primary.Name {
			out[n-1].last = r.last
			continue
		}
		out = append(out, r)
	}
	return out
}

// runsOf returns the ranges of the slots served by the shards for which
// in is true, ascending, with adjacent ranges joined.
func (t *slotTable) runsOf(in func(shard int16) bool) [][2]uint16 {
	var out [][2]uint16
	for _, r := range t.runs {
		if !in(r.shard) {
			continue
		}
		if n := len(out); n > 0 && int(out[n-1][1])+1 == int(r.first) {
			out[n-1][1] = r.last
			continue
		}
		out = append(out, [2]uint16{r.first, r.last})
	}
	return out
}

// clusterNodes renders CLUSTER NODES: one line per node with the slot
// ranges it serves as primary, ascending, as Redis lists them.
func (s *Server) clusterNodes(t *slotTable) string {
	shards := t.shards()
	type info struct {
		addr    string
		primary string // for replicas: the primary's name
		slots   []string
	}
	nodes := map[string]*info{}
	var order []string
	get := func(p Peer) *info {
		if n, ok := nodes[p.Name]; ok {
			return n
		}
		n := &info{addr: p.Addr}
		nodes[p.Name] = n
		order = append(order, p.Name)
		return n
	}
	for _, sh := range shards {
		n := get(sh.Primary)
		if n.slots == nil { // once per node, however many shards it leads
			n.slots = []string{}
			for _, r := range t.runsOf(func(i int16) bool { return shards[i].Primary.Name == sh.Primary.Name }) {
				if r[0] == r[1] {
					n.slots = append(n.slots, strconv.Itoa(int(r[0])))
				} else {
					n.slots = append(n.slots, strconv.Itoa(int(r[0]))+"-"+strconv.Itoa(int(r[1])))
				}
			}
		}
		for _, r := range sh.Replicas {
			if rn := get(r); rn.primary == "" && len(rn.slots) == 0 {
				rn.primary = sh.Primary.Name
			}
		}
	}
	var sb strings.Builder
	for _, name := range order {
		n := nodes[name]
		flags := "master"
		master := "-"
		if n.primary != "" && len(n.slots) == 0 {
			flags, master = "slave", nodeID(n.primary)
		}
		if name == s.b.Name() {
			flags = "myself," + flags
		}
		host, port := splitAddr(n.addr)
		sb.WriteString(nodeID(name) + " " + host + ":" + strconv.Itoa(port) + "@0," + name + " " + flags + " " + master + " 0 0 1 connected")
		for _, sl := range n.slots {
			sb.WriteString(" " + sl)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
