#!/usr/bin/env bash
# bench-scan.sh times one SCAN call whose pattern is costly to match: a
# character class of 1,000 bytes, against 20,000 keys of 1 KiB, at COUNT
# 10 and COUNT 1000, on redis-server and on one cloakroomd node (and on a
# second cloakroomd binary, BENCH_ALT, to compare builds).
#
#   SCAN 0 MATCH "*[bcbc…bc]" COUNT n
#
# Matching such a pattern costs about a millisecond a key, so what a call
# costs depends on how many keys it examines: Redis visits about ten times
# COUNT buckets; a cloakroomd page examines ten times COUNT keys, a key
# whose match takes more than 1,024 steps counting as several.
#
# Usage: [BENCH_ALT=/path/to/cloakroomd] scripts/bench-scan.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=${1:-3}
need redis-server redis-cli python3
build_bins

# The keys: NNNNNN followed by 1,000 'a's, none matching the pattern.
python3 - "$BENCH_TMP/fill.resp" <<'EOF'
import sys
with open(sys.argv[1], 'wb') as out:
    for i in range(20000):
        k = ('%06d' % i + 'a' * 1000).encode()
        out.write(b'*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n' % (len(k), k))
EOF
pattern="*[$(python3 -c 'print("bc" * 500)')]"

# ms runs its arguments and prints how long they took, in ms.
ms() {
	local t0
	t0=$(date +%s%N)
	"$@" >/dev/null
	echo $((($(date +%s%N) - t0) / 1000000))
}

targets=(redis-server cloakroomd)
if [[ -n ${BENCH_ALT:-} ]]; then targets+=(alt); fi

machine
echo
printf '%-14s %6s %14s %16s\n' server round "COUNT 10 ms" "COUNT 1000 ms"
for round in $(seq "$rounds"); do
	for target in "${targets[@]}"; do
		port=$(free_port)
		case $target in
		redis-server)
			start_bg redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$BENCH_TMP" ;;
		*)
			bin=$BENCH_TMP/bin/cloakroomd
			if [[ $target == alt ]]; then bin=$BENCH_ALT; fi
			start_bg "$bin" --name scan --addr "127.0.0.1:$(free_port)" --resp-addr "127.0.0.1:$port" \
				--http-addr "" --gossip-addr "127.0.0.1:$(free_port)" --log-level warn ;;
		esac
		server=$BENCH_PID
		wait_port "$port"
		redis-cli -p "$port" --pipe <"$BENCH_TMP/fill.resp" >/dev/null
		keys=$(redis-cli -p "$port" dbsize)
		if [[ $keys != 20000 ]]; then
			echo "$target holds $keys keys; want 20000" >&2
			exit 1
		fi
		c10=$(ms redis-cli -p "$port" scan 0 match "$pattern" count 10)
		c1000=$(ms redis-cli -p "$port" scan 0 match "$pattern" count 1000)
		kill "$server"
		wait "$server" 2>/dev/null || true
		printf '%-14s %6s %14s %16s\n' "$target" "$round" "$c10" "$c1000"
	done
done
