#!/usr/bin/env bash
# bench-resp.sh compares cloakroomd's Redis protocol listener with
# redis-server on this machine, in one run, with redis-benchmark:
#
#   redis-benchmark -t set,get -c 50 -d 200 -n 200000 -P 1|16
#
# It prints requests/s and p99 latency for each target and the ratio
# cloakroomd / redis-server. Both servers listen on loopback ports picked
# at start; both are stopped on exit.
#
# With BENCH_CLUSTER=1 it also starts a 3-node cluster and benchmarks it
# through its first node, which forwards what it does not own; that target
# is reported as a ratio to redis-server too.
#
# With BENCH_ALT=PATH it also benchmarks a second cloakroomd binary (say,
# one built from another commit) in the same run, for an A/B comparison
# on a noisy machine; that target is reported as a ratio to redis-server.
# BENCH_REQUESTS (default 200000) sets -n; BENCH_PIPELINES (default "1 16")
# the -P values; BENCH_KEYSPACE=N passes -r N to every target, so that
# requests spread over N keys instead of one (through one node of a cluster,
# a third of them land on their primary and the rest are forwarded).
# The issue's figures are without it. BENCH_CLIENTS (default 50) sets -c:
# with 1, each request waits for the one before, so requests/s measure the
# round trip of a client that sends one command at a time.
#
# With BENCH_DEL=1 each target also answers DELs (a logout) of the same
# depth: first 300,000 SETs spread over 100,000 keys (pipelined, not
# measured), then redis-benchmark "DEL key:__rand_int__" -r 100000, so that
# most DELs find a session to delete.
#
# With BENCH_RENEW=1 each target also renews a million sessions: first
# 3,000,000 SETs of 400 bytes spread over 1,000,000 keys (pipelined, not
# measured), then 1,000,000 SETs of 100 bytes over the same keys (-r
# 1000000), measured. Each renewal leaves the old value's room dead, so the
# store has to take it back while it serves them (docs/architecture.md,
# "Accounting and reclaiming dead room").
#
# With BENCH_PIN=1 every server runs on the machine's last CPU and
# redis-benchmark on CPU 0 (taskset), so that both servers get the same
# placement: the client never shares a CPU with the server it measures.
# Left to the scheduler (the default), placement differs between the two
# servers and between runs (docs/benchmarks.md, "Same placement for both
# servers").
#
# With BENCH_TLS=1 both servers also listen for TLS (redis-server's
# tls-port, cloakroomd's --resp-tls-addr, a certificate from a throwaway CA
# made by scripts/make-test-certs.sh) and redis-benchmark runs with --tls
# against those ports; not with BENCH_ALT or BENCH_CLUSTER.
#
# Usage: scripts/bench-resp.sh [rounds]   (default 1; targets alternate)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-1}
requests=${BENCH_REQUESTS:-200000}
pipelines=${BENCH_PIPELINES:-1 16}
keyspace=${BENCH_KEYSPACE:-}
clients=${BENCH_CLIENTS:-50}
tmp=$(mktemp -d)
pids=()
https=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "port $1 did not open" >&2
	return 1
}

for c in redis-server redis-benchmark; do
	command -v "$c" >/dev/null || { echo "$0: $c not found (Debian: apt-get install redis-server redis-tools)" >&2; exit 1; }
done
go build -o "$tmp/cloakroomd" ./cmd/cloakroomd

# on_server and on_client prefix the servers and redis-benchmark (BENCH_PIN).
on_server=() on_client=()
if [[ ${BENCH_PIN:-} == 1 ]]; then
	command -v taskset >/dev/null || { echo "$0: BENCH_PIN=1 needs taskset (util-linux)" >&2; exit 1; }
	if (($(nproc) < 2)); then echo "$0: BENCH_PIN=1 needs two CPUs" >&2; exit 1; fi
	on_server=(taskset -c "$(($(nproc) - 1))") on_client=(taskset -c 0)
fi

# With BENCH_TLS=1, redis_tls and cloak_tls are each server's TLS flags
# and tls redis-benchmark's.
redis_tls=() cloak_tls=() tls=()
if [[ ${BENCH_TLS:-} == 1 ]]; then
	if [[ -n ${BENCH_ALT:-} || ${BENCH_CLUSTER:-} == 1 ]]; then
		echo "$0: BENCH_TLS=1 does not go with BENCH_ALT or BENCH_CLUSTER" >&2
		exit 1
	fi
	scripts/make-test-certs.sh "$tmp/tls"
	rtls=$(free_port) ctls=$(free_port)
	redis_tls=(--tls-port "$rtls" --tls-cert-file "$tmp/tls/tls.crt" --tls-key-file "$tmp/tls/tls.key"
		--tls-ca-cert-file "$tmp/tls/ca.crt" --tls-auth-clients no)
	cloak_tls=(--resp-tls-addr "127.0.0.1:$ctls" --resp-tls-cert "$tmp/tls/tls.crt" --resp-tls-key "$tmp/tls/tls.key")
	tls=(--tls --cacert "$tmp/tls/ca.crt")
fi

rport=$(free_port)
"${on_server[@]}" redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$tmp" "${redis_tls[@]}" >"$tmp/redis.log" 2>&1 &
pids+=($!)
cport=$(free_port)
"${on_server[@]}" "$tmp/cloakroomd" --name bench --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$cport" \
	--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn "${cloak_tls[@]}" >"$tmp/cloakroomd.log" 2>&1 &
pids+=($!)
wait_port "$rport"
wait_port "$cport"
if ((${#tls[@]})); then
	wait_port "$rtls"
	wait_port "$ctls"
	rport=$rtls cport=$ctls
fi

targets="redis cloak"
if [[ -n ${BENCH_ALT:-} ]]; then
	targets="$targets alt"
	aport=$(free_port)
	"${on_server[@]}" "$BENCH_ALT" --name bench-alt --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$aport" \
		--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn >"$tmp/alt.log" 2>&1 &
	pids+=($!)
	wait_port "$aport"
fi
if [[ ${BENCH_CLUSTER:-} == 1 ]]; then
	targets="$targets cluster"
	seed="127.0.0.1:$(free_port)"
	for i in 1 2 3; do
		resp=$(free_port) http=$(free_port)
		gossip=$seed join=$seed
		if ((i > 1)); then gossip="127.0.0.1:$(free_port)"; fi
		"${on_server[@]}" "$tmp/cloakroomd" --name "bench-$i" --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$resp" \
			--http-addr "127.0.0.1:$http" --gossip-addr "$gossip" --join "$join" --gossip-preset local \
			--log-level warn >"$tmp/cluster-$i.log" 2>&1 &
		pids+=($!)
		if ((i == 1)); then kport=$resp; fi
		https+=("$http")
	done
	for h in "${https[@]}"; do
		for _ in $(seq 300); do
			if [[ $(curl -s "http://127.0.0.1:$h/readyz") == ready ]]; then break; fi
			sleep 0.1
		done
	done
fi

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "go:      $(go env GOVERSION); redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2)"
if [[ -n $keyspace ]]; then echo "keys:    -r $keyspace"; fi
if [[ $clients != 50 ]]; then echo "clients: -c $clients"; fi
if ((${#tls[@]})); then echo "tls:     redis-benchmark --tls, both servers' TLS ports"; fi
if ((${#on_server[@]})); then echo "pinned:  servers on CPU $(($(nproc) - 1)), redis-benchmark on CPU 0"; fi
echo

# bench prints "TEST rps p99" lines for one target and pipeline depth.
bench() {
	"${on_client[@]}" redis-benchmark "${tls[@]}" -h 127.0.0.1 -p "$1" -t set,get -c "$clients" -d 200 -n "$requests" -P "$2" ${keyspace:+-r "$keyspace"} --csv 2>/dev/null |
		awk -F, 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); gsub(/"/, "", $7); print $1, $2, $7 }'
	if [[ ${BENCH_DEL:-} == 1 ]]; then
		"${on_client[@]}" redis-benchmark "${tls[@]}" -h 127.0.0.1 -p "$1" -t set -c "$clients" -d 200 -n 300000 -r 100000 -P 16 -q >/dev/null 2>&1
		"${on_client[@]}" redis-benchmark "${tls[@]}" -h 127.0.0.1 -p "$1" -c "$clients" -n "$requests" -P "$2" -r 100000 --csv DEL 'key:__rand_int__' 2>/dev/null |
			awk -F, 'NR > 1 { gsub(/"/, "", $2); gsub(/"/, "", $7); print "DEL", $2, $7 }'
	fi
	if [[ ${BENCH_RENEW:-} == 1 ]]; then
		"${on_client[@]}" redis-benchmark "${tls[@]}" -h 127.0.0.1 -p "$1" -t set -c "$clients" -d 400 -n 3000000 -r 1000000 -P 16 -q >/dev/null 2>&1
		"${on_client[@]}" redis-benchmark "${tls[@]}" -h 127.0.0.1 -p "$1" -t set -c "$clients" -d 100 -n 1000000 -r 1000000 -P "$2" --csv 2>/dev/null |
			awk -F, 'NR > 1 { gsub(/"/, "", $2); gsub(/"/, "", $7); print "RENEW", $2, $7 }'
	fi
}
tests="SET GET"
if [[ ${BENCH_DEL:-} == 1 ]]; then tests="$tests DEL"; fi
if [[ ${BENCH_RENEW:-} == 1 ]]; then tests="$tests RENEW"; fi

declare -A rps p99
for round in $(seq "$rounds"); do
	for P in $pipelines; do
		order=$targets
		if (( round % 2 == 0 )); then order=$(echo "$targets" | tr ' ' '\n' | tac | tr '\n' ' '); fi
		for target in $order; do
			case $target in
			redis) port=$rport ;;
			cloak) port=$cport ;;
			cluster) port=$kport ;;
			alt) port=$aport ;;
			esac
			while read -r test r p; do
				key="$target/$P/$test"
				rps[$key]="${rps[$key]:-} $r"
				p99[$key]="${p99[$key]:-} $p"
			done < <(bench "$port" "$P")
		done
	done
done

# median of a space-separated list
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# paired prints, for two lists of one value per round, the median of the
# per-round ratios b/a, a 95% confidence interval for that median, and in
# how many rounds b was at least as good as a (higher with "more", lower
# with "less"). Each round runs the targets back to back, so its ratio is
# less moved by the machine's drifting load than the ratio of two medians.
# The interval assumes nothing of the ratios' distribution: it runs from
# the k-th smallest ratio to the k-th largest, k the largest for which
# P(Binomial(n, 1/2) < k) <= 2.5%. It needs 6 rounds or more ("-" below).
paired() {
	local a=$1 b=$2 better=$3
	paste <(echo "$a" | tr ' ' '\n' | grep -v '^$') <(echo "$b" | tr ' ' '\n' | grep -v '^$') |
		awk '{ print $2 / $1 }' | sort -g |
		awk -v better="$better" '
			{ r[NR] = $1; if ((better == "more" && $1 >= 1) || (better == "less" && $1 <= 1)) won++ }
			END {
				n = NR; p = 0.5 ^ n; cdf = p; k = 0
				if (cdf <= 0.025) k = 1
				for (i = 1; k > 0 && i < n; i++) {
					p = p * (n - i + 1) / i
					if (cdf + p > 0.025) break
					cdf += p; k = i + 1
				}
				ci = "-"
				if (k > 0) ci = sprintf("%.2f-%.2f", r[k], r[n - k + 1])
				printf "%.2f %s %d/%d\n", r[int((n + 1) / 2)], ci, won, n
			}'
}

# table prints one target's medians against redis-server's, and the
# per-round (paired) ratios, their 95% intervals and the rounds the target
# matched or beat Redis in.
table() {
	local target=$1 label=$2
	printf '%-6s %-4s %12s %8s %12s %8s %9s %11s %9s %11s %10s %10s\n' test P "redis rps" "p99 ms" "$label rps" "p99 ms" \
		"rps ratio" "95% CI" "p99 ratio" "95% CI" "rps rounds" "p99 rounds"
	for P in $pipelines; do
		for test in $tests; do
			local k=redis/$P/$test t=$target/$P/$test
			read -r rr_ rci rw < <(paired "${rps[$k]}" "${rps[$t]}" more)
			read -r pr_ pci pw < <(paired "${p99[$k]}" "${p99[$t]}" less)
			printf '%-6s %-4s %12.0f %8.3f %12.0f %8.3f %9s %11s %9s %11s %10s %10s\n' "$test" "$P" \
				"$(echo "${rps[$k]}" | median)" "$(echo "${p99[$k]}" | median)" \
				"$(echo "${rps[$t]}" | median)" "$(echo "${p99[$t]}" | median)" "$rr_" "$rci" "$pr_" "$pci" "$rw" "$pw"
		done
	done
}

table cloak cloak
if [[ $targets == *alt* ]]; then
	echo
	table alt alt
fi
if [[ $targets == *cluster* ]]; then
	echo
	table cluster 3-node
fi
