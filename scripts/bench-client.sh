#!/usr/bin/env bash
# bench-client.sh measures throughput and latency of one Cloakroom node
# (through the Go client) side by side with redis-server (through go-redis),
# with the same tool, workload and machine, in one run.
#
# It starts cloakroomd (built from this tree; loopback, Redis listener off)
# and redis-server (loopback, no persistence), then runs `cloakctl bench`
# against each in alternating rounds and reports the medians and the ratio.
#
# Usage: scripts/bench-client.sh
# Environment: ROUNDS (3), DURATION (10s), WORKERS (50), VALUE_SIZE (200),
# KEYS (100000), RATIO (50:50 get:set).
cd "$(dirname "$0")/.."
. scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-50}
VALUE_SIZE=${VALUE_SIZE:-200}
KEYS=${KEYS:-100000}
RATIO=${RATIO:-50:50}

need redis-server
build_bins
bin=$BENCH_TMP/bin

cport=$(free_port)
start_bg "$bin/cloakroomd" --addr "127.0.0.1:$cport" --resp-addr "" --http-addr "" \
	--gossip-addr "127.0.0.1:$(free_port)" --log-level warn
rport=$(free_port)
start_bg redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning
wait_port "$cport"
wait_port "$rport"

common=(--workers "$WORKERS" --duration "$DURATION" --value-size "$VALUE_SIZE" --keys "$KEYS" --ratio "$RATIO" --json --progress 0)
run_cloakroom() { "$bin/cloakctl" --addr "127.0.0.1:$cport" bench "${common[@]}" >>"$BENCH_TMP/cloakroom.jsonl"; }
run_redis() { "$bin/cloakctl" bench --target redis --redis-addr "127.0.0.1:$rport" "${common[@]}" >>"$BENCH_TMP/redis.jsonl"; }

machine
echo "workload: $WORKERS workers, $VALUE_SIZE-byte values, $KEYS keys, get:set $RATIO, $DURATION per round, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	# Alternate which server goes first, so neither always gets a warmer or
	# quieter slot.
	if ((r % 2)); then run_cloakroom; run_redis; else run_redis; run_cloakroom; fi
	echo "round $r done" >&2
done

python3 - "$BENCH_TMP/cloakroom.jsonl" "$BENCH_TMP/redis.jsonl" <<'EOF'
import json, statistics, sys
def load(path):
    return [json.loads(l) for l in open(path) if l.strip()]
c, r = load(sys.argv[1]), load(sys.argv[2])
def med(rows, k): return statistics.median(x[k] for x in rows)
print()
print("per round (ops/s, p50/p99/p99.9 µs):")
for i, (a, b) in enumerate(zip(c, r), 1):
    print(f"  round {i}: cloakroom {a['ops_per_sec']:9.0f} {a['p50_us']}/{a['p99_us']}/{a['p999_us']}"
          f"   redis {b['ops_per_sec']:9.0f} {b['p50_us']}/{b['p99_us']}/{b['p999_us']}"
          f"   errors {a['errors']}/{b['errors']}")
print()
print("| median of %d rounds | ops/s | p50 | p99 | p99.9 |" % len(c))
print("|---|---:|---:|---:|---:|")
for name, rows in (("cloakroom (Go client)", c), ("redis-server (go-redis)", r)):
    print(f"| {name} | {med(rows,'ops_per_sec'):.0f} | {med(rows,'p50_us'):.0f} µs | {med(rows,'p99_us'):.0f} µs | {med(rows,'p999_us'):.0f} µs |")
print(f"| ratio cloakroom / redis | {med(c,'ops_per_sec')/med(r,'ops_per_sec'):.2f}x | "
      f"{med(c,'p50_us')/med(r,'p50_us'):.2f}x | {med(c,'p99_us')/med(r,'p99_us'):.2f}x | {med(c,'p999_us')/med(r,'p999_us'):.2f}x |")
ok_tp = med(c,'ops_per_sec') >= med(r,'ops_per_sec')
ok_p99 = med(c,'p99_us') <= med(r,'p99_us')
print()
print(f"goal ops/s >= redis: {'met' if ok_tp else 'MISSED'}; p99 no worse: {'met' if ok_p99 else 'MISSED'}")
EOF
