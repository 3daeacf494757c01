#!/usr/bin/env bash
# bench-sched.sh shows how the CPUs are shared while redis-benchmark drives
# a server with clients that send one command at a time:
#
#   redis-benchmark -t get -c 50 -d 200 -P 1
#
# against redis-server, cloakroomd (defaults) and cloakroomd with
# --resp-idle-spin 0, in turn. For a 3-second window in the middle of each
# run it reads every thread's /proc/.../schedstat and prints, in ms of that
# window: the server's CPU (all threads, and its busiest thread), the time
# its threads waited on a run queue, the client's CPU and the client's
# run-queue wait; then the run's requests/s and p99. A client that waits on
# a run queue is one whose replies have arrived but that is not running:
# that wait is in its latency.
#
# With BENCH_ALT=PATH the third row is that cloakroomd binary (defaults)
# instead of the tree's with --resp-idle-spin 0.
#
# Usage: scripts/bench-sched.sh [rounds]   (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=${1:-1}
need redis-server redis-benchmark
build_bins

# sched prints "cpu wait" in ns summed over the threads of pid $1 (all of
# them, or only thread $2). A thread that exits between two readings takes
# its figures with it, so the process's CPU comes from cpu_ns instead.
sched() {
	local files=("/proc/$1/task/"*/schedstat)
	if [[ -n ${2:-} ]]; then files=("/proc/$1/task/$2/schedstat"); fi
	cat "${files[@]}" 2>/dev/null | awk '{c += $1; w += $2} END {printf "%.0f %.0f\n", c, w}'
}

# cpu_ns prints the CPU time of pid $1, every thread it ever had, in ns.
cpu_ns() {
	awk -v t="$(getconf CLK_TCK)" '{printf "%.0f\n", ($14 + $15) * 1e9 / t}' "/proc/$1/stat"
}

# busiest prints the tid of pid $1's thread with the most CPU so far.
busiest() {
	local t best=0 tid=
	for t in "/proc/$1/task/"*; do
		local c
		c=$(awk '{print $1}' "$t/schedstat" 2>/dev/null) || continue
		if ((c > best)); then best=$c tid=$(basename "$t"); fi
	done
	echo "$tid"
}

machine
echo
printf '%-22s %9s %9s %9s %9s %9s %9s %8s\n' server "cpu ms" "top ms" "wait ms" "bench ms" "b.wait" "req/s" "p99 ms"
for round in $(seq "$rounds"); do
	third=cloakroomd-spin0
	if [[ -n ${BENCH_ALT:-} ]]; then third=cloakroomd-alt; fi
	for target in redis-server cloakroomd "$third"; do
		port=$(free_port)
		case $target in
		redis-server)
			start_bg redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$BENCH_TMP" ;;
		cloakroomd*)
			flags=() bin=$BENCH_TMP/bin/cloakroomd
			if [[ $target == *spin0 ]]; then flags=(--resp-idle-spin 0); fi
			if [[ $target == *alt ]]; then bin=$BENCH_ALT; fi
			start_bg "$bin" --name sched --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$port" \
				--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn "${flags[@]}" ;;
		esac
		server=$BENCH_PID
		wait_port "$port"
		redis-benchmark -p "$port" -t set -c 1 -d 200 -n 1000 -q >/dev/null
		# 800,000 GETs outlast the window at this machine's 50-60k a second.
		redis-benchmark -p "$port" -t get -c 50 -d 200 -n 800000 -P 1 --csv >"$BENCH_TMP/bench.csv" 2>/dev/null &
		bench=$!
		sleep 1
		top=$(busiest "$server")
		sc0=$(cpu_ns "$server")
		read -r _ sw0 < <(sched "$server")
		read -r tc0 _ < <(sched "$server" "$top")
		read -r bc0 bw0 < <(sched "$bench")
		sleep 3
		sc1=$(cpu_ns "$server")
		read -r _ sw1 < <(sched "$server")
		read -r tc1 _ < <(sched "$server" "$top")
		read -r bc1 bw1 < <(sched "$bench")
		wait "$bench"
		read -r rps p99 < <(awk -F, 'NR > 1 { gsub(/"/, ""); print $2, $7 }' "$BENCH_TMP/bench.csv")
		kill "$server"
		wait "$server" 2>/dev/null || true
		ms() { awk -v d="$1" 'BEGIN {printf "%.0f", d / 1e6}'; }
		printf '%-22s %9s %9s %9s %9s %9s %9.0f %8s\n' "$target" "$(ms $((sc1 - sc0)))" "$(ms $((tc1 - tc0)))" \
			"$(ms $((sw1 - sw0)))" "$(ms $((bc1 - bc0)))" "$(ms $((bw1 - bw0)))" "$rps" "$p99"
	done
done
