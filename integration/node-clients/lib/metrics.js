// Metrics from the /metrics of the cloakroomd nodes compat.sh started, for
// checks no Redis command can make. CLOAKROOM_METRICS lists the nodes' HTTP
// addresses (host:port, comma-separated); it is unset for a redis-server
// target and for a node without an HTTP listener.
import { setTimeout as sleep } from "node:timers/promises"

// metricsAddrs returns the HTTP addresses in CLOAKROOM_METRICS, or [].
export function metricsAddrs() {
  const v = process.env.CLOAKROOM_METRICS
  return v ? v.split(",") : []
}

// metricValues fetches every node's /metrics and returns the value of the
// unlabelled metric name on each; a node that does not answer, or lacks
// the metric, throws.
export async function metricValues(name) {
  const out = []
  for (const addr of metricsAddrs()) {
    const res = await fetch(`http://${addr}/metrics`)
    if (!res.ok) throw new Error(`GET http://${addr}/metrics: ${res.status}`)
    const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `))
    if (!line) throw new Error(`http://${addr}/metrics has no ${name}`)
    out.push(Number(line.slice(name.length + 1)))
  }
  return out
}

// counterSum sums the unlabelled metric name over the nodes.
export async function counterSum(name) {
  return (await metricValues(name)).reduce((a, b) => a + b, 0)
}

// waitReady polls the nodes until every one reports cloakroom_ready 1
// (serving, every member on the same table, nothing arriving), or throws
// after timeoutMs.
export async function waitReady(timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ready = await metricValues("cloakroom_ready")
    if (ready.every((v) => v === 1)) return
    if (Date.now() > deadline) throw new Error(`cloakroom_ready on ${metricsAddrs()}: ${ready}; want 1 on every node`)
    await sleep(50)
  }
}
