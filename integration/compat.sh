#!/usr/bin/env bash
# compat.sh runs the Node.js session-store suites (integration/node-clients)
# against a reference redis-server and then against one cloakroomd node, each
# on free loopback ports, and stops everything it started on exit:
#
#   redis-server        plain clients (test/*.test.js)
#   cloakroomd          the same suites
#   redis-cluster       cluster clients (cluster/*.cluster.js) against a
#                       one-node Redis Cluster owning every slot
#   cloakroomd-cluster  the same, against cloakroomd --resp-cluster-mode
#   redis-server-auth   plain clients with a password (--requirepass)
#   cloakroomd-auth     the same against cloakroomd --requirepass
#   cloakroomd-3        plain clients against a 3-node cluster, through its
#                       second node (requests are forwarded to their owners)
#   cloakroomd-3-cluster  cluster clients against 3 nodes in cluster mode;
#                       ioredis Cluster must route in one hop (no node
#                       redirects or forwards its session commands)
#   cloakroomd-3-crash  apps logging users in and out (crash/*.crash.js)
#                       through the second of 3 nodes while the third is
#                       killed -9: no request may fail
#
# A failure against a redis-* target means a wrong test; a failure against a
# cloakroomd* target is a compatibility bug. Either makes the script exit
# non-zero. The last line reads "compat: N passed, N failed, N skipped".
#
# Environment:
#   COMPAT_ONLY="redis-server cloakroomd"  run these targets only
#   COMPAT_MONITOR=FILE  also record `redis-cli MONITOR` of the redis-server
#                        run into FILE (the commands each library sends)
#   CLOAKROOMD=PATH      use this cloakroomd binary instead of building one
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
clients="$work/node-clients" # a private copy: concurrent runs never share node_modules
pids=()

# cleanup stops every process this script started: SIGTERM, then SIGKILL
# for any still running after five seconds.
cleanup() {
	local pid tries=50
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	while ((tries-- > 0)); do
		alive=0
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid did not stop within 5s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
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
mkdir -p "$clients"
(cd "$root/integration/node-clients" && cp -R package.json package-lock.json lib test cluster crash "$clients/")
(cd "$clients" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)

passed=0
failed=0
failed_on=()

# run_suites NAME PORT GLOB: run the suites matching GLOB (relative to
# node-clients) against redis://127.0.0.1:PORT (with $password, if set) and
# add to the totals.
run_suites() {
	local name=$1 port=$2 glob=$3 tap="$work/$1.tap" rc=0
	log "running $glob against $name on 127.0.0.1:$port"
	# shellcheck disable=SC2086 # the glob expands inside node-clients
	(cd "$clients" && REDIS_URL="redis://${password:+:$password@}127.0.0.1:$port" timeout 600 node --test \
		--test-concurrency=1 --test-timeout=120000 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$tap" $glob) || rc=$?
	local p f s
	p=$(awk '/^# pass /{print $3}' "$tap" 2>/dev/null || true)
	# a cancelled test (its hook failed, or it timed out) is a failed one
	f=$(awk '/^# (fail|cancelled) /{n += $3} END {print n}' "$tap" 2>/dev/null || true)
	s=$(awk '/^# skipped /{print $3}' "$tap" 2>/dev/null || true)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	skipped=$((skipped + ${s:-0}))
	if ((rc != 0)); then
		failed_on+=("$name")
		# a run that died before counting anything still counts as a failure
		[[ -n "$f" && "$f" != 0 ]] || failed=$((failed + 1))
	fi
}

# not_started NAME LOG: count a server that never listened as a failure.
not_started() {
	log "$1 is not accepting connections; its log:"
	cat "$2" >&2
	failed=$((failed + 1))
	failed_on+=("$1")
}

# run_redis NAME GLOB [ARGS...]: start redis-server with ARGS, run GLOB.
run_redis() {
	local name=$1 glob=$2 port
	shift 2
	port=$(free_port)
	mkdir -p "$work/$name"
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$work/$name" --daemonize no "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	if ! wait_port "$port" "$!" 10; then
		not_started "$name" "$work/$name.log"
		return
	fi
	if [[ " $* " == *" --cluster-enabled yes "* ]]; then
		redis-cli -p "$port" CLUSTER ADDSLOTSRANGE 0 16383 >/dev/null
		local tries=100
		until redis-cli -p "$port" CLUSTER INFO | grep -q '^cluster_state:ok'; do
			((tries-- > 0)) || { not_started "$name" "$work/$name.log"; return; }
			sleep 0.1
		done
	fi
	if [[ $name == redis-server && -n "${COMPAT_MONITOR:-}" ]]; then
		redis-cli -p "$port" MONITOR >"$COMPAT_MONITOR" &
		pids+=($!)
	fi
	run_suites "$name" "$port" "$glob"
}

# ensure_bin sets bin to the cloakroomd to run, building it the first time.
ensure_bin() {
	[[ -n "${bin:-}" ]] && return
	bin=${CLOAKROOMD:-$work/cloakroomd}
	if [[ -z "${CLOAKROOMD:-}" ]]; then
		log "building cloakroomd"
		(cd "$root" && go build -o "$bin" ./cmd/cloakroomd)
	fi
}

# run_cloakroomd NAME GLOB [ARGS...]: start one node with ARGS, run GLOB.
run_cloakroomd() {
	local name=$1 glob=$2 resp
	shift 2
	ensure_bin
	resp=$(free_port)
	"$bin" --name "$name" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$resp" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --allow-flush "$@" \
		>"$work/$name.log" 2>&1 &
	pids+=($!)
	if wait_port "$resp" "$!" 15; then
		run_suites "$name" "$resp" "$glob"
	else
		not_started "$name" "$work/$name.log"
	fi
}

# members PORT prints the cloakroom_members gauge of the node whose HTTP
# listener is on PORT, or nothing.
members() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 0
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	while IFS= read -r line <&3; do
		[[ $line == "cloakroom_members "* ]] && echo "${line#* }"
	done
	exec 3<&-
}

# run_cloakroomd_cluster NAME GLOB N [ARGS...]: start N nodes joined to the
# first, wait until every node counts N members, run GLOB through the second
# node (so requests are forwarded to their owners). The suites find the last
# node's pid in CLOAKROOM_CRASH_PID, for those that kill it, and the nodes'
# HTTP addresses in CLOAKROOM_METRICS, for those that read /metrics.
run_cloakroomd_cluster() {
	local name=$1 glob=$2 n=$3 i resp http gossip seed="" log
	shift 3
	ensure_bin
	local resps=() https=() nodepids=()
	for ((i = 1; i <= n; i++)); do
		resp=$(free_port) http=$(free_port) gossip=$(free_port)
		log="$work/$name-n$i.log"
		"$bin" --name "$name-n$i" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$resp" \
			--http-addr "127.0.0.1:$http" --gossip-addr "127.0.0.1:$gossip" --allow-flush \
			${seed:+--join "$seed"} "$@" >"$log" 2>&1 &
		pids+=($!)
		nodepids+=($!)
		resps+=("$resp")
		https+=("$http")
		seed=${seed:-127.0.0.1:$gossip}
	done
	for ((i = 0; i < n; i++)); do
		if ! wait_port "${resps[i]}" "${nodepids[i]}" 15; then
			not_started "$name" "$work/$name-n$((i + 1)).log"
			return
		fi
		local tries=150
		until [[ $(members "${https[i]}") == "$n" ]]; do
			((tries-- > 0)) || { not_started "$name" "$work/$name-n$((i + 1)).log"; return; }
			sleep 0.1
		done
	done
	local metrics
	metrics=$(printf '127.0.0.1:%s,' "${https[@]}")
	CLOAKROOM_CRASH_PID=${nodepids[n - 1]} CLOAKROOM_METRICS=${metrics%,} run_suites "$name" "${resps[1]}" "$glob"
}

wanted() { [[ -z "${COMPAT_ONLY:-}" || " $COMPAT_ONLY " == *" $1 "* ]]; }

passed=0
failed=0
skipped=0
password=
failed_on=()
wanted redis-server && run_redis redis-server 'test/*.test.js'
wanted cloakroomd && run_cloakroomd cloakroomd 'test/*.test.js'
wanted redis-cluster && run_redis redis-cluster 'cluster/*.cluster.js' \
	--cluster-enabled yes --cluster-config-file "$work/nodes.conf" --cluster-announce-ip 127.0.0.1
wanted cloakroomd-cluster && run_cloakroomd cloakroomd-cluster 'cluster/*.cluster.js' --resp-cluster-mode
password=compat-s3cret
wanted redis-server-auth && run_redis redis-server-auth 'test/*.test.js' --requirepass "$password"
wanted cloakroomd-auth && run_cloakroomd cloakroomd-auth 'test/*.test.js' --requirepass "$password"
password=
wanted cloakroomd-3 && run_cloakroomd_cluster cloakroomd-3 'test/*.test.js' 3
wanted cloakroomd-3-cluster && run_cloakroomd_cluster cloakroomd-3-cluster 'cluster/*.cluster.js' 3 --resp-cluster-mode
wanted cloakroomd-3-crash && run_cloakroomd_cluster cloakroomd-3-crash 'crash/*.crash.js' 3 --replicas 2

log "took $((SECONDS - start))s; failed against: ${failed_on[*]:-nothing}"
echo "compat: $passed passed, $failed failed, $skipped skipped"
((${#failed_on[@]} == 0))
