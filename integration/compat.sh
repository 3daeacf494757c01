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
#   redis-server-tls    plain clients over TLS (rediss://), redis-server's
#                       tls-port with a certificate from a throwaway CA
#                       (NODE_EXTRA_CA_CERTS)
#   cloakroomd-tls      the same against cloakroomd --resp-tls-addr
#   redis-cluster-tls   cluster clients over TLS against a one-node Redis
#                       Cluster (tls-port, tls-cluster yes)
#   cloakroomd-3-cluster-tls  the same against 3 nodes in cluster mode,
#                       each with a TLS listener: clients must be given
#                       the TLS addresses and route in one hop
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

log_name=compat
# shellcheck source=integration/servers.sh
source "$(dirname "$0")/servers.sh" # sets root, work, pids; stops them on exit
clients="$work/node-clients" # a private copy: concurrent runs never share node_modules

need_redis
command -v node >/dev/null || { log "node not found: the suites need Node.js 20 or later"; exit 2; }

start=$SECONDS
log "installing the Node.js clients (npm ci)"
mkdir -p "$clients"
(cd "$root/integration/node-clients" && cp -R package.json package-lock.json lib test cluster crash "$clients/")
(cd "$clients" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)

# run_suites NAME PORT GLOB: run the suites matching GLOB (relative to
# node-clients) against redis://127.0.0.1:PORT (with $password, if set;
# rediss:// trusting $tls/ca.crt if $scheme is rediss) and add to the totals.
run_suites() {
	local name=$1 port=$2 glob=$3 tap="$work/$1.tap" rc=0 scheme=${scheme:-redis} ca=()
	[[ $scheme == rediss ]] && ca=("NODE_EXTRA_CA_CERTS=$tls/ca.crt")
	log "running $glob against $name on $scheme://127.0.0.1:$port"
	# shellcheck disable=SC2086 # the glob expands inside node-clients
	(cd "$clients" && env "${ca[@]}" REDIS_URL="$scheme://${password:+:$password@}127.0.0.1:$port" timeout 600 node --test \
		--test-concurrency=1 --test-timeout=120000 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$tap" $glob) || rc=$?
	local p f s
	p=$(awk '/^# pass /{print $3}' "$tap" 2>/dev/null || true)
	# a cancelled test (its hook failed, or it timed out) is a failed one
	f=$(awk '/^# (fail|cancelled) /{n += $3} END {print n}' "$tap" 2>/dev/null || true)
	s=$(awk '/^# skipped /{print $3}' "$tap" 2>/dev/null || true)
	tally "$name" "$rc" "$p" "$f" "$s"
}

# run_redis NAME GLOB [ARGS...]: start redis-server with ARGS, run GLOB.
run_redis() {
	local name=$1 glob=$2 port
	shift 2
	start_redis "$name" "$@" || { not_started "$name"; return; }
	if [[ $name == redis-server && -n "${COMPAT_MONITOR:-}" ]]; then
		redis-cli -p "$port" MONITOR >"$COMPAT_MONITOR" &
		pids+=($!)
	fi
	run_suites "$name" "$port" "$glob"
}

# run_cloakroomd NAME GLOB [ARGS...]: start one node with ARGS, run GLOB.
run_cloakroomd() {
	local name=$1 glob=$2 port
	shift 2
	start_cloakroomd "$name" "$@" || { not_started "$name"; return; }
	run_suites "$name" "$port" "$glob"
}

# run_cloakroomd_cluster NAME GLOB N [ARGS...]: start N nodes joined to the
# first, wait until every node counts N members, run GLOB through the second
# node (so requests are forwarded to their owners). The suites find the last
# node's pid in CLOAKROOM_CRASH_PID, for those that kill it, and the nodes'
# HTTP addresses in CLOAKROOM_METRICS, for those that read /metrics.
run_cloakroomd_cluster() {
	local name=$1 glob=$2 n=$3 port metrics resp_ports node_pids
	shift 3
	start_cloakroomd_cluster "$name" "$n" "$@" || { not_started "$name"; return; }
	CLOAKROOM_CRASH_PID=${node_pids[n - 1]} CLOAKROOM_METRICS=$metrics run_suites "$name" "$port" "$glob"
}

wanted() { [[ -z "${COMPAT_ONLY:-}" || " $COMPAT_ONLY " == *" $1 "* ]]; }

# make_certs writes a throwaway CA and a certificate it signed for
# 127.0.0.1 to $tls: ca.crt, tls.crt, tls.key.
tls=$work/tls
make_certs() {
	[[ -f $tls/tls.crt ]] && return
	"$root/scripts/make-test-certs.sh" "$tls" >"$work/certs.log" 2>&1 || { log "making certificates failed: $(cat "$work/certs.log")"; return 1; }
}

# run_tls NAME KIND [GLOB [ARGS...]]: start redis-server (KIND redis) or
# cloakroomd with ARGS and a TLS listener on a port of its own, and run
# GLOB (the plain suites) over TLS.
run_tls() {
	local name=$1 kind=$2 glob=${3:-test/*.test.js} tport
	shift $(($# < 3 ? $# : 3))
	make_certs || { not_started "$name"; return; }
	tport=$(free_port)
	if [[ $kind == redis ]]; then
		start_redis "$name" --tls-port "$tport" --tls-cert-file "$tls/tls.crt" --tls-key-file "$tls/tls.key" \
			--tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no "$@" || { not_started "$name"; return; }
	else
		start_cloakroomd "$name" --resp-tls-addr "127.0.0.1:$tport" \
			--resp-tls-cert "$tls/tls.crt" --resp-tls-key "$tls/tls.key" || { not_started "$name"; return; }
	fi
	wait_port "$tport" "${pids[-1]}" 10 || { server_failed "$name" "$work/$name.log"; not_started "$name"; return; }
	scheme=rediss run_suites "$name" "$tport" "$glob"
}

# run_tls_cluster NAME GLOB N [ARGS...]: run_cloakroomd_cluster with a TLS
# listener on every node, GLOB run over TLS through the second.
run_tls_cluster() {
	local name=$1 glob=$2 n=$3 port metrics resp_ports node_pids tls_port
	shift 3
	make_certs || { not_started "$name"; return; }
	node_tls=$tls start_cloakroomd_cluster "$name" "$n" "$@" || { not_started "$name"; return; }
	scheme=rediss CLOAKROOM_METRICS=$metrics run_suites "$name" "$tls_port" "$glob"
}

password=
wanted redis-server && run_redis redis-server 'test/*.test.js'
wanted cloakroomd && run_cloakroomd cloakroomd 'test/*.test.js'
wanted redis-cluster && run_redis redis-cluster 'cluster/*.cluster.js' \
	--cluster-enabled yes --cluster-config-file "$work/nodes.conf" --cluster-announce-ip 127.0.0.1
wanted cloakroomd-cluster && run_cloakroomd cloakroomd-cluster 'cluster/*.cluster.js' --resp-cluster-mode
password=compat-s3cret
wanted redis-server-auth && run_redis redis-server-auth 'test/*.test.js' --requirepass "$password"
wanted cloakroomd-auth && run_cloakroomd cloakroomd-auth 'test/*.test.js' --requirepass "$password"
password=
wanted redis-server-tls && run_tls redis-server-tls redis
wanted cloakroomd-tls && run_tls cloakroomd-tls cloakroomd
wanted redis-cluster-tls && run_tls redis-cluster-tls redis 'cluster/*.cluster.js' \
	--cluster-enabled yes --cluster-config-file "$work/nodes-tls.conf" --cluster-announce-ip 127.0.0.1 --tls-cluster yes
wanted cloakroomd-3 && run_cloakroomd_cluster cloakroomd-3 'test/*.test.js' 3
wanted cloakroomd-3-cluster && run_cloakroomd_cluster cloakroomd-3-cluster 'cluster/*.cluster.js' 3 --resp-cluster-mode
wanted cloakroomd-3-cluster-tls && run_tls_cluster cloakroomd-3-cluster-tls 'cluster/*.cluster.js' 3 --resp-cluster-mode
wanted cloakroomd-3-crash && run_cloakroomd_cluster cloakroomd-3-crash 'crash/*.crash.js' 3 --replicas 2

log "took $((SECONDS - start))s; failed against: ${failed_on[*]:-nothing}"
echo "compat: $passed passed, $failed failed, $skipped skipped"
((${#failed_on[@]} == 0))
