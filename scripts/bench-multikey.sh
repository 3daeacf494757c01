#!/usr/bin/env bash
# bench-multikey.sh measures multi-key commands against redis-server, one
# node and a 3-node cluster (through its first node, which forwards the
# keys it does not own), in one run:
#
#   - MGET of HUGE keys (default 1,000,000: a 17 MB command) sent at once,
#     to redis-server and to a fresh node: the time to its reply and the
#     server's peak resident memory (VmHWM) afterwards;
#   - redis-benchmark -c 10 -n 5000 of MGET and of MSET of KEYS keys
#     (default 100): requests/s and p50.
#
# BENCH_BIN=PATH benchmarks that cloakroomd binary instead of one built
# from the tree (say, one built from another commit).
#
# Usage: scripts/bench-multikey.sh
cd "$(dirname "$0")/.."
source scripts/lib.sh
need redis-server redis-benchmark

huge=${HUGE:-1000000}
keys=${KEYS:-100}
tmp=$BENCH_TMP
bin=${BENCH_BIN:-}
if [[ -z $bin ]]; then
	build_bins
	bin=$tmp/bin/cloakroomd
fi

cat >"$tmp/huge.py" <<'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
cmd = [b"*%d\r\n$4\r\nMGET\r\n" % (n + 1)]
for i in range(n):
    k = b"key:%d" % i
    cmd.append(b"$%d\r\n%s\r\n" % (len(k), k))
cmd = b"".join(cmd)
s = socket.create_connection(("127.0.0.1", port))
t = time.perf_counter()
s.sendall(cmd)
got = bytearray()
while got.count(b"\r\n") < n + 1:  # "*n" and a "$-1" for each key
    d = s.recv(1 << 20)
    if not d:
        sys.exit("connection closed after %d bytes" % len(got))
    got += d
print("%.1f MB command, reply in %.2f s" % (len(cmd) / 1e6, time.perf_counter() - t), end="")
EOF

# node NAME RESP-PORT [ARGS...] starts a node whose HTTP port is in HTTP.
node() {
	HTTP=$(free_port)
	start_bg "$bin" --name "$1" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$2" \
		--http-addr "127.0.0.1:$HTTP" --log-level warn "${@:3}"
}
ready() {
	local i
	for i in $(seq 300); do
		if [[ $(curl -s "http://127.0.0.1:$1/readyz") == ready ]]; then return 0; fi
		sleep 0.1
	done
	echo "node with HTTP port $1 is not ready" >&2
	return 1
}
huge() { # name pid port
	printf '%-13s MGET of %d keys: %s; peak RSS %d MB\n' "$1" "$huge" "$(python3 "$tmp/huge.py" "$3" "$huge")" \
		$(($(awk '/^VmHWM:/ {print $2}' "/proc/$2/status") / 1024))
}

machine
rport=$(free_port)
start_bg redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$tmp"
rpid=$BENCH_PID
sport=$(free_port)
node solo "$sport" --gossip-addr "127.0.0.1:$(free_port)"
spid=$BENCH_PID
ready "$HTTP"
seed="127.0.0.1:$(free_port)"
cport=
for i in 1 2 3; do
	port=$(free_port)
	gossip=$seed
	if ((i > 1)); then gossip="127.0.0.1:$(free_port)"; fi
	node "multi-$i" "$port" --gossip-addr "$gossip" --join "$seed" --gossip-preset local
	https+=("$HTTP")
	cport=${cport:-$port}
done
for h in "${https[@]}"; do ready "$h"; done
wait_port "$rport"

huge redis-server "$rpid" "$rport"
huge cloakroomd "$spid" "$sport"

names=$(seq -f "key:%g" 1 "$keys")
mget="MGET $(echo $names)"
mset="MSET $(for k in $names; do printf '%s v-%s ' "$k" "$k"; done)"
for cmd in mget mset; do
	for target in redis-server:$rport node:$sport cluster:$cport; do
		out=$(redis-benchmark -p "${target#*:}" -c 10 -n 5000 -q ${!cmd} 2>&1 | tr '\r' '\n' | tail -1)
		printf '%-13s %s of %d keys: %s\n' "${target%:*}" "${cmd^^}" "$keys" "${out##*: }"
	done
done
