# Shared helpers for the benchmark scripts; source it, do not run it.
#
# Every process started with start_bg is killed when the sourcing script
# exits, however it exits.

set -euo pipefail

BENCH_PIDS=()
BENCH_TMP=$(mktemp -d)

bench_cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BENCH_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# need exits, saying what to install, unless every command named is found.
need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || {
			echo "$0: $c not found (Debian: apt-get install redis-server redis-tools)" >&2
			exit 1
		}
	done
}

# free_port prints a loopback TCP port that was free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port waits up to 10s for 127.0.0.1:$1 to accept connections.
wait_port() {
	local i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "port $1 did not open" >&2
	return 1
}

# start_bg runs its arguments in the background, logging to $BENCH_TMP, and
# records the pid in BENCH_PID (and for cleanup).
start_bg() {
	local log="$BENCH_TMP/$(basename "$1").$RANDOM.log"
	"$@" >"$log" 2>&1 &
	BENCH_PID=$!
	BENCH_PIDS+=("$BENCH_PID")
}

# rss_kib prints the resident set size of pid $1 in KiB (VmRSS).
rss_kib() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# build_bins builds cloakroomd and cloakctl from the repository into
# $BENCH_TMP/bin.
build_bins() {
	mkdir -p "$BENCH_TMP/bin"
	go build -o "$BENCH_TMP/bin/" ./cmd/cloakroomd ./cmd/cloakctl
}

# machine prints what the figures were measured on.
machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
	echo "go:      $(go env GOVERSION); redis: $(redis-server --version | awk '{print $3}')"
}
