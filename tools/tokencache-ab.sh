#!/usr/bin/env bash
# tools/tokencache-ab.sh: opaque introspection with the token cache off and
# on, same binary, alternating servers in one run, with a no-op net/http
# baseline between rounds (BENCHMARKS.md, "Cache off against cache on").
# Loopback only; every process runs under `timeout` and the trap stops it.
#
# Usage: tools/tokencache-ab.sh      env: ROUNDS=3 D=8s C=16 PORT=18089 NOOP_PORT=18090
set -euo pipefail
ROUNDS=${ROUNDS:-3}
D=${D:-8s}
C=${C:-16}
PORT=${PORT:-18089}
NOOP_PORT=${NOOP_PORT:-18090}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/latch-ab.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$WORK/latch" ./cmd/latch && go build -o "$WORK/loadgen" ./tools/loadgen)
timeout 30m "$WORK/loadgen" -serve-noop "127.0.0.1:$NOOP_PORT" -serve-for 30m >/dev/null 2>&1 &
PIDS+=($!)

SRV=
start() { # $1: --token-cache-size
	timeout 10m "$WORK/latch" serve --dev --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
		--introspection-rate 1000000 --token-cache-size "$1" >"$WORK/serve.log" 2>&1 &
	SRV=$!
	PIDS+=("$SRV")
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
	echo "tokencache-ab: server did not start" >&2
	exit 1
}
stop() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

start 0
SECRET=$(awk '/client_secret:/ {print $2}' "$WORK/serve.log")
OS=$("$WORK/latch" client create --data-dir "$WORK/data" --id op --format opaque --audience api --scope read --json | json client_secret)
issue() { curl -s -u "op:$OS" -d grant_type=client_credentials -d scope=read "http://127.0.0.1:$PORT/oauth2/token" | json access_token; }
TOKEN=$(issue)
for _ in $(seq 300); do issue; done >"$WORK/tokens"
stop

run() { # $1 url, $2 mode, $3 label, rest: loadgen flags
	local url=$1 mode=$2 label=$3
	shift 3
	"$WORK/loadgen" -url "$url" -mode "$mode" -c "$C" -d "$D" -warmup 1s -client-id dev -client-secret "$SECRET" "$@" |
		python3 -c "import json,sys; d=json.load(sys.stdin); print('| %s | %.0f | %.0f | %.0f | %d |' % (sys.argv[1], d['rps'], d['p50_us'], d['p99_us'], d['errors']))" "$label"
}
echo "| run | req/s | p50 µs | p99 µs | errors |"
echo "|---|---:|---:|---:|---:|"
for _ in $(seq "$ROUNDS"); do
	run "http://127.0.0.1:$NOOP_PORT" noop "no-op"
	for size in 0 100000; do
		start "$size"
		run "http://127.0.0.1:$PORT" introspect "cache=$size, 1 token" -token "$TOKEN"
		run "http://127.0.0.1:$PORT" introspect "cache=$size, 300 tokens" -token-file "$WORK/tokens"
		stop
	done
done
run "http://127.0.0.1:$NOOP_PORT" noop "no-op"
