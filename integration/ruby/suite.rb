# The redis-rack suite: a Rack app behind Rack::Session::Redis (redis-rack
# over redis-store and redis-rb), driven with Rack::MockRequest through a
# session's life, checking the server directly over a RESP client of its
# own (so that what it reads back does not go through redis-rb).
#
#   REDIS_URL=redis://[:PASSWORD@]127.0.0.1:PORT ruby suite.rb
#
# With REDIS_CLUSTER=1 the store's redis-rb client is a cluster client
# (redis_server: { cluster: [REDIS_URL] }), which redis-store supports.
#
# Prints "ok - ..." or "not ok - ..." per check and a last line
# "# ruby: N passed, N failed, N skipped"; exits 1 if any failed.
require "digest"
require "net/http"
require "rack"
require "rack/mock"
require "redis-rack"
require "securerandom"
require "socket"
require "uri"

LIFETIME = 1800 # expire_after: the sessions' TTL in seconds
COOKIE = "sid"

# Resp is a small RESP2 client: call sends one command and returns its
# reply, an error reply as a RespError.
class Resp
  RespError = Struct.new(:message)

  def initialize(host, port, password)
    @password = password
    @sock = TCPSocket.new(host, port)
    return unless password

    r = call("AUTH", password)
    raise "AUTH: #{r.inspect}" unless r == "OK"
  end

  # call sends one command and returns its reply; it follows MOVED once,
  # for the cluster targets.
  def call(*args)
    r = roundtrip(args)
    if r.is_a?(RespError) && r.message.start_with?("MOVED ")
      host, _, port = r.message.split(" ")[2].rpartition(":")
      return Resp.new(host, port.to_i, @password).roundtrip(args)
    end
    r
  end

  protected

  def roundtrip(args)
    out = +"*#{args.size}\r\n"
    args.each { |a| a = a.to_s.b; out << "$#{a.bytesize}\r\n" << a << "\r\n" }
    @sock.write(out)
    read
  end

  private

  def read
    line = @sock.gets("\r\n") or raise "connection closed"
    line = line.chomp("\r\n")
    rest = line[1..]
    case line[0]
    when "+" then rest
    when "-" then RespError.new(rest)
    when ":" then rest.to_i
    when "$"
      return nil if rest.to_i.negative?

      data = @sock.read(rest.to_i + 2)
      data[0...-2]
    when "*"
      return nil if rest.to_i.negative?

      Array.new(rest.to_i) { read }
    else raise "unexpected reply #{line.inspect}"
    end
  end
end

url = URI.parse(ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379"))
PASSWORD = url.password && URI.decode_www_form_component(url.password)
NAMESPACE = "sess:ruby-rack:#{SecureRandom.hex(4)}"
REDIS_HOST = url.host
REDIS_PORT = url.port
REDIS = Resp.new(REDIS_HOST, REDIS_PORT, PASSWORD)
CLUSTER = !ENV.fetch("REDIS_CLUSTER", "").empty?
# server returns the redis_server option for the store, with password pass
# (and database db).
def server(pass = PASSWORD, db: 0)
  info = pass ? ":#{URI.encode_www_form_component(pass)}@" : ""
  return { cluster: ["redis://#{info}#{REDIS_HOST}:#{REDIS_PORT}"], namespace: NAMESPACE } if CLUSTER

  "redis://#{info}#{REDIS_HOST}:#{REDIS_PORT}/#{db}/#{NAMESPACE}"
end

# The app: login, whoami, visit, renew (new session id), logout (drop),
# destroy (session.destroy), setbin (a binary value).
APP = lambda do |env|
  req = Rack::Request.new(env)
  s = req.session
  opts = env["rack.session.options"]
  body = case req.path_info
         when "/login"
           s["user"] = req.params["user"]
           s["views"] = 1
           s.id.public_id
         when "/whoami"
           return [401, {}, ["anonymous"]] unless s["user"]

           "#{s["user"]} #{s["views"]}"
         when "/visit"
           return [401, {}, ["anonymous"]] unless s["user"]

           s["views"] += 1
           "#{s["user"]} #{s["views"]}"
         when "/renew" # a new id for the loaded session, as after a login
           return [401, {}, ["anonymous"]] unless s["user"]

           opts[:renew] = true
           "renewed"
         when "/logout"
           opts[:drop] = true
           "bye"
         when "/destroy"
           s.destroy
           "bye"
         when "/setbin"
           s["bin"] = req.body.read.b
           s.id.public_id
         when "/getbin"
           s["bin"].to_s
         else
           return [404, {}, ["not found"]]
         end
  [200, { "content-type" => "text/plain" }, [body]]
end

def stack(**opts)
  Rack::Session::Redis.new(APP, { redis_server: server, key: COOKIE, expire_after: LIFETIME }.merge(opts))
end

STACK = stack

Response = Struct.new(:status, :body, :cookie)

# visit sends one request with the session cookie (the public id), if any,
# and returns the status, body and the session id a Set-Cookie carried.
def visit(method, path, sid = nil, body: nil, app: STACK)
  env = sid ? { "HTTP_COOKIE" => "#{COOKIE}=#{sid}" } : {}
  env[:input] = body if body
  res = Rack::MockRequest.new(app).request(method, path, env)
  set = Array(res.headers["set-cookie"] || res.headers["Set-Cookie"]).join("\n")
  cookie = set[/^#{COOKIE}=([^;]*)/o, 1]
  Response.new(res.status, res.body, cookie)
end

def key(sid) = "#{NAMESPACE}:#{Rack::Session::SessionId.new(sid).private_id}"

def stored(sid)
  raw = REDIS.call("GET", key(sid))
  raw && Marshal.load(raw)
end

def want(ok, what)
  raise what unless ok
end

def want_ttl(sid, seconds)
  t = REDIS.call("PTTL", key(sid))
  want(t.is_a?(Integer) && t > (seconds - 10) * 1000 && t <= seconds * 1000, "PTTL #{t.inspect}; want about #{seconds}000")
end

def want_gone(sid, what)
  n = REDIS.call("EXISTS", key(sid))
  want(n == 0, "#{what}: EXISTS #{n.inspect}; want 0")
end

def login(user)
  r = visit("POST", "/login?user=#{user}")
  want(r.status == 200 && r.cookie == r.body, "login #{user}: #{r.to_h}")
  r.body
end

# metrics_addrs lists the HTTP addresses in CLOAKROOM_METRICS (cloakroomd
# targets with /metrics).
def metrics_addrs = ENV.fetch("CLOAKROOM_METRICS", "").split(",")

# metric reads the unlabelled metric name from http://addr/metrics.
def metric(addr, name)
  text = Net::HTTP.get(URI("http://#{addr}/metrics"))
  value = text[/^#{Regexp.escape(name)} (\S+)$/, 1]
  want(value, "http://#{addr}/metrics has no #{name}")
  value.to_f
end

RESULTS = Hash.new(0)

def check(name)
  yield
  puts "ok - #{name}"
  RESULTS[:passed] += 1
rescue StandardError => e
  puts "not ok - #{name}: #{e.class}: #{e.message}"
  RESULTS[:failed] += 1
end

alice = nil

check("create: login stores the session under the namespace, with expire_after as its TTL") do
  alice = login("alice")
  want(stored(alice) == { "user" => "alice", "views" => 1 }, "stored #{stored(alice).inspect}")
  want_ttl(alice, LIFETIME)
end

check("load: the cookie brings the session back") do
  r = visit("GET", "/whoami", alice)
  want([r.status, r.body] == [200, "alice 1"], r.to_h.inspect)
end

check("an unknown session id is anonymous and nothing is stored under it") do
  r = visit("GET", "/whoami", "unknown-session-id")
  want(r.status == 401, r.to_h.inspect)
  want_gone("unknown-session-id", "the unknown id")
end

check("renew the TTL: a request with expire_after writes the session back") do
  want(REDIS.call("PEXPIRE", key(alice), 5000) == 1, "PEXPIRE failed")
  want(visit("GET", "/whoami", alice).body == "alice 1", "whoami")
  want_ttl(alice, LIFETIME)
end

check("save: a changed session is written back") do
  want(visit("POST", "/visit", alice).body == "alice 2", "visit")
  want(stored(alice) == { "user" => "alice", "views" => 2 }, "stored #{stored(alice).inspect}")
end

check("renew: a new session id keeps the data, the old id is gone") do
  old = alice
  r = visit("POST", "/renew", old)
  want(r.status == 200 && r.cookie && r.cookie != old, "renew: #{r.to_h}")
  alice = r.cookie
  want_gone(old, "the old id")
  want(stored(alice) == { "user" => "alice", "views" => 2 }, "new id stored #{stored(alice).inspect}")
  want_ttl(alice, LIFETIME)
  want(visit("GET", "/whoami", alice).body == "alice 2", "the new id does not load")
  want(visit("GET", "/whoami", old).status == 401, "the old id still loads")
end

check("logout (drop): the session is deleted and its cookie is anonymous") do
  want(visit("POST", "/logout", alice).status == 200, "logout")
  want_gone(alice, "the dropped session")
  want(visit("GET", "/whoami", alice).status == 401, "the dropped session still loads")
end

check("session.destroy: the session is deleted and its cookie is anonymous") do
  bob = login("bob")
  want(visit("POST", "/destroy", bob).status == 200, "destroy")
  want_gone(bob, "the destroyed session")
  want(visit("GET", "/whoami", bob).status == 401, "the destroyed session still loads")
end

check("binary-safe: a value of every byte and NULs (Marshal) comes back whole") do
  bin = "\0NUL\0".b + (0..255).map(&:chr).join.b + "\r\n$5\r\n*1\r\n\0".b
  sid = visit("POST", "/setbin", body: bin).body
  want(stored(sid)&.fetch("bin") == bin, "stored #{stored(sid).inspect}")
  want(visit("GET", "/getbin", sid).body.b == bin, "loaded other bytes")
  visit("POST", "/logout", sid)
  want_gone(sid, "the binary session")
end

check("a session of 300 KB (commands over 64 KiB) is stored and loaded whole") do
  big = SecureRandom.random_bytes(300 << 10)
  sid = visit("POST", "/setbin", body: big).body
  want(visit("GET", "/getbin", sid).body.b == big, "loaded other bytes")
  visit("POST", "/logout", sid)
end

# redis-server takes values up to 512 MB; cloakroomd refuses one over
# --max-value-size (1 MiB by default) and closes the connection, and
# redis-rb raises: the request fails (the session keeps its previous data).
check("a session over the server's value limit") do
  probe = Resp.new(REDIS_HOST, REDIS_PORT, PASSWORD).call("SET", "#{NAMESPACE}:probe", "x" * (2 << 20))
  REDIS.call("DEL", "#{NAMESPACE}:probe")
  big = SecureRandom.random_bytes(2 << 20)
  sid = login("large")
  err = begin
    visit("POST", "/setbin", sid, body: big)
    nil
  rescue Redis::BaseError => e
    e
  end
  if probe.is_a?(Resp::RespError)
    want(err, "a 2 MiB session was saved")
    puts "# the server refuses 2 MiB (-#{probe.message}); redis-rb raises #{err.class}: #{err.message}"
    want(stored(sid) == { "user" => "large", "views" => 1 }, "the refused write changed the session: #{stored(sid).inspect}")
  else
    want(err.nil?, "a 2 MiB session: #{err.inspect}")
    want(visit("GET", "/getbin", sid).body.b == big, "the 2 MiB session did not load whole")
  end
  visit("POST", "/logout", sid)
end

check("a session stored under its public id (redis-rack before 2.1) is still found, and logout deletes both keys") do
  sid = SecureRandom.hex(16)
  legacy = "#{NAMESPACE}:#{sid}"
  want(REDIS.call("SET", legacy, Marshal.dump({ "user" => "legacy", "views" => 7 })) == "OK", "SET")
  want(visit("GET", "/whoami", sid).body == "legacy 7", "the legacy session does not load")
  want(stored(sid) == { "user" => "legacy", "views" => 7 }, "not written under the private id")
  visit("POST", "/logout", sid)
  want(REDIS.call("EXISTS", legacy) + REDIS.call("EXISTS", key(sid)) == 0, "logout left a key")
end

check("sessions of several users are kept apart") do
  ids = %w[carol dave erin frank grace heidi].to_h { |u| [u, login(u)] }
  ids.each { |u, sid| want(visit("POST", "/visit", sid).body == "#{u} 2", "#{u}'s visit") }
  ids.each_value do |sid|
    visit("POST", "/logout", sid)
    want_gone(sid, "a logged-out session")
  end
end

check("without expire_after a session is stored with no TTL") do
  app = stack(expire_after: nil)
  sid = visit("POST", "/login?user=ivan", app: app).body
  want(stored(sid) == { "user" => "ivan", "views" => 1 }, "stored #{stored(sid).inspect}")
  want(REDIS.call("PTTL", key(sid)) == -1, "PTTL #{REDIS.call("PTTL", key(sid)).inspect}; want -1")
  visit("POST", "/logout", sid, app: app)
  want_gone(sid, "the session")
end

# cloakroomd has database 0 only: redis-rb selects the URL's database on
# connecting, and raises when the server refuses it.
unless CLUSTER
  check("a database other than 0 in the URL (SELECT 1)") do
    select = Resp.new(REDIS_HOST, REDIS_PORT, PASSWORD).call("SELECT", "1")
    app = stack(redis_server: server(db: 1))
    err = begin
      sid = visit("POST", "/login?user=db1", app: app).body
      nil
    rescue Redis::BaseError => e
      e
    end
    if select == "OK"
      want(err.nil?, "login: #{err.inspect}")
      want(REDIS.call("EXISTS", key(sid)) == 0, "the session went to database 0")
      want(visit("GET", "/whoami", sid, app: app).body == "db1 1", "the session does not load")
      visit("POST", "/logout", sid, app: app)
    else
      want(select.is_a?(Resp::RespError) && select.message == "ERR DB index is out of range", "SELECT 1: #{select.inspect}")
      want(err.is_a?(Redis::CommandError) && err.message == "ERR DB index is out of range", "login: #{err.inspect}")
      puts "# redis-rb raises #{err.class}: #{err.message}"
    end
  end
end

# A cluster client should send each key to its slot's primary: none of the
# session commands may be redirected (MOVED, which redis-rb follows) or
# forwarded by a cloakroomd node.
if CLUSTER
  check("routes in one hop: a request's get and setex go to the key's primary") do
    nodes = {}
    REDIS.call("CLUSTER", "SLOTS").each do |range|
      range[2..].each { |n| nodes["#{n[0]}:#{n[1]}"] ||= Resp.new(n[0], n[1], PASSWORD) }
    end
    commands = lambda do
      nodes.sum do |addr, node|
        info = node.call("INFO", "stats")
        n = info.is_a?(String) && info[/^total_commands_processed:(\d+)/, 1]
        want(n, "INFO stats of #{addr}: #{info.inspect}")
        n.to_i
      end
    end
    forwarded = -> { metrics_addrs.sum { |addr| metric(addr, "cloakroom_forwarded_requests_total") } }
    # A new client, its slot map fresh from CLUSTER SLOTS (it learns a slot
    # it mapped wrongly from the MOVED), set up before counting, with its
    # connection to each node (each sends AUTH with a password): 20 unknown
    # ids are looked up (40 gets). Then 20 sessions, so 20 slots, each
    # logged in (a setex) and visited once (a get and a setex).
    app = stack
    20.times { |i| visit("GET", "/whoami", "warm-up-#{i}", app: app) }
    users = 20
    fwd = forwarded.call
    before = commands.call
    sids = Array.new(users) do |i|
      sid = visit("POST", "/login?user=hopper#{i}", app: app).body
      visit("POST", "/visit", sid, app: app)
      sid
    end
    # Each node's first INFO counts in the second (redis-server counts a
    # command once it ran, cloakroomd as it starts: the second's own).
    extra = commands.call - before - nodes.size - 3 * users
    want(extra.zero?, "#{users} sessions sent #{extra} commands more than 3 each over #{nodes.size} nodes: redirected")
    want(forwarded.call == fwd, "cloakroom_forwarded_requests_total went from #{fwd} to #{forwarded.call}")
    sids.each_with_index { |sid, i| want(visit("GET", "/whoami", sid, app: app).body == "hopper#{i} 2", "hopper#{i}'s session lost its visit") }
  end
end

if PASSWORD
  check("a wrong password is refused") do
    bad = Rack::Session::Redis.new(APP, redis_server: server("wrong"), key: COOKIE)
    err = begin
      visit("POST", "/login?user=mallory", app: bad)
      nil
    rescue Redis::BaseError => e
      e
    end
    want(err, "the request succeeded")
    puts "# with a wrong password: #{err.class}: #{err.message}"
  end
end

puts "# ruby: #{RESULTS[:passed]} passed, #{RESULTS[:failed]} failed, #{RESULTS[:skipped]} skipped"
exit(RESULTS[:failed].zero? ? 0 : 1)
