#!/usr/bin/env bash
# tools/loadtest.sh: latch's load test, on loopback, against a real
# `latch serve --dev` on SQLite. Results are recorded in BENCHMARKS.md.
#
# It builds latch, tools/loadgen and tools/seedtokens, then
#   phase A (fresh store): a no-op net/http baseline (loadgen -serve-noop,
#     run first and last; the ratios use the mean of the two),
#     client_credentials issuance (JWT ES256 and opaque), introspection of
#     an opaque token (one token, and 10,000 seeded tokens round-robin) and
#     of a JWT; each at -c $C for $D after a $WARMUP warm-up;
#   phase B: seeds $SEED_N more opaque tokens (tools/seedtokens), restarts
#     the server and re-runs the baseline and the opaque introspections;
#   phase C (refresh, login), on a fresh data dir: the no-op
#     baseline (first and last), client_credentials issuance (JWT) for
#     contrast, the refresh_token grant with rotation (JWT without and with
#     openid, and opaque; one chain per connection, seeded by a password
#     grant of a first-party client), and successful POST /login at the
#     shipped argon2id parameters at -c $LOGIN_C;
#   phase W (write paths, not in the default PHASES), on a fresh data dir:
#     the no-op baseline, opaque client_credentials issuance, the refresh
#     grant with opaque access tokens, the no-op again; ROUNDS times. With
#     BASE_BIN=/path/to/another/latch the same rows run against that binary
#     first in each round (phase Wn-base), so two builds compare in one run;
#     with W_SEED=N the rows run again on a store seeded with N live tokens
#     and W_FAMILIES (100,000) refresh-token families of the refresh
#     client (phase Wn-seeded), for the cost of a large store.
# It samples the server's VmRSS (idle, peak per run) and VmHWM from
# /proc/PID/status, its CPU time per request (utime + stime from
# /proc/PID/stat over the run: the server is CPU-bound when this times the
# req/s nears a core), and
# the 1-minute load average before each run (other work on the machine
# shows there), and prints a markdown table.
#
# Bounded: every server runs under `timeout`, every load run is bounded by
# -d and -n, and the trap stops what the script started. Loopback only.
#
# Usage: tools/loadtest.sh            (about 4.5 minutes; PHASES=C: 2 minutes)
#   env: C=16 D=10s WARMUP=1s SEED_N=1000000 KEEP=1 (keep the work dir)
#        OUT=DIR (write results.jsonl and table.md there)
#        PHASES="A B C" (any subset of A B C W; B needs A) LOGIN_C="2 4 16"
#        ROUNDS=1 BASE_BIN= W_SEED=0 W_FAMILIES=100000 (phase W)
set -euo pipefail

C=${C:-16}
D=${D:-10s}
WARMUP=${WARMUP:-1s}
SEED_N=${SEED_N:-1000000}
SMALL_N=${SMALL_N:-10000}
MAXREQ=${MAXREQ:-3000000}
PHASES=${PHASES:-A B C}
LOGIN_C=${LOGIN_C:-2 4 16}
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
if has_phase B && ! has_phase A; then
	echo "loadtest: PHASES=\"$PHASES\": phase B needs phase A" >&2
	exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/latch-loadtest.XXXXXX")
OUT=${OUT:-$WORK}
mkdir -p "$OUT"
BIN=$WORK/bin
DATA=$WORK/data
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

STARTED=() # pids of what this script started (timeout wrappers, samplers)
cleanup() {
	local p
	for p in "${STARTED[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "loadtest: $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

# child_of PID: the process `timeout` started (the one whose RSS we read).
child_of() {
	local i c
	for i in $(seq 1 100); do
		c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
		[ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.05
	done
	return 1
}

# status_kb PID FIELD: VmRSS or VmHWM in KiB.
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# cpu_ticks PID: utime + stime of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

log "building into $BIN"
(cd "$ROOT" && go build -o "$BIN/latch" ./cmd/latch && go build -o "$BIN/loadgen" ./tools/loadgen &&
	go build -o "$BIN/seedtokens" ./tools/seedtokens) || die "build"

# ---- servers ---------------------------------------------------------------

BIN_LATCH=$BIN/latch # the binary start_latch runs (phase W swaps in BASE_BIN)

LATCH_TPID= LATCH_PID= ADDR=
start_latch() { # start_latch LISTEN LOGNAME
	local listen=$1 name=$2 i
	timeout -s TERM 900 "$BIN_LATCH" serve --dev --listen "$listen" --data-dir "$DATA" \
		--log-format json --introspection-rate 1000000 >"$WORK/$name.out" 2>"$WORK/$name.err" &
	LATCH_TPID=$!
	STARTED+=("$LATCH_TPID")
	LATCH_PID=$(child_of "$LATCH_TPID") || die "latch did not start"
	ADDR=
	for i in $(seq 1 300); do
		ADDR=$(sed -nE 's/.*"msg":"latch listening".*"addr":"([^"]+)".*/\1/p' "$WORK/$name.err" | head -1)
		[ -n "$ADDR" ] && break
		kill -0 "$LATCH_TPID" 2>/dev/null || { cat "$WORK/$name.err" >&2; die "latch exited"; }
		sleep 0.05
	done
	[ -n "$ADDR" ] || die "no 'latch listening' line in $WORK/$name.err"
	log "latch pid $LATCH_PID listening on $ADDR"
}
stop_latch() {
	kill "$LATCH_TPID" 2>/dev/null || true
	wait "$LATCH_TPID" 2>/dev/null || true
}

timeout -s TERM 900 "$BIN/loadgen" -serve-noop 127.0.0.1:0 -serve-for 15m >"$WORK/noop.out" 2>"$WORK/noop.err" &
NOOP_TPID=$!
STARTED+=("$NOOP_TPID")
NOOP_PID=$(child_of "$NOOP_TPID") || die "no-op server did not start"
NOOP_ADDR=
for i in $(seq 1 100); do
	NOOP_ADDR=$(sed -nE 's/.*"noop_listening":"([^"]+)".*/\1/p' "$WORK/noop.out")
	[ -n "$NOOP_ADDR" ] && break
	sleep 0.05
done
[ -n "$NOOP_ADDR" ] || die "no-op server gave no address"
log "no-op server pid $NOOP_PID on $NOOP_ADDR"
NOOP_IDLE=$(status_kb "$NOOP_PID" VmRSS)

# ---- measurement -----------------------------------------------------------

# run PHASE NAME RSSPID LOADGEN-ARGS...: one load run; appends its JSON line,
# with the peak VmRSS of RSSPID during the run, to $RESULTS.
run() {
	local phase=$1 name=$2 rsspid=$3
	shift 3
	local peakf=$WORK/peak.$$ line rc=0 load1 cpu0 cpu1
	echo 0 >"$peakf"
	load1=$(awk '{print $1}' /proc/loadavg)
	# The CPU time counts from the end of the warm-up, as the requests do.
	(sleep "$WARMUP" && cpu_ticks "$rsspid" >"$WORK/cpu0.$$") &
	local cpid=$!
	(
		peak=0
		while kill -0 "$rsspid" 2>/dev/null; do
			r=$(status_kb "$rsspid" VmRSS 2>/dev/null || echo 0)
			[ "${r:-0}" -gt "$peak" ] && { peak=$r; echo "$peak" >"$peakf"; }
			sleep 0.2
		done
	) &
	local spid=$!
	STARTED+=("$spid")
	log "$phase / $name"
	line=$(timeout 120 "$BIN/loadgen" -c "$C" -d "$D" -warmup "$WARMUP" -n "$MAXREQ" -label "$name" "$@") || rc=$?
	cpu1=$(cpu_ticks "$rsspid")
	wait "$cpid" 2>/dev/null || true
	cpu0=$(cat "$WORK/cpu0.$$" 2>/dev/null || echo "$cpu1")
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	[ -n "$line" ] || die "$name: loadgen gave no result (exit $rc)"
	[ "$rc" -eq 0 ] || log "WARNING: $name had errors: $line"
	echo "$line" | jq -c --arg phase "$phase" --argjson rss "$(cat "$peakf")" --arg load1 "$load1" \
		--argjson ticks "$((cpu1 - cpu0))" --argjson hz "$CLK_TCK" \
		'. + {phase: $phase, server_rss_peak_kb: $rss, load1_before: ($load1 | tonumber),
		      server_cpu_us_per_req: (if .requests > 0 then $ticks * 1000000 / $hz / .requests | floor else null end)}' >>"$RESULTS"
}

issue() { # issue CLIENT SECRET -> access token
	curl -sf --max-time 5 -u "$1:$2" -d grant_type=client_credentials -d scope=read "http://$ADDR/oauth2/token" | jq -r .access_token
}

# ---- phase A: fresh store --------------------------------------------------

if has_phase A; then
	start_latch 127.0.0.1:0 serve1
	PORT=${ADDR##*:}
	DEV_SECRET=$(sed -nE 's/^ *client_secret: *([^ ]+).*/\1/p' "$WORK/serve1.out")
	[ -n "$DEV_SECRET" ] || die "no client_secret in serve --dev output"
	"$BIN/latch" client create --data-dir "$DATA" --name loadtest-opaque --format opaque --audience api --scope read --json >"$WORK/opaque.json"
	OPQ_ID=$(jq -r .client_id "$WORK/opaque.json")
	OPQ_SECRET=$(jq -r .client_secret "$WORK/opaque.json")
	sleep 2
	IDLE_A=$(status_kb "$LATCH_PID" VmRSS)

	# Test data: the public-API insert rate (a probe), then $SMALL_N tokens
	# to introspect round-robin on the small store.
	"$BIN/seedtokens" -data-dir "$DATA" -client-id "$OPQ_ID" -method api -workers 16 -n 5000 -sample 0 >"$WORK/seed_api.json"
	"$BIN/seedtokens" -data-dir "$DATA" -client-id "$OPQ_ID" -method sql -n "$SMALL_N" -sample "$SMALL_N" \
		-sample-out "$WORK/small.txt" >"$WORK/seed_small.json" 2>/dev/null
	log "api insert probe: $(cat "$WORK/seed_api.json")"

	JWT=$(issue dev "$DEV_SECRET")
	OPQ=$(issue "$OPQ_ID" "$OPQ_SECRET")
	case $OPQ in lt_at_*) ;; *) die "opaque client issued $OPQ" ;; esac

	U=http://$ADDR
	run A "no-op net/http" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	run A "token client_credentials JWT ES256" "$LATCH_PID" -mode token -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format jwt
	run A "token client_credentials opaque" "$LATCH_PID" -mode token -url "$U" -client-id "$OPQ_ID" -client-secret "$OPQ_SECRET" -format opaque
	run A "introspect opaque (1 token)" "$LATCH_PID" -mode introspect -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format opaque -token "$OPQ"
	run A "introspect opaque ($SMALL_N tokens)" "$LATCH_PID" -mode introspect -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format opaque -token-file "$WORK/small.txt"
	run A "introspect JWT" "$LATCH_PID" -mode introspect -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format jwt -token "$JWT"
	run A "no-op net/http (again)" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	HWM_A=$(status_kb "$LATCH_PID" VmHWM)
	stop_latch
fi

# ---- phase B: a million more live opaque tokens ----------------------------

if has_phase B; then
	log "seeding $SEED_N opaque tokens"
	"$BIN/seedtokens" -data-dir "$DATA" -client-id "$OPQ_ID" -method sql -n "$SEED_N" -sample "$SMALL_N" \
		-sample-out "$WORK/big.txt" >"$WORK/seed_big.json" 2>/dev/null
	log "seed: $(cat "$WORK/seed_big.json")"
	DB_MIB=$(du -sm "$DATA" | awk '{print $1}')

	start_latch "127.0.0.1:$PORT" serve2
	sleep 2
	IDLE_B=$(status_kb "$LATCH_PID" VmRSS)
	OPQ=$(issue "$OPQ_ID" "$OPQ_SECRET")
	run B "no-op net/http" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	run B "introspect opaque (1 token)" "$LATCH_PID" -mode introspect -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format opaque -token "$OPQ"
	run B "introspect opaque ($SMALL_N of the seeded tokens)" "$LATCH_PID" -mode introspect -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format opaque -token-file "$WORK/big.txt"
	run B "no-op net/http (again)" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	HWM_B=$(status_kb "$LATCH_PID" VmHWM)
	stop_latch
fi

# ---- phase C: refresh rotation and login ----------------------------------

if has_phase C; then
	DATA=$WORK/data_c
	start_latch 127.0.0.1:0 serve3
	DEV_SECRET=$(sed -nE 's/^ *client_secret: *([^ ]+).*/\1/p' "$WORK/serve3.out")
	[ -n "$DEV_SECRET" ] || die "no client_secret in serve --dev output"
	# A first-party client for the password grant (to seed each
	# connection's chain, unmeasured) and the refresh_token grant, one per
	# access-token format; and a user whose hash has the shipped argon2id
	# parameters (latch user create's defaults).
	for f in jwt opaque; do
		"$BIN/latch" client create --data-dir "$DATA" --name "loadtest-refresh-$f" --first-party \
			--grant password,refresh_token --scope "openid read" --audience api --format "$f" --json >"$WORK/refresh-$f.json"
	done
	PWFILE=$WORK/password
	(umask 077 && printf '%s\n' "loadtest $(head -c 18 /dev/urandom | base64)" >"$PWFILE")
	"$BIN/latch" user create loadtest-user --data-dir "$DATA" --password-stdin <"$PWFILE" >/dev/null
	sleep 2
	IDLE_C=$(status_kb "$LATCH_PID" VmRSS)
	RJ_ID=$(jq -r .client_id "$WORK/refresh-jwt.json")
	RJ_SECRET=$(jq -r .client_secret "$WORK/refresh-jwt.json")
	RO_ID=$(jq -r .client_id "$WORK/refresh-opaque.json")
	RO_SECRET=$(jq -r .client_secret "$WORK/refresh-opaque.json")
	U=http://$ADDR
	USER_ARGS=(-username loadtest-user -password-file "$PWFILE")
	run C "no-op net/http" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	run C "token client_credentials JWT ES256" "$LATCH_PID" -mode token -url "$U" -client-id dev -client-secret "$DEV_SECRET" -format jwt
	run C "refresh JWT (scope read)" "$LATCH_PID" -mode refresh -url "$U" -client-id "$RJ_ID" -client-secret "$RJ_SECRET" \
		-format jwt -scope read "${USER_ARGS[@]}"
	run C "refresh JWT + ID token (scope openid read)" "$LATCH_PID" -mode refresh -url "$U" -client-id "$RJ_ID" -client-secret "$RJ_SECRET" \
		-format jwt -scope "openid read" "${USER_ARGS[@]}"
	run C "refresh opaque (scope read)" "$LATCH_PID" -mode refresh -url "$U" -client-id "$RO_ID" -client-secret "$RO_SECRET" \
		-format opaque -scope read "${USER_ARGS[@]}"
	for lc in $LOGIN_C; do
		run C "login POST /login argon2id default (c=$lc)" "$LATCH_PID" -mode login -url "$U" -c "$lc" "${USER_ARGS[@]}"
	done
	run C "no-op net/http (again)" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	HWM_C=$(status_kb "$LATCH_PID" VmHWM)
	# Every refresh left its spent predecessor in the store (rotated_at set).
	stop_latch
fi

# ---- phase W: the write paths, this tree beside BASE_BIN ------------------

# write_rows PHASE BIN [SEED]: on a fresh data dir served by BIN (with SEED
# opaque tokens seeded first, tools/seedtokens), the no-op
# baseline, opaque client_credentials issuance (one INSERT per token), the
# refresh grant with opaque access tokens (one rotation per request), and
# the no-op again.
write_rows() {
	local phase=$1 bin=$2 saved=$BIN_LATCH
	BIN_LATCH=$bin
	DATA=$WORK/data_$phase
	start_latch 127.0.0.1:0 "serve_$phase"
	"$bin" client create --data-dir "$DATA" --name loadtest-opaque --format opaque --audience api --scope read --json >"$WORK/w-opaque.json"
	"$bin" client create --data-dir "$DATA" --name loadtest-refresh --first-party \
		--grant password,refresh_token --scope "openid read" --audience api --format opaque --json >"$WORK/w-refresh.json"
	PWFILE=$WORK/password
	(umask 077 && printf '%s\n' "loadtest $(head -c 18 /dev/urandom | base64)" >"$PWFILE")
	"$bin" user create loadtest-user --data-dir "$DATA" --password-stdin <"$PWFILE" >/dev/null
	local U=http://$ADDR
	if [ "${3:-0}" -gt 0 ]; then
		log "$phase: seeding $3 opaque tokens and ${W_FAMILIES:-100000} refresh families"
		"$BIN/seedtokens" -data-dir "$DATA" -client-id "$(jq -r .client_id "$WORK/w-opaque.json")" -method sql \
			-n "$3" -sample 0 -families "${W_FAMILIES:-100000}" -family-client "$(jq -r .client_id "$WORK/w-refresh.json")" \
			-family-user loadtest-user >"$WORK/seed_$phase.json" 2>/dev/null || die "seedtokens"
	fi
	run "$phase" "no-op net/http" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	run "$phase" "token client_credentials opaque" "$LATCH_PID" -mode token -url "$U" \
		-client-id "$(jq -r .client_id "$WORK/w-opaque.json")" -client-secret "$(jq -r .client_secret "$WORK/w-opaque.json")" -format opaque
	run "$phase" "refresh opaque (scope read)" "$LATCH_PID" -mode refresh -url "$U" \
		-client-id "$(jq -r .client_id "$WORK/w-refresh.json")" -client-secret "$(jq -r .client_secret "$WORK/w-refresh.json")" \
		-format opaque -scope read -username loadtest-user -password-file "$PWFILE"
	run "$phase" "no-op net/http (again)" "$NOOP_PID" -mode noop -url "http://$NOOP_ADDR/" -client-id x -client-secret y
	stop_latch
	BIN_LATCH=$saved
}

if has_phase W; then
	for r in $(seq 1 "${ROUNDS:-1}"); do
		if [ -n "${BASE_BIN:-}" ]; then write_rows "W$r-base" "$BASE_BIN"; fi
		write_rows "W$r" "$BIN/latch"
		if [ "${W_SEED:-0}" -gt 0 ]; then write_rows "W$r-seeded" "$BIN/latch" "$W_SEED"; fi
	done
fi

# ---- report ----------------------------------------------------------------

{
	echo "| phase | run | c | req/s | vs no-op | p50 µs | p90 µs | p99 µs | p99 / p50 | max µs | errors | server CPU µs/req | peak RSS MiB | load before |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	jq -rs '
	  (map(select(.mode == "noop")) | group_by(.phase)
	    | map({key: .[0].phase, value: (map(.rps) | add / length)}) | from_entries) as $noop
	  | .[] | "| \(.phase) | \(.label) | \(.c) | \(.rps | floor) | \((.rps / $noop[.phase] * 100) | floor) % | \(.p50_us) | \(.p90_us) | \(.p99_us) | \(if .p50_us > 0 then (.p99_us / .p50_us * 10 | floor) / 10 else "-" end) | \(.max_us) | \(if .errors > 0 or (.chains_broken // 0) > 0 then "**\(.errors)** \(.error_kinds) chains broken: \(.chains_broken // 0)" else "0" end) | \(.server_cpu_us_per_req // "-") | \((.server_rss_peak_kb / 1024 * 10 | floor) / 10) | \(.load1_before) |"' "$RESULTS"
	echo
	if has_phase A; then
		TOTAL=$(jq -r .total_tokens "$WORK/seed_big.json" 2>/dev/null || echo "?")
		echo "Phase A: fresh store (+ $SMALL_N seeded tokens). Phase B: $TOTAL opaque tokens in the store (data dir ${DB_MIB:-?} MiB), server restarted."
	fi
	if has_phase C; then
		echo "Phase C: fresh store; each refresh connection rotates its own chain (seeded by one unmeasured password grant); login: POST /login with the shipped argon2id parameters, a session created per login."
		echo "The refresh rows' peak RSS includes the $C password grants that seed the chains (argon2id, 19 MiB each) before the clock starts."
	fi
	echo "vs no-op: req/s over the mean of the phase's two no-op runs (one first, one last), same generator, same -d (the no-op at -c $C)."
	echo "Peak RSS: of latch serve during the run (the no-op rows: of the no-op server), sampled every 0.2 s. load before: the 1-minute load average as the run began."
	echo
	echo "| latch serve memory | MiB |"
	echo "|---|---:|"
	if has_phase A; then
		echo "| VmRSS idle, fresh store | $(mib "$IDLE_A") |"
		echo "| VmHWM after phase A (peak under load) | $(mib "$HWM_A") |"
	fi
	if has_phase B; then
		echo "| VmRSS idle, $TOTAL tokens | $(mib "$IDLE_B") |"
		echo "| VmHWM after phase B | $(mib "$HWM_B") |"
	fi
	if has_phase C; then
		echo "| VmRSS idle, phase C (fresh store) | $(mib "$IDLE_C") |"
		echo "| VmHWM after phase C (logins included) | $(mib "$HWM_C") |"
	fi
	echo "| (no-op server VmRSS idle) | $(mib "$NOOP_IDLE") |"
	if has_phase B; then
		echo
		echo "Token inserts through the store API (sqlite.DB.CreateToken, 16 goroutines, synchronous=FULL): $(jq -r '.rows_per_s | floor' "$WORK/seed_api.json")/s;"
		echo "seedtokens -method sql: $(jq -r '.rows_per_s | floor' "$WORK/seed_big.json")/s ($SEED_N rows in $(jq -r '.seconds * 10 | floor / 10' "$WORK/seed_big.json") s)."
	fi
} | tee "$OUT/table.md"
if jq -e 'select(.errors > 0 or (.chains_broken // 0) > 0)' "$RESULTS" >/dev/null; then
	log "SOME RUNS HAD ERRORS (see the errors column)"
	exit 2
fi
