#!/usr/bin/env bash
# bench-spin.sh measures what the RESP event loop's idle spin
# (--resp-idle-spin) costs and buys: for a node with the default spin and
# one with --resp-idle-spin 0, in turn, it prints
#
#   - for redis-benchmark -t get -c C -d 200 (C = 1, 4, 16, 50; -P 1):
#     requests/s, p50 and p99 latency, and the node's CPU and context switches
#     (all threads, voluntary + involuntary) per request;
#   - for one client that sends a GET, reads the reply and then waits GAP
#     µs (GAP = 1000, 100, 30): p50 and p99 round trip, and the node's CPU
#     per request, so that sparse traffic shows what spinning costs.
#
# Usage: scripts/bench-spin.sh [rounds]   (default 1; BENCH_REQUESTS sets -n)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-1}
requests=${BENCH_REQUESTS:-200000}
tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

command -v redis-benchmark >/dev/null || { echo "$0: redis-benchmark not found (Debian: apt-get install redis-tools)" >&2; exit 1; }
go build -o "$tmp/cloakroomd" ./cmd/cloakroomd

cat >"$tmp/paced.py" <<'EOF'
import socket, sys, time
port, gap, n = int(sys.argv[1]), float(sys.argv[2]) / 1e6, int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n"); s.recv(64)
get, lat = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []
for _ in range(n):
    t = time.perf_counter(); s.sendall(get); s.recv(64); lat.append(time.perf_counter() - t)
    end = time.perf_counter() + gap
    while time.perf_counter() < end:  # busy-wait: sleeping would add its own wake-up
        pass
lat.sort()
print("%.1f %.1f" % (lat[n // 2] * 1e6, lat[int(n * 0.99)] * 1e6))
EOF

# cpu prints the node's CPU time in clock ticks; switches its context
# switches over all threads.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
switches() { cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
tick=$(getconf CLK_TCK)
per_req() { awk -v d="$1" -v n="$2" -v t="$tick" 'BEGIN {printf "%.1f", d * 1e6 / t / n}'; }

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-5s %-12s %10s %9s %9s %12s %12s\n' spin load "req/s" "p50 µs" "p99 µs" "cpu µs/req" "switch/req"
for round in $(seq "$rounds"); do
	for spin in 20us 0; do
		port=$(free_port)
		"$tmp/cloakroomd" --name spin --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$port" \
			--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --resp-idle-spin "$spin" \
			--log-level warn >"$tmp/node.log" 2>&1 &
		pid=$!
		for _ in $(seq 200); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
			sleep 0.05
		done
		redis-benchmark -p "$port" -t set -c 1 -d 200 -n 1000 -q >/dev/null
		for c in 1 4 16 50; do
			n=$((c == 1 ? requests / 4 : requests))
			c0=$(cpu) s0=$(switches)
			read -r r p50 p99 < <(redis-benchmark -p "$port" -t get -c "$c" -d 200 -n "$n" --csv |
				awk -F, 'NR > 1 { gsub(/"/, ""); print $2, $5 * 1000, $7 * 1000 }')
			c1=$(cpu) s1=$(switches)
			printf '%-5s %-12s %10.0f %9.0f %9.0f %12s %12s\n' "$spin" "-c $c" "$r" "$p50" "$p99" \
				"$(per_req $((c1 - c0)) "$n")" "$(awk -v d=$((s1 - s0)) -v n="$n" 'BEGIN {printf "%.3f", d / n}')"
		done
		for gap in 1000 100 30; do
			n=5000
			c0=$(cpu) s0=$(switches)
			read -r p50 p99 < <(python3 "$tmp/paced.py" "$port" "$gap" "$n")
			c1=$(cpu) s1=$(switches)
			printf '%-5s %-12s %10s %9s %9s %12s %12s\n' "$spin" "gap ${gap}µs" - "$p50" "$p99" \
				"$(per_req $((c1 - c0)) "$n")" "$(awk -v d=$((s1 - s0)) -v n="$n" 'BEGIN {printf "%.3f", d / n}')"
		done
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		pid=
	done
done
