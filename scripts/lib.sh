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

# attack_servers runs "python3 SCRIPT PORT ARGS..." once against each of: a
# node built from the tree, the cloakroomd binary at BENCH_ALT if set, and
# redis-server; each starts afresh, on free loopback ports, with its
# defaults (persistence off for redis-server). It prints one line per
# server: its name, the script's output, the CPU time the server used
# (user and system, from its start) and its peak RSS (VmHWM).
attack_servers() {
	local script=$1
	shift
	[[ -x $BENCH_TMP/cloakroomd ]] || go build -o "$BENCH_TMP/cloakroomd" ./cmd/cloakroomd
	attack_one cloakroomd "$script" "$@" -- attack_node "$BENCH_TMP/cloakroomd"
	if [[ -n ${BENCH_ALT:-} ]]; then
		attack_one alt "$script" "$@" -- attack_node "$BENCH_ALT"
	fi
	attack_one redis-server "$script" "$@" -- attack_redis
}

# attack_one NAME SCRIPT ARGS... -- SERVER-COMMAND...: see attack_servers.
# The server command gets the port as its last argument.
attack_one() {
	local name=$1 script=$2 port pid args=()
	shift 2
	while [[ $1 != -- ]]; do
		args+=("$1")
		shift
	done
	shift
	port=$(free_port)
	"$@" "$port" >"$BENCH_TMP/$name.log" 2>&1 &
	pid=$!
	BENCH_PIDS+=("$pid")
	wait_port "$port"
	printf '%-12s %s; CPU %s; peak RSS %s\n' "$name" "$(PYTHONPATH=scripts python3 "$script" "$port" "${args[@]}")" \
		"$(awk -v tick="$(getconf CLK_TCK)" '{printf "%d ms", ($14 + $15) * 1000 / tick}' "/proc/$pid/stat")" \
		"$(awk '/VmHWM/ {printf "%d MB", $2 / 1024}' "/proc/$pid/status")"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}
attack_node() { # binary port
	exec "$1" --name attacked --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$2" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level error
}
attack_redis() { exec redis-server --bind 127.0.0.1 --port "$1" --save '' --appendonly no --dir "$BENCH_TMP"; }
