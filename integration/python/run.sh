#!/usr/bin/env bash
# run.sh runs the Python session-store suites (redis-py, Django sessions over
# django-redis, Flask-Session) with Debian's packages and the system python3
# against a reference redis-server and then against cloakroomd, each on
# free loopback ports, and stops everything it started on exit:
#
#   redis-server          plain suites (test_redispy, test_django, test_flask)
#   cloakroomd            the same against one node
#   redis-server-auth     plain suites with a password (--requirepass)
#   cloakroomd-auth       the same against cloakroomd --requirepass
#   redis-server-tls      plain suites over TLS (rediss://, ssl=True; a
#                         throwaway CA in SSL_CERT_FILE), redis-server's
#                         tls-port
#   cloakroomd-tls        the same against cloakroomd --resp-tls-addr
#   cloakroomd-3          plain suites against a 3-node cluster, through its
#                         second node (requests are forwarded to their owners)
#   redis-cluster         redis-py RedisCluster (test_rediscluster) against a
#                         one-node Redis Cluster owning every slot
#   cloakroomd-cluster    the same against cloakroomd --resp-cluster-mode
#   cloakroomd-3-cluster  the same against 3 nodes in cluster mode: every
#                         key is sent to its primary (no MOVED, no forwarding)
#
# A failure against a redis-* target means a wrong test; a failure against a
# cloakroomd* target is a compatibility bug. Either makes the script exit
# non-zero. The last line reads "python: N passed, N failed, N skipped".
#
# Environment:
#   PY_ONLY="redis-server cloakroomd"  run these targets only
#   PY_TESTS="test_redispy"  run these test modules only (of those a target runs)
#   PY_MONITOR=DIR   also record `redis-cli MONITOR` of the redis-server and
#                    redis-cluster runs into DIR/<target>.txt
#   CLOAKROOMD=PATH  use this cloakroomd binary instead of building one
#   PYTHON=PATH      the interpreter (default /usr/bin/python3, Debian's,
#                    whose dist-packages hold the python3-* packages)
#   CI               when set (not 0/false), a missing python3-* package
#                    fails the run instead of skipping its tests (a missing
#                    redis-server or redis-tools is installed, as by compat.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
log_name=python
# shellcheck source=../servers.sh
source "$here/../servers.sh" # root, work, pids and their cleanup; free_port, start_*

if [[ ! -x $python ]]; then
	log "$python not found: install Debian's python3"
	exit 2
fi
# The suites skip (or, under CI, fail) by themselves when a package is
# missing; say so once here too.
missing=$("$python" - <<'EOF'
import importlib
pkgs = {"redis": "python3-redis", "django": "python3-django", "django_redis": "python3-django-redis",
        "flask": "python3-flask", "flask_session": "python3-flask-session"}
out = []
for mod, pkg in pkgs.items():
    try:
        importlib.import_module(mod)
    except ImportError:
        out.append(pkg)
print(" ".join(out))
EOF
)
if [[ -n $missing ]]; then
	if under_ci; then
		log "not installed under CI: $missing (apt-get install -y $missing)"
		exit 1
	fi
	log "not installed: $missing; their tests skip (apt-get install -y $missing)"
fi
need_redis # as compat.sh and langs.sh: installs redis-server and redis-tools if missing

start=$SECONDS
password=

# run_suites NAME PORTS MODULES: run the test modules (names, space-separated)
# against the nodes on PORTS (comma-separated) and add to the totals. The
# environment carries $password and $metrics.
run_suites() {
	local name=$1 ports=$2 modules=$3 out="$work/$1.out" rc=0 m
	if [[ -n "${PY_TESTS:-}" ]]; then
		local only=()
		for m in $modules; do
			[[ " $PY_TESTS " == *" $m "* ]] && only+=("$m")
		done
		((${#only[@]})) || return 0
		modules=${only[*]}
	fi
	log "running $modules against $name on 127.0.0.1:$ports"
	# shellcheck disable=SC2086 # one module per word
	local tls_env=()
	if [[ -n ${py_tls:-} ]]; then # the ports take TLS; Python's default context reads SSL_CERT_FILE
		tls_env=(PY_TLS=1 "SSL_CERT_FILE=$tls/ca.crt")
	fi
	(cd "$here" && env "${tls_env[@]}" PY_TARGET="$name" PY_PORTS="$ports" PY_PASSWORD="$password" CLOAKROOM_METRICS="${metrics:-}" \
		PYTHONDONTWRITEBYTECODE=1 timeout 300 "$python" runtests.py $modules) >"$out" 2>&1 || rc=$?
	cat "$out"
	local line p=0 f=0 s=0
	line=$(grep -E '^result: passed=' "$out" | tail -1 || true)
	if [[ -n $line ]]; then
		p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
		s=$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")
	fi
	tally "$name" "$rc" "$p" "$f" "$s"
}

# run_redis NAME MODULES [ARGS...]: start redis-server with ARGS, run MODULES.
run_redis() {
	local name=$1 modules=$2 port
	shift 2
	start_redis "$name" "$@" || { not_started "$name"; return; }
	if [[ -n "${PY_MONITOR:-}" ]]; then
		mkdir -p "$PY_MONITOR"
		redis-cli -p "$port" ${password:+--no-auth-warning -a "$password"} MONITOR >"$PY_MONITOR/$name.txt" &
		pids+=($!)
		sleep 0.2
	fi
	metrics= run_suites "$name" "$port" "$modules"
}

# run_cloakroomd NAME MODULES N [ARGS...]: start N nodes with ARGS joined to
# the first (start_cloakroomd_cluster waits until every node counts N
# members) and run MODULES against them (through the second node when there
# are several: requests are forwarded, or in cluster mode redirected). The
# suites find several nodes' HTTP addresses in CLOAKROOM_METRICS.
run_cloakroomd() {
	local name=$1 modules=$2 n=$3 port metrics= resp_ports=() node_pids=()
	shift 3
	if ((n == 1)); then
		start_cloakroomd "$name" "$@" || { not_started "$name"; return; }
		run_suites "$name" "$port" "$modules"
		return
	fi
	start_cloakroomd_cluster "$name" "$n" "$@" || { not_started "$name"; return; }
	run_suites "$name" "$(IFS=,; echo "${resp_ports[*]}")" "$modules"
}

# run_tls NAME MODULES KIND: start redis-server (KIND redis) or one
# cloakroomd with a TLS listener on a port of its own (a certificate from
# scripts/make-test-certs.sh), and run MODULES over TLS.
tls=$work/tls
run_tls() {
	local name=$1 modules=$2 kind=$3 tport port metrics=
	if [[ ! -f $tls/tls.crt ]] && ! "$root/scripts/make-test-certs.sh" "$tls" >"$work/certs.log" 2>&1; then
		log "making certificates failed: $(cat "$work/certs.log")"
		not_started "$name"
		return
	fi
	tport=$(free_port)
	if [[ $kind == redis ]]; then
		start_redis "$name" --tls-port "$tport" --tls-cert-file "$tls/tls.crt" --tls-key-file "$tls/tls.key" \
			--tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no || { not_started "$name"; return; }
	else
		start_cloakroomd "$name" --resp-tls-addr "127.0.0.1:$tport" \
			--resp-tls-cert "$tls/tls.crt" --resp-tls-key "$tls/tls.key" || { not_started "$name"; return; }
	fi
	wait_port "$tport" "${pids[-1]}" 10 || { server_failed "$name" "$work/$name.log"; not_started "$name"; return; }
	py_tls=1 run_suites "$name" "$tport" "$modules"
}

wanted() { [[ -z "${PY_ONLY:-}" || " $PY_ONLY " == *" $1 "* ]]; }

plain="test_redispy test_django test_flask"
cluster="test_rediscluster"

wanted redis-server && run_redis redis-server "$plain"
wanted cloakroomd && run_cloakroomd cloakroomd "$plain" 1
password=py-s3cret
wanted redis-server-auth && run_redis redis-server-auth "$plain" --requirepass "$password"
wanted cloakroomd-auth && run_cloakroomd cloakroomd-auth "$plain" 1 --requirepass "$password"
password=
wanted redis-server-tls && run_tls redis-server-tls "$plain" redis
wanted cloakroomd-tls && run_tls cloakroomd-tls "$plain" cloakroomd
wanted cloakroomd-3 && run_cloakroomd cloakroomd-3 "$plain" 3
wanted redis-cluster && run_redis redis-cluster "$cluster" \
	--cluster-enabled yes --cluster-config-file "$work/nodes.conf" --cluster-announce-ip 127.0.0.1
wanted cloakroomd-cluster && run_cloakroomd cloakroomd-cluster "$cluster" 1 --resp-cluster-mode
wanted cloakroomd-3-cluster && run_cloakroomd cloakroomd-3-cluster "$cluster" 3 --resp-cluster-mode

log "took $((SECONDS - start))s; failed against: ${failed_on[*]:-nothing}"
echo "python: $passed passed, $failed failed, $skipped skipped"
((${#failed_on[@]} == 0))
