#!/usr/bin/env bash
# bench-migration.sh measures how fast partitions move to a joining node
# while a foreground load runs, and what the move costs that load.
#
# One node (--replicas 2, so a second node receives a copy of every
# partition) is loaded with N sessions; a foreground `cloakctl bench` runs
# alone for FG_DURATION as a baseline, then again from just before a second
# node joins until the move is over (it is interrupted then, and reports
# what ran), so that its percentiles are those of the move. The script polls
# both nodes' cloakroom_transfer_entries_total every 0.2 s and reports
# sessions moved per second from the join until the new node answers
# /readyz 200 and neither node reports an under-replicated partition.
# FG=0 moves with no foreground load at all. PROFILE=DIR saves 3 s CPU
# profiles of both nodes, from 0.3 s after the join, as DIR/{a,b}-ROUND.pprof,
# and the polled series as DIR/series-ROUND. TRANSFER_RATE, if set, is
# both nodes' --transfer-rate.
#
# Usage: scripts/bench-migration.sh
# Environment: N (1000000 sessions), VALUE_SIZE (200), FG (1), FG_WORKERS
# (8), FG_DURATION (10s), FG_KEYS (100000), ROUNDS (1), PROFILE (none),
# TRANSFER_RATE (the node's default).
cd "$(dirname "$0")/.."
. scripts/lib.sh

N=${N:-1000000}
VALUE_SIZE=${VALUE_SIZE:-200}
FG_WORKERS=${FG_WORKERS:-8}
FG_DURATION=${FG_DURATION:-10s}
FG=${FG:-1}
FG_KEYS=${FG_KEYS:-100000}
ROUNDS=${ROUNDS:-1}
PROFILE=${PROFILE:-}
TRANSFER_RATE=${TRANSFER_RATE:-}
rate_flag=()
[ -n "$TRANSFER_RATE" ] && rate_flag=(--transfer-rate "$TRANSFER_RATE")

build_bins
bin=$BENCH_TMP/bin

# metric HTTPADDR NAME prints one unlabelled metric's value (0 if absent).
metric() {
	curl -sf "http://$1/metrics" | awk -v n="$2" '$1 == n {v = $2} END {printf "%d\n", v + 0}'
}

# start_node NAME [--join GOSSIP]: starts a node; sets NATIVE, HTTP, GOSSIP.
start_node() {
	local name=$1
	shift
	local a g h
	a=$(free_port) g=$(free_port) h=$(free_port)
	start_bg "$bin/cloakroomd" --name "$name" --addr "127.0.0.1:$a" --resp-addr "" \
		--http-addr "127.0.0.1:$h" --http-pprof --gossip-addr "127.0.0.1:$g" --replicas 2 \
		--gossip-preset local --log-level warn ${rate_flag[@]+"${rate_flag[@]}"} "$@"
	wait_port "$a"
	NATIVE=127.0.0.1:$a HTTP=127.0.0.1:$h GOSSIP=127.0.0.1:$g
}

# fg ADDR DURATION: the foreground load's command line.
fg() {
	FG_CMD=("$bin/cloakctl" --addr "$1" bench --workers "$FG_WORKERS" --duration "$2"
		--value-size "$VALUE_SIZE" --keys "$FG_KEYS" --key-prefix fg: --ratio 50:50
		--json --progress 1s)
}

machine
echo "N=$N sessions of $VALUE_SIZE bytes; foreground (FG=$FG): $FG_WORKERS workers, 50:50 get:set over $FG_KEYS keys; baseline $FG_DURATION, then during the move; transfer rate ${TRANSFER_RATE:-default}"
for round in $(seq "$ROUNDS"); do
	start_node "mig-a-$round"
	a_native=$NATIVE a_http=$HTTP a_gossip=$GOSSIP a_pid=$BENCH_PID
	t0=$(date +%s.%N)
	"$bin/cloakctl" --addr "$a_native" bench --load-only --keys "$N" --value-size "$VALUE_SIZE" \
		--workers 50 --json --progress 0 >"$BENCH_TMP/load.json"
	echo "round $round: loaded $N sessions in $(python3 -c "import time; print(round(time.time() - $t0, 1))") s; node A rss $(($(rss_kib "$a_pid") / 1024)) MiB"

	if [ "$FG" = 1 ]; then
		fg "$a_native" "$FG_DURATION"
		"${FG_CMD[@]}" >"$BENCH_TMP/fg-alone.json" 2>/dev/null
		# Not in a subshell: a subshell would inherit lib.sh's traps.
		fg "$a_native" 600s
		"${FG_CMD[@]}" >"$BENCH_TMP/fg-move.json" 2>"$BENCH_TMP/fg-move.json.err" &
		fg_pid=$!
		# Join once the foreground has preloaded its keys and is measuring.
		until grep -q ops/s "$BENCH_TMP/fg-move.json.err" 2>/dev/null; do sleep 0.1; done
	fi
	start_node "mig-b-$round" --join "$a_gossip"
	b_http=$HTTP b_pid=$BENCH_PID
	join=$(date +%s.%N)
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		prof_pids=()
		for n in a b; do
			h=$a_http
			[ "$n" = b ] && h=$b_http
			sh -c 'sleep 0.3; exec curl -sf -o "$1" "$2"' - "$PROFILE/$n-$round.pprof" "http://$h/debug/pprof/profile?seconds=3" &
			prof_pids+=($!)
		done
	fi
	: >"$BENCH_TMP/series"
	while :; do
		now=$(date +%s.%N)
		moved=$(($(metric "$a_http" cloakroom_transfer_entries_total) + $(metric "$b_http" cloakroom_transfer_entries_total)))
		under=$(($(metric "$a_http" cloakroom_under_replicated_partitions) + $(metric "$b_http" cloakroom_under_replicated_partitions)))
		syncing=$(metric "$b_http" cloakroom_partitions_syncing)
		echo "$now $moved $syncing $under" >>"$BENCH_TMP/series"
		if [ "$under" = 0 ] && curl -sf "http://$b_http/readyz" >/dev/null; then
			break
		fi
		if python3 -c "import sys; sys.exit(0 if $now - $join > 600 else 1)"; then
			echo "no full replication 600 s after the join" >&2
			break
		fi
		sleep 0.2
	done
	if [ "$FG" = 1 ]; then
		kill -INT "$fg_pid"
		wait "$fg_pid" || true
	fi
	if [ -n "$PROFILE" ]; then
		wait "${prof_pids[@]}" || true
		cp "$BENCH_TMP/series" "$PROFILE/series-$round"
	fi
	echo "round $round: node B rss $(($(rss_kib "$b_pid") / 1024)) MiB"
	held=$N
	[ "$FG" = 1 ] && held=$((N + FG_KEYS))
	python3 - "$BENCH_TMP" "$join" "$held" <<'PY'
import json, os, sys
d, join, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = [list(map(float, l.split())) for l in open(os.path.join(d, "series")) if l.strip()]
moved = rows[-1][1]
first = next((r[0] for r in rows if r[1] > 0), rows[-1][0])
done = rows[-1][0]
print(f"join → fully replicated: {done - join:.2f} s; first entry moved {first - join:.2f} s after the join")
print(f"entries moved: {moved:.0f} ({moved / n:.2f} of the {n} sessions node A held); rate from the join: {moved / (done - join):,.0f}/s; from the first entry: {moved / max(done - first, 1e-9):,.0f}/s")
peak = 0.0
for a, b in zip(rows, rows[1:]):
    if b[0] > a[0]:
        peak = max(peak, (b[1] - a[1]) / (b[0] - a[0]))
print(f"peak rate over one poll interval: {peak:,.0f}/s")
for name in ("fg-alone", "fg-move"):
    if not os.path.exists(os.path.join(d, name + ".json")):
        continue
    try:
        r = json.load(open(os.path.join(d, name + ".json")))
    except ValueError:
        err = os.path.join(d, name + ".json.err")
        tail = open(err).read().strip().splitlines()[-3:] if os.path.exists(err) else []
        print(f"foreground {name:8s}: no report; its last output: {tail}")
        continue
    print(f"foreground {name:8s}: {r['ops_per_sec']:,.0f} ops/s, p50 {r['p50_us']} µs, p99 {r['p99_us']} µs, p99.9 {r['p999_us']} µs, errors {r['errors']}, misses {r['misses']}")
PY
	rm -f "$BENCH_TMP"/fg-*.json "$BENCH_TMP"/fg-*.json.err
	kill "$b_pid" "$a_pid" 2>/dev/null || true
	wait "$b_pid" "$a_pid" 2>/dev/null || true
done
