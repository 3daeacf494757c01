# servers.sh: the servers compat.sh and langs.sh run their suites against,
# each on free loopback ports. Source it, do not run it. Sourcing it sets
# `work` (a temporary directory) and `pids`, and traps EXIT to stop every
# process in pids (SIGTERM, then SIGKILL for any still running five seconds
# later) and remove work. The sourcing script sets `log_name` (the prefix of
# its log lines) first; `root` is the repository.
#
# The start_* functions set `port` to the RESP port to drive, or print
# "NAME is not accepting connections" and the server's log to stderr and
# return 1.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()

# cleanup stops every process this script started: SIGTERM, then SIGKILL
# for any still running after five seconds.
cleanup() {
	local pid alive tries=50
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

log() { printf '%s: %s\n' "${log_name:-servers}" "$*" >&2; }

# under_ci reports whether CI is set (not 0 or false): a missing client
# library then fails the run instead of skipping its suite.
under_ci() { [[ -n "${CI:-}" && "${CI:-}" != 0 && "${CI:-}" != false ]]; }

# The suites' totals, and the targets they failed against.
passed=0 failed=0 skipped=0 failed_on=()

# tally NAME RC [PASSED FAILED SKIPPED]: add one run's counts to the
# totals. A run that exited non-zero failed against NAME; if it died before
# counting a failure, it counts as one.
tally() {
	local name=$1 rc=$2 p=${3:-0} f=${4:-0} s=${5:-0}
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if ((rc != 0)); then
		failed_on+=("$name")
		((f > 0)) || failed=$((failed + 1))
	fi
}

# not_started NAME: count a server that never listened (start_* showed
# its log) as a failure.
not_started() { tally "$1" 1; }

# free_port prints a loopback port the kernel just handed out and released
# (perl-base is in every Debian system).
free_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "listen: $!\n";
		print $s->sockport, "\n";'
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

# need_redis installs redis-server and redis-tools when either is missing.
need_redis() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		log "installing redis-server and redis-tools"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
	fi
}

# server_failed NAME LOG: say that NAME never served, with its log.
server_failed() {
	log "$1 is not accepting connections; its log:"
	cat "$2" >&2
	return 1
}

# start_redis NAME [ARGS...]: start redis-server with ARGS; with
# --cluster-enabled yes, give it every slot and wait for cluster_state:ok
# (with --requirepass PASSWORD, redis-cli gives it).
start_redis() {
	local name=$1 tries=100 a auth=
	shift
	for a in "$@"; do
		[[ $auth == next ]] && auth=$a
		[[ $a == --requirepass ]] && auth=next
	done
	port=$(free_port)
	if [[ " $* " == *" --cluster-enabled yes "* ]]; then
		# a cluster node's bus listens on port+10000: Redis refuses a port
		# above 55535
		while ((port > 55535)); do
			port=$(free_port)
		done
	fi
	mkdir -p "$work/$name"
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--dir "$work/$name" --daemonize no "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	wait_port "$port" "$!" 10 || { server_failed "$name" "$work/$name.log"; return 1; }
	if [[ " $* " == *" --cluster-enabled yes "* ]]; then
		local cli=(redis-cli -p "$port")
		if [[ -n $auth ]]; then
			cli=(env REDISCLI_AUTH="$auth" redis-cli -p "$port")
		fi
		"${cli[@]}" CLUSTER ADDSLOTSRANGE 0 16383 >/dev/null
		until "${cli[@]}" CLUSTER INFO | grep -q '^cluster_state:ok'; do
			((tries-- > 0)) || { server_failed "$name" "$work/$name.log"; return 1; }
			sleep 0.1
		done
	fi
}

# ensure_bin sets bin to the cloakroomd to run ($CLOAKROOMD, if set),
# building it the first time.
ensure_bin() {
	[[ -n "${bin:-}" ]] && return
	bin=${CLOAKROOMD:-$work/cloakroomd}
	if [[ -z "${CLOAKROOMD:-}" ]]; then
		log "building cloakroomd"
		(cd "$root" && go build -o "$bin" ./cmd/cloakroomd)
	fi
}

# start_cloakroomd NAME [ARGS...]: start one node with ARGS.
start_cloakroomd() {
	local name=$1
	shift
	ensure_bin
	port=$(free_port)
	"$bin" --name "$name" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$port" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --allow-flush "$@" \
		>"$work/$name.log" 2>&1 &
	pids+=($!)
	wait_port "$port" "$!" 15 || server_failed "$name" "$work/$name.log"
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

# start_cloakroomd_cluster NAME N [ARGS...]: start N nodes joined to the
# first and wait until every node counts N members. It sets port to the
# second node's RESP port (drive it, so that requests are forwarded to
# their owners), resp_ports to every node's, node_pids to their pids and
# metrics to their HTTP addresses, comma-separated (for /metrics). With
# node_tls set to a directory holding tls.crt and tls.key, each node also
# serves TLS on a port of its own, and tls_port is the second node's.
start_cloakroomd_cluster() {
	local name=$1 n=$2 i resp http gossip seed="" nodelog tries tls_args
	shift 2
	ensure_bin
	local https=() tls_ports=()
	resp_ports=() node_pids=()
	for ((i = 1; i <= n; i++)); do
		resp=$(free_port) http=$(free_port) gossip=$(free_port) tls_args=()
		if [[ -n ${node_tls:-} ]]; then
			tls_ports+=("$(free_port)")
			tls_args=(--resp-tls-addr "127.0.0.1:${tls_ports[i - 1]}"
				--resp-tls-cert "$node_tls/tls.crt" --resp-tls-key "$node_tls/tls.key")
		fi
		nodelog="$work/$name-n$i.log"
		"$bin" --name "$name-n$i" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$resp" \
			--http-addr "127.0.0.1:$http" --gossip-addr "127.0.0.1:$gossip" --allow-flush \
			${seed:+--join "$seed"} "${tls_args[@]}" "$@" >"$nodelog" 2>&1 &
		pids+=($!)
		node_pids+=($!)
		resp_ports+=("$resp")
		https+=("$http")
		seed=${seed:-127.0.0.1:$gossip}
	done
	for ((i = 0; i < n; i++)); do
		nodelog="$work/$name-n$((i + 1)).log"
		wait_port "${resp_ports[i]}" "${node_pids[i]}" 15 || { server_failed "$name" "$nodelog"; return 1; }
		tries=150
		until [[ $(members "${https[i]}") == "$n" ]]; do
			((tries-- > 0)) || { server_failed "$name" "$nodelog"; return 1; }
			sleep 0.1
		done
	done
	metrics=$(printf '127.0.0.1:%s,' "${https[@]}")
	metrics=${metrics%,}
	port=${resp_ports[1]}
	tls_port=${tls_ports[1]:-}
}
