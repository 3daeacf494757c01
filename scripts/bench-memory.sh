#!/usr/bin/env bash
# bench-memory.sh compares the resident memory per session of one Cloakroom
# node with redis-server's, holding the same sessions.
#
# It starts cloakroomd (built from this tree) and redis-server (no
# persistence) on loopback, measures each idle, loads the same SESSIONS
# sessions into each with `cloakctl bench --load-only` (keys "session:" and
# 32 hex digits, 40 bytes; VALUE_SIZE-byte values; every one with a TTL),
# lets them settle, and reports bytes per session:
#   raw = resident memory / sessions
#   net = (resident memory - idle resident memory) / sessions
# For cloakroomd resident memory is VmRSS from /proc; for redis-server it is
# used_memory_rss from INFO (VmRSS is printed too).
#
# Usage: scripts/bench-memory.sh
# Environment: SESSIONS (1000000), VALUE_SIZE (200), TTL (1h), SETTLE (5s).
cd "$(dirname "$0")/.."
. scripts/lib.sh

SESSIONS=${SESSIONS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-200}
TTL=${TTL:-1h}
SETTLE=${SETTLE:-5}

need redis-server redis-cli
build_bins
bin=$BENCH_TMP/bin

cport=$(free_port)
hport=$(free_port)
start_bg "$bin/cloakroomd" --addr "127.0.0.1:$cport" --resp-addr "" --http-addr "127.0.0.1:$hport" \
	--gossip-addr "127.0.0.1:$(free_port)" --log-level warn
cpid=$BENCH_PID
rport=$(free_port)
start_bg redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning
rpid=$BENCH_PID
wait_port "$cport"
wait_port "$hport"
wait_port "$rport"
sleep "$SETTLE"

rinfo() { redis-cli -p "$rport" info memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k {print $2}'; }
metric() { curl -s "http://127.0.0.1:$hport/metrics" | awk -v k="$1" '$1 == k {printf "%.0f\n", $2}'; }

c_idle=$(($(rss_kib "$cpid") * 1024))
r_idle=$(rinfo used_memory_rss)
r_idle_vm=$(($(rss_kib "$rpid") * 1024))

load=(--load-only --keys "$SESSIONS" --value-size "$VALUE_SIZE" --ttl "$TTL" --progress 0 --json)
"$bin/cloakctl" --addr "127.0.0.1:$cport" bench "${load[@]}" >/dev/null
"$bin/cloakctl" bench --target redis --redis-addr "127.0.0.1:$rport" "${load[@]}" >/dev/null
sleep "$SETTLE"

c_rss=$(($(rss_kib "$cpid") * 1024))
c_keys=$(metric cloakroom_keys)
c_store=$(metric cloakroom_memory_used_bytes)
c_heap=$(metric go_memstats_heap_inuse_bytes)
c_heapsys=$(metric go_memstats_heap_sys_bytes)
r_rss=$(rinfo used_memory_rss)
r_used=$(rinfo used_memory)
r_vm=$(($(rss_kib "$rpid") * 1024))
r_keys=$(redis-cli -p "$rport" dbsize | tr -d '\r')

machine
echo "workload: $SESSIONS sessions, 40-byte keys, $VALUE_SIZE-byte values, TTL $TTL"
echo
echo "cloakroomd: idle VmRSS $c_idle B; loaded VmRSS $c_rss B; keys $c_keys"
echo "            store account (arena + index) $c_store B; Go heap in use $c_heap B (heap sys $c_heapsys B)"
echo "redis:      idle used_memory_rss $r_idle B (VmRSS $r_idle_vm); loaded used_memory_rss $r_rss B (VmRSS $r_vm B); used_memory $r_used B; keys $r_keys"
echo
python3 - "$c_idle" "$c_rss" "$c_keys" "$r_idle" "$r_rss" "$r_keys" "$r_used" <<'EOF'
import sys
ci, cr, ck, ri, rr, rk, ru = map(int, sys.argv[1:])
craw, cnet = cr / ck, (cr - ci) / ck
rraw, rnet = rr / rk, (rr - ri) / rk
print("| bytes per session | raw (rss / keys) | net ((rss - idle rss) / keys) |")
print("|---|---:|---:|")
print(f"| cloakroomd (VmRSS) | {craw:.0f} | {cnet:.0f} |")
print(f"| redis-server (used_memory_rss) | {rraw:.0f} | {rnet:.0f} |")
print(f"| ratio cloakroom / redis | {craw/rraw:.2f}x | {cnet/rnet:.2f}x |")
print(f"(redis used_memory / keys: {ru / rk:.0f})")
print()
print(f"goal cloakroom <= redis: raw {'met' if craw <= rraw else 'MISSED'}, net {'met' if cnet <= rnet else 'MISSED'}")
EOF
