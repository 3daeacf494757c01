#!/usr/bin/env bash
# Browser test: builds cloakroomd and cloakroom-demo, starts them on free
# loopback ports, and runs demo.test.mjs (headless Chromium via
# playwright-core) with node's built-in test runner. Every process it starts
# is stopped on exit.
#
# Without Chromium it prints a skip message and exits 0, unless CI is set: in
# CI it installs the Debian package or fails.
#
#   integration/browser/run.sh          # from anywhere
#   CHROMIUM=/path/to/chrome run.sh     # another browser binary
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}

if [[ ! -x $chromium ]]; then
	if [[ -z ${CI:-} ]]; then
		echo "SKIP browser test: $chromium not found (apt-get install -y chromium); set CI=true to require it"
		exit 0
	fi
	echo "browser test: installing chromium (CI)"
	if command -v apt-get >/dev/null; then
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >/tmp/cloakroom-apt.log 2>&1 ||
			{ tail -20 /tmp/cloakroom-apt.log; echo "browser test: FAILED to install chromium" >&2; exit 1; }
	fi
	[[ -x $chromium ]] || { echo "browser test: FAILED: $chromium not found under CI" >&2; exit 1; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $rc -ne 0 ]]; then
		for f in "$work"/*.log; do
			[[ -f $f ]] && { echo "--- $(basename "$f") (last 30 lines)"; tail -30 "$f"; }
		done
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "browser test: building binaries"
(cd "$root" && go build -o "$work/cloakroomd" ./cmd/cloakroomd && go build -o "$work/cloakroom-demo" ./cmd/cloakroom-demo)

if [[ ! -d $here/node_modules/playwright-core ]]; then
	echo "browser test: npm ci"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Ask the kernel for free loopback ports (each bound to :0, then released).
read -r native gossip web < <(node -e '
const net = require("node:net");
const servers = [0, 1, 2].map(() => net.createServer().listen(0, "127.0.0.1"));
Promise.all(servers.map((s) => new Promise((r) => s.on("listening", r)))).then(() => {
  console.log(servers.map((s) => s.address().port).join(" "));
  servers.forEach((s) => s.close());
});')

# wait_port HOST:PORT NAME PID: poll until a TCP connect succeeds (30 s).
wait_port() {
	local host=${1%:*} port=${1##*:} deadline=$((SECONDS + 30))
	until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
		if ! kill -0 "$3" 2>/dev/null; then
			echo "browser test: $2 exited before listening on $1" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "browser test: $2 not listening on $1 after 30s" >&2
			return 1
		fi
		sleep 0.1
	done
}

"$work/cloakroomd" --name browser-test --addr "127.0.0.1:$native" --resp-addr "" --http-addr "" \
	--gossip-addr "127.0.0.1:$gossip" >"$work/cloakroomd.log" 2>&1 &
pids+=($!)
wait_port "127.0.0.1:$native" cloakroomd "${pids[-1]}"

"$work/cloakroom-demo" --listen "127.0.0.1:$web" --cluster "127.0.0.1:$native" --insecure-cookies \
	>"$work/demo.log" 2>&1 &
pids+=($!)
wait_port "127.0.0.1:$web" cloakroom-demo "${pids[-1]}"

echo "browser test: cloakroomd on 127.0.0.1:$native, demo on http://127.0.0.1:$web"
cd "$here"
DEMO_URL="http://127.0.0.1:$web" CHROMIUM="$chromium" node --test --test-reporter=spec demo.test.mjs
