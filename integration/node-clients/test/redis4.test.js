import { RedisStore } from "connect-redis8"
import { createClient } from "redis4"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "node-redis 4 (RESP2) + connect-redis 8",
  RedisStore,
  async connect(url) {
    const client = createClient({ url, socket: { reconnectStrategy: false } })
    client.on("error", (err) => console.error(`node-redis 4: ${err.message}`))
    await client.connect()
    return { client, close: () => client.quit() }
  },
})
