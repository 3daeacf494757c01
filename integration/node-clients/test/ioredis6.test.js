import { RedisStore } from "connect-redis8"
import Redis from "ioredis6"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "ioredis 6 + connect-redis 8",
  RedisStore,
  async connect(url) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
    client.on("error", (err) => console.error(`ioredis 6: ${err.message}`))
    await client.connect()
    return { client, close: () => client.quit() }
  },
})
