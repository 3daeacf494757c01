#!/usr/bin/env bash
# bench-churn.sh measures what one client opening connections in a loop
# costs everyone else. For 3 s the attacker connects, writes KB KiB
# (default 64) of pipelined "GET k", and closes without reading a reply,
# again and again; meanwhile a second client, connected before, sends a
# GET every 2 ms and times each round trip. When the attack stops, a fresh
# connection's PING is timed (new clients wait behind the connections the
# attacker left in the kernel's backlog). It prints, for a node built from
# the tree, redis-server and, with BENCH_ALT=PATH, another cloakroomd
# binary: the connections the attacker made, the other client's p50, p99
# and slowest GET, the fresh PING's wait and the server's peak RSS (VmHWM).
#
# Usage: scripts/bench-churn.sh [rounds]   (KB=N for the pipeline's size)
cd "$(dirname "$0")/.."
source scripts/lib.sh
need redis-server

rounds=${1:-1}
kb=${KB:-64}
tmp=$BENCH_TMP

cat >"$tmp/churn.py" <<'EOF'
import socket, sys, threading, time
port, kb = int(sys.argv[1]), int(sys.argv[2])
get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
chunk = get * (kb * 1024 // len(get))

lat, done = [], threading.Event()
def probe():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    while not done.is_set():
        t = time.perf_counter()
        s.sendall(get)
        f.readline()  # "$-1": the key does not exist
        lat.append(time.perf_counter() - t)
        time.sleep(0.002)

p = threading.Thread(target=probe)
p.start()
time.sleep(0.3)
conns, end = 0, time.time() + 3
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        continue
    try:
        s.settimeout(0.2)
        s.sendall(chunk)
    except OSError:
        pass
    s.close()
    conns += 1
t = time.perf_counter()
s = socket.create_connection(("127.0.0.1", port), timeout=60)
s.settimeout(60)
s.sendall(b"PING\r\n")
s.makefile("rb").readline()
fresh = time.perf_counter() - t
s.close()
time.sleep(0.3)
done.set()
p.join()
lat.sort()
n = len(lat)
print("%5d conns; other client: %4d GETs, p50 %6.2f ms, p99 %7.1f ms, slowest %7.1f ms; fresh PING %7.1f ms"
      % (conns, n, lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3, lat[-1] * 1e3, fresh * 1e3))
EOF

go build -o "$tmp/cloakroomd" ./cmd/cloakroomd
hwm() { awk '/VmHWM/ {printf "%d MB", $2 / 1024}' "/proc/$1/status"; }
# run name command...: start a server, attack it once, stop it.
run() {
	local name=$1 port
	shift
	port=$(free_port)
	"$@" "$port" >"$tmp/$name.log" 2>&1 &
	local pid=$!
	BENCH_PIDS+=("$pid")
	wait_port "$port"
	printf '%-12s %s; peak RSS %s\n' "$name" "$(python3 "$tmp/churn.py" "$port" "$kb")" "$(hwm "$pid")"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}
run_node() { # binary port
	exec "$1" --name churn --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$2" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn
}
run_redis() { exec redis-server --bind 127.0.0.1 --port "$1" --save '' --appendonly no --dir "$tmp"; }

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg); pipeline ${kb} KiB"
for ((r = 1; r <= rounds; r++)); do
	run cloakroomd run_node "$tmp/cloakroomd"
	[[ -n ${BENCH_ALT:-} ]] && run alt run_node "$BENCH_ALT"
	run redis-server run_redis
done
