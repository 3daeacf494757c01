#!/usr/bin/env bash
# bench-halfsent.sh measures what clients that send most of a large command
# and stall cost the server's memory and everyone else. N connections
# (default 20) each send MB MiB (default 30) of a 64-value MSET of 1 MiB
# values, all at once, and then send nothing more; meanwhile a second
# client, connected before, sends a GET every 2 ms and times each round
# trip. Two seconds after the sending ends it prints, for a node built
# from the tree, redis-server and, with BENCH_ALT=PATH, another cloakroomd
# binary: how many of the N the server closed, the other client's p50,
# p99 and slowest GET, and the server's peak RSS (VmHWM).
#
# Usage: scripts/bench-halfsent.sh [rounds]   (N=, MB= to change the attack)
cd "$(dirname "$0")/.."
source scripts/lib.sh
need redis-server

rounds=${1:-1}
n=${N:-20}
mb=${MB:-30}

cat >"$BENCH_TMP/halfsent.py" <<'EOF'
import socket, sys, threading, time
import probe
port, n, mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
value = b"v" * (1 << 20)

conns = []
def attack():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    conns.append(s)
    try:
        s.sendall(b"*129\r\n$4\r\nMSET\r\n")
        for j in range(mb):
            s.sendall(b"$6\r\nk%05d\r\n$%d\r\n" % (j, len(value)) + value + b"\r\n")
    except OSError:
        pass  # closed by the server

p = probe.Probe(port)
time.sleep(0.3)
attackers = [threading.Thread(target=attack) for _ in range(n)]
for a in attackers:
    a.start()
for a in attackers:
    a.join()
time.sleep(2)
closed = 0
for s in conns:
    s.settimeout(0.05)
    try:
        closed += s.recv(1) == b""
    except socket.timeout:
        pass  # still open
    except OSError:
        closed += 1
    s.close()
print("%2d of %d closed; %s" % (closed, n, p.stop()))
EOF

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg); $n connections x $mb MiB"
for ((r = 1; r <= rounds; r++)); do
	attack_servers "$BENCH_TMP/halfsent.py" "$n" "$mb"
done
