import { RedisStore } from "connect-redis"
import { createClient } from "redis5"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "node-redis 5 (RESP2) + connect-redis 9",
  RedisStore,
  async connect(url) {
    const client = createClient({ url, socket: { reconnectStrategy: false } })
    client.on("error", (err) => console.error(`node-redis 5: ${err.message}`))
    await client.connect()
    return { client, close: () => client.close() }
  },
})
