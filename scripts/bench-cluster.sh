#!/usr/bin/env bash
# bench-cluster.sh measures a three-node cluster with two copies of every
# session (--replicas 2) through the Go client, side by side with one
# redis-server through go-redis, in one run: Set-only and Get-only rounds,
# alternating which server goes first.
#
# Usage: scripts/bench-cluster.sh
# Environment: ROUNDS (3), DURATION (10s), WORKERS (50), VALUE_SIZE (200),
# KEYS (100000).
cd "$(dirname "$0")/.."
. scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-50}
VALUE_SIZE=${VALUE_SIZE:-200}
KEYS=${KEYS:-100000}

need redis-server
build_bins
bin=$BENCH_TMP/bin

seed=""
addrs=()
https=()
for i in 1 2 3; do
	a=$(free_port) g=$(free_port) h=$(free_port)
	args=(--name "bench-$i" --addr "127.0.0.1:$a" --resp-addr "" --http-addr "127.0.0.1:$h"
		--gossip-addr "127.0.0.1:$g" --replicas 2 --log-level warn)
	[ -n "$seed" ] && args+=(--join "$seed")
	start_bg "$bin/cloakroomd" "${args[@]}"
	[ -z "$seed" ] && seed="127.0.0.1:$g"
	wait_port "$a"
	addrs+=("127.0.0.1:$a")
	https+=("127.0.0.1:$h")
done
rport=$(free_port)
start_bg redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning
wait_port "$rport"
# Wait until every node is ready (joined, partitions in place).
for h in "${https[@]}"; do
	for _ in $(seq 200); do
		curl -sf "http://$h/readyz" >/dev/null 2>&1 && break
		sleep 0.05
	done
done
sleep 1 # let the tables settle after the last join

common=(--workers "$WORKERS" --duration "$DURATION" --value-size "$VALUE_SIZE" --keys "$KEYS" --json --progress 0)
run() { # run NAME RATIO: one round against each server, in the given order
	local kind=$1 ratio=$2 first=$3
	local c=("$bin/cloakctl" --addr "${addrs[0]}" bench "${common[@]}" --ratio "$ratio")
	local r=("$bin/cloakctl" bench --target redis --redis-addr "127.0.0.1:$rport" "${common[@]}" --ratio "$ratio")
	if [ "$first" = c ]; then
		"${c[@]}" >>"$BENCH_TMP/c-$kind.jsonl"; "${r[@]}" >>"$BENCH_TMP/r-$kind.jsonl"
	else
		"${r[@]}" >>"$BENCH_TMP/r-$kind.jsonl"; "${c[@]}" >>"$BENCH_TMP/c-$kind.jsonl"
	fi
}

machine
echo "cluster: 3 nodes, --replicas 2, client seeded with one node; $WORKERS workers, $VALUE_SIZE-byte values, $KEYS keys, $DURATION per round, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	if ((r % 2)); then o=c; else o=r; fi
	run set 0:100 $o
	run get 100:0 $o
	echo "round $r done" >&2
done

python3 - "$BENCH_TMP" <<'PY'
import json, statistics, sys, os
d = sys.argv[1]
def load(n): return [json.loads(l) for l in open(os.path.join(d, n)) if l.strip()]
def med(rows, k): return statistics.median(x[k] for x in rows)
print()
print("| median of rounds | cloakroom ops/s | redis ops/s | ratio | cloakroom p50 / p99 | redis p50 / p99 | errors |")
print("|---|---:|---:|---:|---:|---:|---:|")
res = {}
for kind in ("set", "get"):
    c, r = load(f"c-{kind}.jsonl"), load(f"r-{kind}.jsonl")
    ratio = med(c, 'ops_per_sec') / med(r, 'ops_per_sec')
    res[kind] = (ratio, med(c, 'p99_us'))
    print(f"| {kind.title()} | {med(c,'ops_per_sec'):.0f} | {med(r,'ops_per_sec'):.0f} | {ratio:.2f}x | "
          f"{med(c,'p50_us'):.0f} / {med(c,'p99_us'):.0f} µs | {med(r,'p50_us'):.0f} / {med(r,'p99_us'):.0f} µs | "
          f"{sum(x['errors'] for x in c)} |")
print()
print(f"goal Set >= 0.5x redis: {'met' if res['set'][0] >= 0.5 else 'MISSED'}; "
      f"Get >= 1x redis: {'met' if res['get'][0] >= 1 else 'MISSED'}; "
      f"p99 < 2 ms: {'met' if max(res['set'][1], res['get'][1]) < 2000 else 'MISSED'}")
PY
