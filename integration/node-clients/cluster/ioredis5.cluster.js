import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { describe, it } from "node:test"
import { RedisStore } from "connect-redis8"
import { Cluster } from "ioredis"
import { counterSum, metricsAddrs, waitReady } from "../lib/metrics.js"
import { secure, serverURL } from "../lib/resp.js"
import { runStoreSuite } from "../lib/suite.js"

// connect returns a connected ioredis Cluster seeded with url's node alone.
async function connect(url) {
  const { hostname, port } = new URL(url)
  const client = new Cluster([{ host: hostname, port: Number(port) }], {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
    redisOptions: { maxRetriesPerRequest: 1, ...(secure() ? { tls: {} } : {}) },
  })
  client.on("error", (err) => console.error(`ioredis 5 cluster: ${err.message}`))
  await client.connect()
  return client
}

runStoreSuite({
  name: "ioredis 5 Cluster + connect-redis 8",
  RedisStore,
  crossSlot: "connect-redis sends one MGET/DEL for every session through ioredis Cluster, and Redis Cluster answers CROSSSLOT",
  async connect(url) {
    const client = await connect(url)
    return { client, close: () => client.quit() }
  },
})

// Issue 5: "go-redis ClusterClient and ioredis Cluster route in one hop".
// Seeded with one node, ioredis sends each session command to its key's
// primary: no node answers MOVED or ASK (counted where ioredis handles a
// redirect, Cluster.handleError) and, against cloakroomd, no node forwards
// a request (cloakroom_forwarded_requests_total, summed over the nodes whose
// /metrics compat.sh names in CLOAKROOM_METRICS). The store's list and
// clear steps are left out: SCAN names no key, so it goes to any node, and a
// cloakroomd node answers it for the whole cluster by asking the others.
describe("ioredis 5 Cluster routes in one hop", { timeout: 60_000 }, () => {
  it("sends every session command to its key's primary", async (t) => {
    const client = await connect(serverURL().href)
    t.after(() => client.quit())
    const redirects = []
    const handleError = client.handleError
    assert.equal(typeof handleError, "function", "ioredis Cluster has no handleError: count its redirects another way")
    client.handleError = function (err, ...rest) {
      if (/^(MOVED|ASK) /.test(err.message)) redirects.push(err.message)
      return handleError.call(this, err, ...rest)
    }
    const metered = metricsAddrs().length > 0
    if (!metered) t.diagnostic("CLOAKROOM_METRICS is not set: forwarding is not counted")
    // Until every node has the same table a node forwards rather than
    // redirect (docs/redis-compat.md, "No redirect while nodes disagree").
    if (metered) await waitReady()
    const forwardedBefore = metered ? await counterSum("cloakroom_forwarded_requests_total") : 0

    const prefix = `onehop:${randomBytes(4).toString("hex")}:`
    const store = new RedisStore({ client, prefix })
    const call = (method, ...args) =>
      new Promise((resolve, reject) => store[method](...args, (err, v) => (err ? reject(err) : resolve(v))))
    const expires = new Date(Date.now() + 60_000).toISOString()
    const ids = Array.from({ length: 100 }, (_, i) => `s${i}`)
    for (const id of ids) {
      const sess = { cookie: { expires, originalMaxAge: 60_000 }, user: id }
      await call("set", id, sess) // SET … EX
      assert.equal((await call("get", id))?.user, id) // GET
      await call("touch", id, sess) // EXPIRE
      await call("destroy", id) // DEL
      const gone = await call("get", id)
      assert.ok(gone == null, `get after destroy: ${JSON.stringify(gone)}; want nothing`)
    }

    assert.deepEqual(redirects, [], `${redirects.length} of ${ids.length * 5} commands were redirected`)
    if (metered) {
      const forwarded = (await counterSum("cloakroom_forwarded_requests_total")) - forwardedBefore
      assert.equal(forwarded, 0, `nodes forwarded ${forwarded} of ${ids.length * 5} commands to their keys' primaries`)
    }

    // The count sees a redirect: with the probe key's slot pointed at
    // another node, ioredis is answered MOVED there and follows it.
    const others = client.nodes("master").map((r) => `${r.options.host}:${r.options.port}`)
    if (others.length < 2) return t.diagnostic("one primary: no redirect to provoke")
    const key = `${prefix}probe`
    assert.equal(await client.set(key, "v", "EX", 60), "OK")
    const slot = await client.cluster("KEYSLOT", key)
    const wrong = others.find((k) => k !== client.slots[slot]?.[0])
    client.slots[slot] = [wrong]
    assert.equal(await client.get(key), "v")
    assert.equal(redirects.length, 1, `GET sent to ${wrong}, not the slot's primary: ${redirects.length} redirects counted; want 1`)
    await client.del(key)
  })
})
