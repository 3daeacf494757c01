package node

import (
	"sync/atomic"

	"github.com/cloakroom/cloakroom/node/store"
	"github.com/cloakroom/cloakroom/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus metrics, in a registry of its own so
// that several nodes can live in one process.
type metrics struct {
	reg       *prometheus.Registry
	requests  [reqShards]reqCounts   // by shard, then op and code; summed at scrape time
	reqVec    *prometheus.CounterVec // ops and codes beyond reqCounts; collected by requestsCollector
	reqDesc   *prometheus.Desc       // reqVec's
	conns     prometheus.Gauge
	reserved  prometheus.Gauge
	badFrames prometheus.Counter

	replicaFailures prometheus.Counter
	replicated      prometheus.Counter
	forwarded       prometheus.Counter
	backupReads     prometheus.Counter
	repairs         prometheus.Counter
	refusedConns    prometheus.Counter
	authFailures    prometheus.Counter
	unauthConns     prometheus.Gauge
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reqVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloakroom_requests_total", Help: "Requests handled, by op and result code.",
	}, []string{"op", "code"})
	m.reqDesc = prometheus.NewDesc("cloakroom_requests_total", "Requests handled, by op and result code.", []string{"op", "code"}, nil)
	m.conns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cloakroom_connections", Help: "Open client connections.",
	})
	m.reserved = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cloakroom_member_reserve_connections", Help: "Open native connections taken past --max-conns from the cluster's members.",
	})
	m.badFrames = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_malformed_requests_total", Help: "Requests refused as malformed.",
	})
	m.replicaFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_replication_failures_total", Help: "Writes a backup could not be reached for (the partition was under-replicated).",
	})
	m.replicated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_replicated_entries_total", Help: "Entries this node sent to its backups as their primary, once per write however many backups.",
	})
	m.forwarded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_forwarded_requests_total", Help: "Requests this node relayed to their partition's primary (from clients that do not route by key); an atomic batch counts once.",
	})
	m.backupReads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_backup_reads_total", Help: "Forwarded reads their partition's backup answered because the primary did not (unreachable, silent, or on an older table).",
	})
	m.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_refused_connections_total", Help: "Native connections refused because the node was at --max-conns.",
	})
	m.authFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_native_auth_failures_total", Help: "Native hellos without this node's --native-password: refused, or let in under --native-password-optional.",
	})
	m.unauthConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cloakroom_native_connections_without_password", Help: "Open native connections let in without this node's --native-password, under --native-password-optional.",
	})
	m.repairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cloakroom_anti_entropy_repairs_total", Help: "Partitions found to differ from a backup and repaired.",
	})
	s := n.store
	m.reg.MustRegister(requestsCollector{m}, m.conns, m.reserved, m.badFrames, m.replicaFailures, m.replicated, m.forwarded, m.backupReads, m.repairs, m.refusedConns, m.authFailures, m.unauthConns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		storeCollector(s),
		stat("cloakroom_memory_max_bytes", "The store's memory limit: --max-memory, or without it the share of the container's or machine's memory the node chose (0: no limit).", prometheus.GaugeValue, s.MaxMemory),
		stat("cloakroom_table_version", "Version of the node's partition table.", prometheus.GaugeValue, func() int64 { return int64(n.view().table.Version) }),
		stat("cloakroom_members", "Cluster members in the node's table.", prometheus.GaugeValue, func() int64 { return int64(len(n.view().table.Members)) }),
		stat("cloakroom_silent_members", "Members of the node's table that have not answered its heartbeats for 1.5s (stopped, cut off or overloaded); reads do not wait for them.", prometheus.GaugeValue, func() int64 { return int64(n.silentMembers()) }),
		stat("cloakroom_partitions_syncing", "Partitions this node holds that are still arriving.", prometheus.GaugeValue, func() int64 { return int64(n.transfers.syncCnt.Load()) }),
		stat("cloakroom_transfer_entries_total", "Entries applied by partition transfers.", prometheus.CounterValue, func() int64 { return n.transfers.moved.Load() }),
		stat("cloakroom_serving", "1 while the node serves sessions (as /servingz: joined, on the majority side, not past its hand-over when shutting down), else 0.", prometheus.GaugeValue, func() int64 { return boolInt(n.Serving()) }),
		stat("cloakroom_ready", "1 while the node is ready (as /readyz: serving, every member on the same table, no partition arriving), else 0.", prometheus.GaugeValue, func() int64 { return boolInt(n.Ready()) }),
		stat("cloakroom_under_replicated_partitions", "Partitions with fewer holders than --replicas.", prometheus.GaugeValue, func() int64 { return int64(n.underReplicated()) }),
	)
	return m
}

// boolInt is 1 for ok, else 0: a check as a gauge.
func boolInt(ok bool, _ string) int64 {
	if ok {
		return 1
	}
	return 0
}

// storeCollector exports the store's Stats, read once a scrape: Stats
// locks every partition in turn.
func storeCollector(s *store.Store) prometheus.Collector {
	type metric struct {
		desc  *prometheus.Desc
		typ   prometheus.ValueType
		value func(store.Stats) int64
	}
	def := func(name, help string, typ prometheus.ValueType, value func(store.Stats) int64) metric {
		return metric{prometheus.NewDesc(name, help, nil, nil), typ, value}
	}
	ms := []metric{
		def("cloakroom_keys", "Live keys, including expired ones not yet collected.", prometheus.GaugeValue, func(st store.Stats) int64 { return st.Keys }),
		def("cloakroom_keys_with_ttl", "Of cloakroom_keys, those with a TTL.", prometheus.GaugeValue, func(st store.Stats) int64 { return st.KeysWithTTL }),
		def("cloakroom_tombstones", "Tombstones kept so that deletes stay final.", prometheus.GaugeValue, func(st store.Stats) int64 { return st.Tombstones }),
		def("cloakroom_memory_used_bytes", "Store memory account: arena plus index.", prometheus.GaugeValue, store.Stats.UsedMemory),
		def("cloakroom_evictions_total", "Entries evicted before they expired, to stay under the store's memory limit (cloakroom_memory_max_bytes).", prometheus.CounterValue, func(st store.Stats) int64 { return st.Evictions }),
		def("cloakroom_writes_refused_total", "Writes this node's store refused: at its memory limit, with nothing left to evict.", prometheus.CounterValue, func(st store.Stats) int64 { return st.Refusals }),
		def("cloakroom_expirations_total", "Entries removed because their TTL passed.", prometheus.CounterValue, func(st store.Stats) int64 { return st.Expirations }),
		def("cloakroom_compactions_total", "Partitions whose arena was compacted whole, to make room under the memory limit.", prometheus.CounterValue, func(st store.Stats) int64 { return st.Compactions }),
		def("cloakroom_chunks_cleaned_total", "Arena chunks released after writes moved their live entries away, taking back the room of overwritten and deleted sessions.", prometheus.CounterValue, func(st store.Stats) int64 { return st.ChunksCleaned }),
	}
	return collectorsFunc{
		describe: func(ch chan<- *prometheus.Desc) {
			for _, m := range ms {
				ch <- m.desc
			}
		},
		collect: func(ch chan<- prometheus.Metric) {
			st := s.Stats()
			for _, m := range ms {
				ch <- prometheus.MustNewConstMetric(m.desc, m.typ, float64(m.value(st)))
			}
		},
	}
}

// collectorsFunc is a Collector of metrics computed at scrape time.
type collectorsFunc struct {
	describe func(chan<- *prometheus.Desc)
	collect  func(chan<- prometheus.Metric)
}

func (c collectorsFunc) Describe(ch chan<- *prometheus.Desc) { c.describe(ch) }
func (c collectorsFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// stat exports f's value as the metric name.
func stat(name, help string, typ prometheus.ValueType, f func() int64) prometheus.Collector {
	desc := prometheus.NewDesc(name, help, nil, nil)
	return collectorsFunc{
		describe: func(ch chan<- *prometheus.Desc) { ch <- desc },
		collect:  func(ch chan<- prometheus.Metric) { ch <- prometheus.MustNewConstMetric(desc, typ, float64(f())) },
	}
}

// reqShards is how many copies of the request counters there are. Every
// request adds one to a counter; with one copy, event loops on different
// CPUs would pass that counter's cache line back and forth on every
// request. A request counts in the copy of its partition, whose lock it
// takes anyway.
const reqShards = 8

// reqCounts counts requests by op and code.
type reqCounts [32][32]atomic.Uint64

// observe counts one request. shard picks the copy of the counters: the
// request's partition, or any number for a request without one.
func (m *metrics) observe(shard int, op protocol.Op, code protocol.Code) {
	if uint(op) >= uint(len(m.requests[0])) || uint(code) >= uint(len(m.requests[0][0])) {
		m.reqVec.WithLabelValues(op.String(), code.String()).Inc()
		return
	}
	m.requests[uint(shard)%reqShards][op][code].Add(1)
}

// requestsCollector exports cloakroom_requests_total: the sum of the
// shards for each op and code seen, and reqVec's rare others.
type requestsCollector struct{ m *metrics }

func (c requestsCollector) Describe(ch chan<- *prometheus.Desc) { c.m.reqVec.Describe(ch) }

func (c requestsCollector) Collect(ch chan<- prometheus.Metric) {
	for op := range len(c.m.requests[0]) {
		for code := range len(c.m.requests[0][0]) {
			var sum uint64
			for sh := range c.m.requests {
				sum += c.m.requests[sh][op][code].Load()
			}
			if sum > 0 {
				ch <- prometheus.MustNewConstMetric(c.m.reqDesc, prometheus.CounterValue, float64(sum),
					protocol.Op(op).String(), protocol.Code(code).String())
			}
		}
	}
	c.m.reqVec.Collect(ch)
}
