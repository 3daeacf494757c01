// express-session + connect-redis apps keep logging users in, renewing and
// logging them out through one node of a cluster while another node is
// killed -9 (compat.sh's cloakroomd-3-crash target passes its pid in
// CLOAKROOM_CRASH_PID). Until the cluster drops the lost node (seconds),
// writes on its keys wait in the node the apps talk to; no request may
// fail, no user may be logged out early, and every logout must be final.
// The clients run with their defaults (no command timeout), as apps do.
import assert from "node:assert/strict"
import { once } from "node:events"
import { setTimeout as sleep } from "node:timers/promises"
import { after, before, describe, it } from "node:test"
import { RedisStore } from "connect-redis"
import { RedisStore as RedisStore8 } from "connect-redis8"
import Redis from "ioredis"
import { createClient } from "redis"
import { makeApp } from "../lib/suite.js"
import { serverURL } from "../lib/resp.js"

const victim = Number(process.env.CLOAKROOM_CRASH_PID)
const USERS = 4 // per app, each running flows one after another
const AFTER_KILL_MS = 12_000 // a crash is noticed in about 5 s

const clients = [
  {
    name: "node-redis 6 + connect-redis 9",
    RedisStore,
    async connect(url) {
      const client = createClient({ url })
      client.on("error", (err) => console.error(`node-redis 6: ${err.message}`))
      await client.connect()
      return { client, close: () => client.close() }
    },
  },
  {
    name: "ioredis 5 + connect-redis 8",
    RedisStore: RedisStore8,
    async connect(url) {
      const client = new Redis(url)
      client.on("error", (err) => console.error(`ioredis 5: ${err.message}`))
      return { client, close: () => client.quit() }
    },
  },
]

describe("a node killed while users log in and out", { skip: !victim && "set CLOAKROOM_CRASH_PID" }, () => {
  const apps = []
  before(async () => {
    for (const c of clients) {
      const conn = await c.connect(serverURL().href)
      const store = new c.RedisStore({ client: conn.client, prefix: `crash:${apps.length}:` })
      const server = makeApp(store).listen(0, "127.0.0.1")
      await once(server, "listening")
      apps.push({ name: c.name, conn, server, base: `http://127.0.0.1:${server.address().port}` })
    }
  })
  after(async () => {
    for (const a of apps) {
      a.server.closeAllConnections()
      a.server.close()
      await a.conn.close()
    }
  })

  it("no request fails, no session is lost or outlives its logout", { timeout: 90_000 }, async () => {
    const problems = []
    let flows = 0
    let slowest = 0
    let stop = false
    // visit sends one request; a dropped connection answers status 0 and
    // the error. (When a session fails to save or touch as the reply
    // ends, express-session sends the reply and express then destroys the
    // socket: the next request on it, perhaps another user's, fails so.)
    async function visit(app, method, path, cookie) {
      const start = Date.now()
      try {
        const res = await fetch(app.base + path, { method, headers: cookie ? { cookie } : {} })
        const set = res.headers.getSetCookie().find((c) => c.startsWith("sid="))
        return { status: res.status, body: await res.text(), cookie: set?.split(";")[0] }
      } catch (err) {
        return { status: 0, body: `${err.message}: ${err.cause?.message ?? ""}` }
      } finally {
        slowest = Math.max(slowest, Date.now() - start)
      }
    }
    // step sends one request; it records a problem and returns undefined
    // unless the answer is status and body.
    async function step(app, user, method, path, cookie, status, body) {
      const r = await visit(app, method, path, cookie)
      if (r.status !== status || (body !== undefined && r.body !== body)) {
        problems.push(`${app.name}: ${user}: ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}; want ${status} ${JSON.stringify(body ?? "")}`)
        return undefined
      }
      return r
    }
    async function flow(app, user) {
      const login = await step(app, user, "POST", `/login?user=${user}`, undefined, 200)
      if (!login?.cookie) return
      if (!(await step(app, user, "GET", "/whoami", login.cookie, 200, `${user} 1`))) return
      if (!(await step(app, user, "POST", "/visit", login.cookie, 200, `${user} 2`))) return
      const renewed = await step(app, user, "POST", "/regenerate", login.cookie, 200)
      if (!renewed?.cookie) return
      if (!(await step(app, user, "GET", "/whoami", renewed.cookie, 200, `${user} 2`))) return
      if (!(await step(app, user, "GET", "/whoami", login.cookie, 401, "anonymous"))) return
      if (!(await step(app, user, "POST", "/logout", renewed.cookie, 200, "bye"))) return
      if (!(await step(app, user, "GET", "/whoami", renewed.cookie, 401, "anonymous"))) return
      flows++
    }
    const runners = []
    for (const [i, app] of apps.entries()) {
      for (let u = 0; u < USERS; u++) {
        runners.push(
          (async () => {
            for (let n = 0; !stop; n++) await flow(app, `u${i}-${u}-${n}`)
          })(),
        )
      }
    }
    let before
    try {
      while (flows < 40 && problems.length === 0) await sleep(20)
      before = flows
      process.kill(victim, "SIGKILL")
      await sleep(AFTER_KILL_MS)
    } finally {
      stop = true // else the runners outlive the test, failing on closed apps
      await Promise.all(runners)
    }
    console.log(`${flows} flows of eight requests, ${flows - before} of them after the kill; slowest request ${slowest} ms`)
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} requests answered wrong`)
    assert.ok(flows - before >= 20, `only ${flows - before} flows done after the kill`)
  })
})
