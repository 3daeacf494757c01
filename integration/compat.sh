#!/usr/bin/env bash
# compat.sh runs the Node.js session-store suites (integration/node-clients)
# against a reference redis-server and then against one cloakroomd node, both
# on free loopback ports, and stops everything it started on exit.
#
# A failure against redis-server means a wrong test; a failure against
# cloakroomd is a compatibility bug. Either makes the script exit non-zero.
#
# Environment:
#   COMPAT_MONITOR=FILE  also record `redis-cli MONITOR` of the redis-server
#                        run into FILE (the commands each library sends)
#   COMPAT_ONLY=redis-server|cloakroomd  run against one server only
#   CLOAKROOMD=PATH      use this cloakroomd binary instead of building one
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
clients="$root/integration/node-clients"
work=$(mktemp -d)
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'compat: %s\n' "$*" >&2; }

# free_port prints a loopback port the kernel just handed out and released.
free_port() {
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_port PORT PID SECONDS: wait until PORT accepts, PID dies or time runs out.
wait_port() {
	local port=$1 pid=$2 tries=$(($3 * 10))
	while ((tries-- > 0)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	log "installing redis-server and redis-tools"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi
command -v node >/dev/null || { log "node not found: the suites need Node.js 20 or later"; exit 2; }

start=$SECONDS
log "installing the Node.js clients (npm ci)"
(cd "$clients" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

passed=0
failed=0
failed_on=()

# run_suites NAME PORT: run every suite against redis://127.0.0.1:PORT and
# add its counts to the totals.
run_suites() {
	local name=$1 port=$2 tap="$work/$1.tap" rc=0
	log "running the suites against $name on 127.0.0.1:$port"
	(cd "$clients" && REDIS_URL="redis://127.0.0.1:$port" timeout 600 node --test \
		--test-concurrency=1 --test-timeout=120000 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$tap") || rc=$?
	local p f
	p=$(awk '/^# pass /{print $3}' "$tap" 2>/dev/null || true)
	f=$(awk '/^# fail /{print $3}' "$tap" 2>/dev/null || true)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if ((rc != 0)); then
		failed_on+=("$name")
		# a run that died before counting anything still counts as a failure
		[[ -n "$f" && "$f" != 0 ]] || failed=$((failed + 1))
	fi
}

if [[ "${COMPAT_ONLY:-redis-server}" == redis-server ]]; then
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$work" --daemonize no >"$work/redis-server.log" 2>&1 &
	pids+=($!)
	if ! wait_port "$port" "$!" 10; then
		cat "$work/redis-server.log" >&2
		log "redis-server did not start"
		exit 1
	fi
	if [[ -n "${COMPAT_MONITOR:-}" ]]; then
		redis-cli -p "$port" MONITOR >"$COMPAT_MONITOR" &
		pids+=($!)
	fi
	run_suites redis-server "$port"
fi

if [[ "${COMPAT_ONLY:-cloakroomd}" == cloakroomd ]]; then
	bin=${CLOAKROOMD:-}
	if [[ -z "$bin" ]]; then
		log "building cloakroomd"
		bin="$work/cloakroomd"
		(cd "$root" && go build -o "$bin" ./cmd/cloakroomd)
	fi
	resp=$(free_port)
	"$bin" --name compat --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$resp" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --allow-flush \
		>"$work/cloakroomd.log" 2>&1 &
	pids+=($!)
	if wait_port "$resp" "$!" 15; then
		run_suites cloakroomd "$resp"
	else
		log "cloakroomd is not accepting on --resp-addr 127.0.0.1:$resp; its log:"
		cat "$work/cloakroomd.log" >&2
		failed=$((failed + 1))
		failed_on+=(cloakroomd)
	fi
fi

log "took $((SECONDS - start))s; failed against: ${failed_on[*]:-nothing}"
echo "compat: $passed passed, $failed failed"
((${#failed_on[@]} == 0))
