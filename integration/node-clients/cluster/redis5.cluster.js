import { RedisStore } from "connect-redis"
import { createCluster } from "redis5"
import { secure } from "../lib/resp.js"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "node-redis 5 createCluster + connect-redis 9",
  RedisStore,
  crossSlot: "connect-redis sends one MGET/DEL for every session through node-redis 5 cluster, and Redis Cluster answers CROSSSLOT",
  async connect(url) {
    const client = createCluster({ rootNodes: [{ url }], defaults: { socket: { reconnectStrategy: false, tls: secure() } } })
    client.on("error", (err) => console.error(`node-redis 5 cluster: ${err.message}`))
    await client.connect()
    return { client, close: () => client.close() }
  },
})
