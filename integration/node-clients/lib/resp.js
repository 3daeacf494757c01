// A minimal RESP2 client for looking at keys the way an operator would with
// redis-cli. It depends on no Redis library, so a check never hides a bug in
// the client under test.
import net from "node:net"
import tls from "node:tls"

// serverURL returns the server every suite runs against, from REDIS_URL
// (rediss: for TLS).
export function serverURL() {
  const url = process.env.REDIS_URL
  if (!url) throw new Error("set REDIS_URL, e.g. redis://127.0.0.1:6379")
  return new URL(url)
}

// secure reports whether REDIS_URL asks for TLS (rediss:), for the clients
// that take TLS as an option of their own (cluster clients, for the nodes
// they discover).
export function secure() {
  return serverURL().protocol === "rediss:"
}

function encode(args) {
  let out = `*${args.length}\r\n`
  for (const a of args) {
    const b = Buffer.from(String(a))
    out += `$${b.length}\r\n${b}\r\n`
  }
  return out
}

// parse reads one reply from buf at off; it returns [value, next offset], or
// undefined while the reply is incomplete. Errors come back as Error values.
function parse(buf, off) {
  const end = buf.indexOf("\r\n", off)
  if (end < 0) return undefined
  const line = buf.toString("utf8", off + 1, end)
  const next = end + 2
  switch (String.fromCharCode(buf[off])) {
    case "+":
      return [line, next]
    case "-":
      return [new Error(line), next]
    case ":":
      return [Number(line), next]
    case "$": {
      const n = Number(line)
      if (n < 0) return [null, next]
      if (buf.length < next + n + 2) return undefined
      return [buf.toString("utf8", next, next + n), next + n + 2]
    }
    case "*": {
      const n = Number(line)
      if (n < 0) return [null, next]
      const items = []
      let at = next
      for (let i = 0; i < n; i++) {
        const r = parse(buf, at)
        if (!r) return undefined
        items.push(r[0])
        at = r[1]
      }
      return [items, at]
    }
    default:
      throw new Error(`unexpected reply type ${JSON.stringify(line)}`)
  }
}

// command sends one command on a fresh connection and resolves to its reply;
// an error reply rejects. Like redis-cli -c, it follows MOVED redirects, so
// it works against every node of a cluster.
export async function command(...args) {
  const url = serverURL()
  let host = url.hostname
  let port = Number(url.port || 6379)
  for (let hop = 0; ; hop++) {
    const reply = await roundTrip(host, port, args)
    const moved = reply instanceof Error && /^MOVED \d+ (\S+):(\d+)$/.exec(reply.message)
    if (moved && hop < 3) {
      ;[host, port] = [moved[1], Number(moved[2])]
      continue
    }
    if (reply instanceof Error) throw new Error(`${args[0]}: ${reply.message}`)
    return reply
  }
}

// roundTrip sends args to host:port and resolves to the reply (an Error
// value for an error reply).
function roundTrip(host, port, args) {
  return new Promise((resolve, reject) => {
    // rediss: TLS, trusting the CA in NODE_EXTRA_CA_CERTS as the clients do
    const tlsOn = secure()
    const sock = tlsOn ? tls.connect({ port, host }) : net.connect(port, host)
    const { username, password } = serverURL()
    const auth = password ? ["AUTH", ...(username ? [decodeURIComponent(username)] : []), decodeURIComponent(password)] : null
    let buf = Buffer.alloc(0)
    sock.setTimeout(5000, () => sock.destroy(new Error(`${args[0]}: no reply within 5s`)))
    sock.on("error", reject)
    sock.on(tlsOn ? "secureConnect" : "connect", () => sock.write((auth ? encode(auth) : "") + encode(args)))
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk])
      let r = parse(buf, 0)
      if (r && auth) {
        if (r[0] instanceof Error) {
          sock.end()
          return resolve(r[0])
        }
        r = parse(buf, r[1])
      }
      if (!r) return
      sock.end()
      resolve(r[0])
    })
  })
}
