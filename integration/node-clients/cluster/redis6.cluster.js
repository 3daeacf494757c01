import { RedisStore } from "connect-redis"
import { createCluster } from "redis"
import { secure } from "../lib/resp.js"
import { runStoreSuite } from "../lib/suite.js"

runStoreSuite({
  name: "node-redis 6 createCluster (RESP3) + connect-redis 9",
  RedisStore,
  async connect(url) {
    const client = createCluster({
      rootNodes: [{ url }],
      RESP: 3,
      defaults: { socket: { reconnectStrategy: false, tls: secure() } },
    })
    client.on("error", (err) => console.error(`node-redis 6 cluster: ${err.message}`))
    await client.connect()
    return { client, close: () => client.close() }
  },
})
