#!/usr/bin/env bash
# bench-slow-command.sh measures what one client sending a huge command
# slowly costs everyone else. Against a node built from the tree (and
# redis-server, for reference) it sends EXISTS with KEYS keys (default
# 1,000,000: about 13 MB) in 4 KB pieces, 1 ms apart, while a second client
# sends a GET every 2 ms and times each round trip. It prints the server's
# CPU time for the run and the second client's p50, p99 and slowest GET.
#
# Usage: scripts/bench-slow-command.sh   (KEYS=N to change the size)
cd "$(dirname "$0")/.."
source scripts/lib.sh

keys=${KEYS:-1000000}
tmp=$BENCH_TMP

cat >"$tmp/slow.py" <<'EOF'
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
s.makefile("rb").readline()  # the reply: the command has run
time.sleep(0.5)
print("%d-byte command; %s" % (len(data), p.stop()))
EOF

go build -o "$tmp/cloakroomd" ./cmd/cloakroomd
tick=$(getconf CLK_TCK)
run() { # name pid port
	local c0 c1
	c0=$(awk '{print $14 + $15}' "/proc/$2/stat")
	out=$(PYTHONPATH=scripts python3 "$tmp/slow.py" "$3" "$keys")
	c1=$(awk '{print $14 + $15}' "/proc/$2/stat")
	printf '%-12s CPU %5d ms; %s\n' "$1" $(((c1 - c0) * 1000 / tick)) "$out"
}

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
cport=$(free_port)
"$tmp/cloakroomd" --name slow --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$cport" \
	--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn >"$tmp/cloakroomd.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$cport"
run cloakroomd "${BENCH_PIDS[-1]}" "$cport"
if command -v redis-server >/dev/null; then
	rport=$(free_port)
	redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
	BENCH_PIDS+=($!)
	wait_port "$rport"
	run redis-server "${BENCH_PIDS[-1]}" "$rport"
fi
