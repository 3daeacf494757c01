import { RedisStore } from "connect-redis8"
import Redis from "ioredis"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "ioredis 5 + connect-redis 8",
  RedisStore,
  async connect(url) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
    client.on("error", (err) => console.error(`ioredis 5: ${err.message}`))
    await client.connect()
    return { client, close: () => client.quit() }
  },
})
