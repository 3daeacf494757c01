#!/usr/bin/env bash
# bench-bigreply.sh measures what large replies cost everyone else. One
# client stores 63 values of 1 MiB and then sends MGET of all 63 (a 63 MiB
# reply) ROUNDS times (default 10), reading each reply before the next;
# meanwhile a second client sends a GET every 2 ms. It prints, for a node
# built from the tree, redis-server and, with BENCH_ALT=PATH, another
# cloakroomd binary: how long the MGETs took, the other client's p50, p99
# and slowest GET, and the server's peak RSS (VmHWM).
#
# Usage: scripts/bench-bigreply.sh [runs]   (ROUNDS= MGETs a run)
cd "$(dirname "$0")/.."
source scripts/lib.sh
need redis-server

runs=${1:-1}

cat >"$BENCH_TMP/bigreply.py" <<'EOF'
import socket, sys, time
import probe
port, rounds = int(sys.argv[1]), int(sys.argv[2])

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
value = b"v" * (1 << 20)
for i in range(63):
    s.sendall(enc("SET", "big%d" % i, value))
    f.readline()
p = probe.Probe(port)
time.sleep(0.3)
mget = enc("MGET", *["big%d" % i for i in range(63)])
t = time.perf_counter()
for _ in range(rounds):
    s.sendall(mget)
    f.readline()  # "*63"
    for _ in range(63):
        f.readline()
        f.read(len(value) + 2)
took = time.perf_counter() - t
time.sleep(0.3)
print("%d MGETs of 63 MiB in %.2f s; %s" % (rounds, took, p.stop()))
EOF

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; r++)); do
	attack_servers "$BENCH_TMP/bigreply.py" "${ROUNDS:-10}"
done
