import { RedisStore } from "connect-redis"
import { createClient } from "redis"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "node-redis 6 (RESP3) + connect-redis 9",
  RedisStore,
  async connect(url) {
    const client = createClient({ url, RESP: 3, socket: { reconnectStrategy: false } })
    client.on("error", (err) => console.error(`node-redis 6: ${err.message}`))
    await client.connect()
    return { client, close: () => client.close() }
  },
})
