#!/usr/bin/env bash
# langs.sh runs the PHP and Ruby session-store suites against a reference
# redis-server and then against cloakroomd, each on free loopback ports, and
# stops everything it started on exit:
#
#   php/suite.php   phpredis's session handler (session.save_handler=redis,
#                   or rediscluster for the cluster targets) and its Redis
#                   and RedisCluster classes
#   ruby/suite.rb   Rack::Session::Redis (redis-rack over redis-store and
#                   redis-rb; for the cluster targets a redis-rb cluster
#                   client)
#
# Targets, as compat.sh's:
#
#   redis-server        both suites
#   cloakroomd          the same, one node
#   redis-server-auth   both suites with a password (--requirepass)
#   cloakroomd-auth     the same against cloakroomd --requirepass
#   cloakroomd-3        both suites through the second of 3 nodes (requests
#                       are forwarded to their owners)
#   redis-cluster       both suites with cluster clients (REDIS_CLUSTER=1)
#                       against a one-node Redis Cluster owning every slot
#   cloakroomd-cluster  the same against cloakroomd --resp-cluster-mode
#   cloakroomd-3-cluster  the same against 3 nodes in cluster mode, seeded
#                       with the second: no command may be redirected
#   redis-cluster-auth  the cluster clients with a password
#   cloakroomd-3-cluster-auth  the same against 3 nodes in cluster mode
#
# A failure against a redis-* target means a wrong test; a failure against a
# cloakroomd* target is a compatibility bug. Either makes the script exit
# non-zero. The last line reads "langs: N passed, N failed, N skipped".
#
# A missing php, phpredis (php-redis), ruby or redis-rack (ruby-redis-rack)
# skips that language with a message, except when CI is set, where it fails.
#
# Environment:
#   LANGS_ONLY="redis-server cloakroomd"  run these targets only
#   LANGS="php ruby"     run these languages only
#   LANGS_MONITOR=DIR    also record `redis-cli MONITOR` of each redis-*
#                        target's suites into DIR/TARGET.LANG.txt (the
#                        commands each library sends)
#   CLOAKROOMD=PATH      use this cloakroomd binary instead of building one
set -euo pipefail

log_name=langs
# shellcheck source=integration/servers.sh
source "$(dirname "$0")/servers.sh" # sets root, work, pids; stops them on exit

need_redis

langs=()
start=$SECONDS

# missing LANG WHAT PACKAGES: skip LANG, or under CI fail.
missing() {
	if under_ci; then
		log "FAIL: $2 not found under CI: install Debian's $3"
		tally "$1" 1
	else
		log "SKIP $1: $2 not found (apt-get install -y $3); set CI=true to require it"
		skipped=$((skipped + 1))
	fi
}

for lang in ${LANGS:-php ruby}; do
	case $lang in
	php)
		if ! command -v php >/dev/null; then
			missing php php php-cli
		elif ! php -r 'exit(extension_loaded("redis") ? 0 : 1);'; then
			missing php "PHP's redis extension (phpredis)" php-redis
		else
			log "$(php -r 'echo "PHP ", PHP_VERSION, ", phpredis ", phpversion("redis");')"
			langs+=(php)
		fi
		;;
	ruby)
		if ! command -v ruby >/dev/null; then
			missing ruby ruby ruby
		elif ! ruby -e 'require "rack"; require "redis-rack"' 2>/dev/null; then
			missing ruby "redis-rack" "ruby-redis-rack ruby-rack"
		else
			log "$(ruby -e 'require "rack"; require "redis-rack"; puts "Ruby #{RUBY_VERSION}, redis-rb #{Redis::VERSION}, redis-rack #{Redis::Rack::VERSION}, rack #{Rack.release}"')"
			langs+=(ruby)
		fi
		;;
	*)
		log "unknown language $lang (php, ruby)"
		exit 2
		;;
	esac
done

# run_suite NAME LANG PORT [ENV...]: run LANG's suite against
# redis://127.0.0.1:PORT (with $password, if set), with ENV (NAME=VALUE)
# set, and add to the totals.
run_suite() {
	local name=$1 lang=$2 port=$3 out="$work/$1.$2.out" rc=0 mon=""
	shift 3
	local cmd=(php "$root/integration/php/suite.php")
	[[ $lang == ruby ]] && cmd=(ruby "$root/integration/ruby/suite.rb")
	if [[ $name == redis-* && -n "${LANGS_MONITOR:-}" ]]; then
		mkdir -p "$LANGS_MONITOR"
		env ${password:+REDISCLI_AUTH="$password"} redis-cli -p "$port" MONITOR >"$LANGS_MONITOR/$name.$lang.txt" &
		mon=$!
		pids+=("$mon")
		sleep 0.2
	fi
	log "running $lang against $name on 127.0.0.1:$port"
	env "$@" REDIS_URL="redis://${password:+:$password@}127.0.0.1:$port" timeout 300 "${cmd[@]}" 2>&1 | tee "$out" || rc=$?
	if [[ -n $mon ]]; then
		kill "$mon" 2>/dev/null || true
	fi
	local p f s
	read -r p f s < <(sed -nE 's/^# [a-z]+: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/p' "$out")
	[[ -n ${p:-} ]] || rc=1 # no summary line: it died first
	tally "$name/$lang" "$rc" "$p" "$f" "$s"
}

# suites NAME PORT KIND [ENV...]: run every language's suite against PORT,
# with cluster clients if KIND is cluster.
suites() {
	local name=$1 port=$2 kind=$3 lang cluster=
	shift 3
	[[ $kind == cluster ]] && cluster=1
	for lang in "${langs[@]}"; do
		run_suite "$name" "$lang" "$port" REDIS_CLUSTER="$cluster" "$@"
	done
}

wanted() { [[ ${#langs[@]} -gt 0 && (-z "${LANGS_ONLY:-}" || " $LANGS_ONLY " == *" $1 "*) ]]; }

# run_redis NAME KIND [ARGS...] / run_cloakroomd NAME KIND [ARGS...]: start
# one server with ARGS and run the KIND suites against it.
run_redis() {
	local name=$1 kind=$2 port
	shift 2
	start_redis "$name" "$@" || { not_started "$name"; return; }
	suites "$name" "$port" "$kind"
}
run_cloakroomd() {
	local name=$1 kind=$2 port
	shift 2
	start_cloakroomd "$name" "$@" || { not_started "$name"; return; }
	suites "$name" "$port" "$kind"
}

# run_cloakroomd_cluster NAME KIND N [ARGS...]: start N nodes and run the
# KIND suites through the second; they find the nodes' HTTP addresses in
# CLOAKROOM_METRICS.
run_cloakroomd_cluster() {
	local name=$1 kind=$2 n=$3 port metrics resp_ports node_pids
	shift 3
	start_cloakroomd_cluster "$name" "$n" "$@" || { not_started "$name"; return; }
	suites "$name" "$port" "$kind" CLOAKROOM_METRICS="$metrics"
}

password=
wanted redis-server && run_redis redis-server plain
wanted cloakroomd && run_cloakroomd cloakroomd plain
password=langs-s3cret
wanted redis-server-auth && run_redis redis-server-auth plain --requirepass "$password"
wanted cloakroomd-auth && run_cloakroomd cloakroomd-auth plain --requirepass "$password"
password=
wanted cloakroomd-3 && run_cloakroomd_cluster cloakroomd-3 plain 3
wanted redis-cluster && run_redis redis-cluster cluster \
	--cluster-enabled yes --cluster-config-file "$work/nodes.conf" --cluster-announce-ip 127.0.0.1
wanted cloakroomd-cluster && run_cloakroomd cloakroomd-cluster cluster --resp-cluster-mode
wanted cloakroomd-3-cluster && run_cloakroomd_cluster cloakroomd-3-cluster cluster 3 --resp-cluster-mode
password=langs-s3cret
wanted redis-cluster-auth && run_redis redis-cluster-auth cluster --requirepass "$password" \
	--cluster-enabled yes --cluster-config-file "$work/nodes-auth.conf" --cluster-announce-ip 127.0.0.1
wanted cloakroomd-3-cluster-auth && run_cloakroomd_cluster cloakroomd-3-cluster-auth cluster 3 --resp-cluster-mode --requirepass "$password"
password=

log "took $((SECONDS - start))s; failed against: ${failed_on[*]:-nothing}"
echo "langs: $passed passed, $failed failed, $skipped skipped"
((${#failed_on[@]} == 0))
