import { RedisStore } from "connect-redis8"
import { Cluster } from "ioredis"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "ioredis 5 Cluster + connect-redis 8",
  RedisStore,
  crossSlot: "connect-redis sends one MGET/DEL for every session through ioredis Cluster, and Redis Cluster answers CROSSSLOT",
  async connect(url) {
    const { hostname, port } = new URL(url)
    const client = new Cluster([{ host: hostname, port: Number(port) }], {
      lazyConnect: true,
      clusterRetryStrategy: () => null,
      redisOptions: { maxRetriesPerRequest: 1 },
    })
    client.on("error", (err) => console.error(`ioredis 5 cluster: ${err.message}`))
    await client.connect()
    return { client, close: () => client.quit() }
  },
})
