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
import socket, sys, time
import probe
port, kb = int(sys.argv[1]), int(sys.argv[2])
get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
chunk = get * (kb * 1024 // len(get))

p = probe.Probe(port)
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
print("%5d conns; %s; fresh PING %7.1f ms" % (conns, p.stop(), fresh * 1e3))
EOF

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg); pipeline ${kb} KiB"
for ((r = 1; r <= rounds; r++)); do
	attack_servers "$tmp/churn.py" "$kb"
done
