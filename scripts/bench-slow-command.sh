#!/usr/bin/env bash
# bench-slow-command.sh measures what one client sending a huge command
# slowly costs everyone else. It sends EXISTS with KEYS keys (default
# 1,000,000: about 13 MB) in 4 KB pieces, 1 ms apart, while a second client
# sends a GET every 2 ms and times each round trip. For a node built from
# the tree, redis-server and, with BENCH_ALT=PATH, another cloakroomd
# binary, it prints the time from the command's last byte to its reply,
# the second client's p50, p99 and slowest GET, and the server's CPU time
# and peak RSS (VmHWM).
#
# Usage: scripts/bench-slow-command.sh [rounds]   (KEYS=N to change the size)
cd "$(dirname "$0")/.."
source scripts/lib.sh
need redis-server

rounds=${1:-1}
keys=${KEYS:-1000000}

cat >"$BENCH_TMP/slow.py" <<'EOF2'
import socket, sys, time
import probe
port, keys = int(sys.argv[1]), int(sys.argv[2])

def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

p = probe.Probe(port)
time.sleep(0.5)
s = socket.create_connection(("127.0.0.1", port))
data = enc("EXISTS", *["k%d" % i for i in range(keys)])
for off in range(0, len(data), 4096):
    s.sendall(data[off:off + 4096])
    time.sleep(0.001)
t = time.perf_counter()
s.makefile("rb").readline()  # the reply: the command has run
ran = time.perf_counter() - t
time.sleep(0.5)
print("%d-byte command answered in %4d ms; %s" % (len(data), ran * 1e3, p.stop()))
EOF2

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg); EXISTS of $keys keys"
for ((r = 1; r <= rounds; r++)); do
	attack_servers "$BENCH_TMP/slow.py" "$keys"
done
