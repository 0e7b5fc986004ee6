#!/usr/bin/env bash
# Side-by-side benchmark of Switchboard and the Socket.io peer (../shared/peers/socketio-seed), plus the write
# floor of this machine, written into BENCHMARKS.md (its generated part). See bench/README.md.
#
#   bench/compare.sh                                  # the full sweep: 1k/5k/10k conns × 10/100/1000 rooms
#   POINTS="1000:10 5000:100" SECONDS=5 bench/compare.sh
#
# Environment (all optional):
#   POINTS       "conns:rooms …"; combinations with rooms > conns are skipped
#   SECONDS      measured seconds per run (default 10; bash's own SECONDS counter is read once, first thing)
#   TARGET_DPS   deliveries per second each point aims at (default 20000): rate = TARGET_DPS / room size …
#   MAX_RATE     … but at most this many messages per second (default 500: every message is persisted)
#   FLOOR_RATE   the floor's writes per second (default TARGET_DPS)
#   RATE         a fixed message rate for every point instead; SENDERS a fixed sender count
#   FEED         Switchboard's -feed (default sim, as deployed; none removes the ticker's background work)
#   PEER_DIR     a prepared copy of the peer with node_modules (default: a fresh copy and `npm ci`, ~2 min)
#   WORK         where builds, databases and results go (default: a new temp dir; kept)
#   OUT          the report (default: BENCHMARKS.md at the repo root)
#   SB_PORT, PEER_PORT   (default 3100, 3101)   SERVER_CPU, LOAD_CPU   (default 1 and 0)
#   NOTE         a line put at the top of the report (e.g. "noisy: other jobs were running")
# ---------------------------------------------------------------------------------------------------------------
BENCH_SECONDS=${BENCH_SECONDS:-$SECONDS} # must be the first line that reads SECONDS
set -euo pipefail
[[ "$BENCH_SECONDS" =~ ^[0-9]+$ && "$BENCH_SECONDS" -gt 0 ]] || BENCH_SECONDS=10

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POINTS=${POINTS:-"1000:10 1000:100 1000:1000 5000:10 5000:100 5000:1000 10000:10 10000:100 10000:1000"}
TARGET_DPS=${TARGET_DPS:-20000}
MAX_RATE=${MAX_RATE:-500}
FLOOR_RATE=${FLOOR_RATE:-$TARGET_DPS}
FEED=${FEED:-sim}
SB_PORT=${SB_PORT:-3100}
PEER_PORT=${PEER_PORT:-3101}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
WORK=${WORK:-$(mktemp -d /tmp/switchboard-bench.XXXXXX)}
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peers/socketio-seed}
RESULTS=$WORK/results

log() { printf 'compare: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in go node npm taskset curl; do command -v "$tool" >/dev/null || die "needs $tool on PATH"; done
[[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs; pinning server and load to different cores is impossible"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
mkdir -p "$WORK/bin" "$RESULTS/floor" "$RESULTS/points"
log "work dir $WORK"

# ---- build
log "building switchboard, loadgen, floor, report"
(cd "$ROOT" && go build -o "$WORK/bin/switchboard" . && go build -o "$WORK/bin/loadgen" ./cmd/loadgen &&
	go build -o "$WORK/bin/floor" ./bench/floor && go build -o "$WORK/bin/report" ./bench/report)

# ---- the peer: a copy outside the repo with its own node_modules
if [[ -z "${PEER_DIR:-}" ]]; then
	[[ -f "$PEER_SRC/server.js" ]] || die "no peer at $PEER_SRC (set PEER_SRC or PEER_DIR)"
	PEER_DIR=$WORK/peer
	mkdir -p "$PEER_DIR"
	cp -r "$PEER_SRC/." "$PEER_DIR/"
fi
if [[ ! -d "$PEER_DIR/node_modules/socket.io" ]]; then
	log "npm ci in $PEER_DIR (builds better-sqlite3)"
	(cd "$PEER_DIR" && npm ci --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1) || die "npm ci failed: see $WORK/npm-ci.log"
fi

# ---- helpers
wait_healthy() { # url, pid
	for _ in $(seq 1 200); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -fsS -o /dev/null --max-time 1 "$1/healthz" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
stop_server() { # pid
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
SERVER_PID=
cleanup() { [[ -n "$SERVER_PID" ]] && stop_server "$SERVER_PID"; }
trap cleanup EXIT
# run_timed OUT ERR TIME cmd…: runs the command with its CPU time in TIME (user sys real), never failing the script
run_timed() {
	local out=$1 err=$2 tf=$3
	shift 3
	local TIMEFORMAT='%U %S %R'
	{ time timeout "$((BENCH_SECONDS + 600))" "$@" >"$out" 2>"$err"; } 2>"$tf" || log "  failed ($(tail -n 2 "$err" | tr '\n' ' '))"
}
source_ips() { # enough source addresses for n sockets (28k ports each; keep well below)
	local n=$1 k=$((n / 15000 + 1)) ips="127.0.0.1" i
	for ((i = 2; i <= k; i++)); do ips+=",127.0.0.$i"; done
	echo "$ips"
}

SB_FLAGS="-feed $FEED -send-rate 100000 -send-burst 100000 -max-user-conns 100000"
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "nproc=$(nproc)"
	echo "model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "kernel=$(uname -r)"
	echo "go=$(go version | cut -d' ' -f3-)"
	echo "node=$(node --version)"
	echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "seconds=$BENCH_SECONDS"
	echo "floor_frame=204"
	echo "note=${NOTE:-}"
	echo "server_cmd=GOMAXPROCS=1 taskset -c $SERVER_CPU switchboard -addr 127.0.0.1:$SB_PORT -db <fresh>.db $SB_FLAGS   # then: GOMAXPROCS=1 taskset -c $LOAD_CPU loadgen --url http://127.0.0.1:$SB_PORT --pid <pid> --conns C --rooms R --senders S --rate M --seconds $BENCH_SECONDS"
	echo "peer_cmd=PORT=$PEER_PORT DB=<fresh>.db taskset -c $SERVER_CPU node server.js   # then: taskset -c $LOAD_CPU node loadgen.js --url http://127.0.0.1:$PEER_PORT --pid <pid> --conns C --rooms R --senders S --rate M --seconds $BENCH_SECONDS"
	echo "floor_cmd=GOMAXPROCS=1 taskset -c $SERVER_CPU floor --conns C --rate $FLOOR_RATE --seconds $BENCH_SECONDS --reader-cpus $LOAD_CPU"
} >"$RESULTS/meta.txt"

# ---- the floor, once per connection count of the sweep
declare -A seen_conns=()
for p in $POINTS; do seen_conns[${p%%:*}]=1; done
for c in $(printf '%s\n' "${!seen_conns[@]}" | sort -n); do
	log "floor: $c connections at $FLOOR_RATE writes/s"
	cmd=(env GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$WORK/bin/floor" --conns "$c" --rate "$FLOOR_RATE" --seconds "$BENCH_SECONDS" --reader-cpus "$LOAD_CPU")
	echo "${cmd[*]}" >"$RESULTS/floor/$c.cmd"
	"${cmd[@]}" >"$RESULTS/floor/$c.json" 2>"$RESULTS/floor/$c.err" || log "  floor failed: $(tail -n 2 "$RESULTS/floor/$c.err")"
done

# ---- the points
for p in $POINTS; do
	conns=${p%%:*} rooms=${p##*:}
	if ((rooms > conns)); then
		log "skip $conns × $rooms: more rooms than connections"
		continue
	fi
	size=$((conns / rooms))
	rate=${RATE:-$((TARGET_DPS / size))}
	((rate > MAX_RATE)) && [[ -z "${RATE:-}" ]] && rate=$MAX_RATE
	((rate < 1)) && rate=1
	senders=${SENDERS:-$(((rate + 49) / 50))} # at most 50 messages/s per sender (the peer uses setInterval)
	((senders < 10)) && senders=10
	((senders > conns)) && senders=$conns
	dir=$RESULTS/points/${conns}x${rooms}
	mkdir -p "$dir"
	args=(--conns "$conns" --rooms "$rooms" --senders "$senders" --rate "$rate" --seconds "$BENCH_SECONDS")
	extra=()
	((conns > 15000)) && extra=(--source-ips "$(source_ips "$conns")")

	log "$conns × $rooms: switchboard (rate $rate msg/s, $senders senders)"
	db=$WORK/sb-${conns}x${rooms}.db
	rm -f "$db" "$db-wal" "$db-shm"
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$WORK/bin/switchboard" -addr "127.0.0.1:$SB_PORT" -db "$db" $SB_FLAGS >"$dir/ours.server.log" 2>&1 &
	SERVER_PID=$!
	if wait_healthy "http://127.0.0.1:$SB_PORT" "$SERVER_PID"; then
		cmd=(env GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$WORK/bin/loadgen" --url "http://127.0.0.1:$SB_PORT" --pid "$SERVER_PID" "${args[@]}" "${extra[@]}")
		echo "${cmd[*]}" >"$dir/ours.cmd"
		run_timed "$dir/ours.json" "$dir/ours.err" "$dir/ours.time" "${cmd[@]}"
	else
		echo "switchboard did not become healthy: $(tail -n 3 "$dir/ours.server.log")" >"$dir/ours.err"
		log "  switchboard did not start"
	fi
	stop_server "$SERVER_PID"
	SERVER_PID=

	log "$conns × $rooms: socket.io peer"
	pdb=$WORK/peer-${conns}x${rooms}.db
	rm -f "$pdb" "$pdb-wal" "$pdb-shm"
	(cd "$PEER_DIR" && PORT=$PEER_PORT DB=$pdb exec taskset -c "$SERVER_CPU" node server.js) >"$dir/peer.server.log" 2>&1 &
	SERVER_PID=$!
	if wait_healthy "http://127.0.0.1:$PEER_PORT" "$SERVER_PID"; then
		cmd=(taskset -c "$LOAD_CPU" node "$PEER_DIR/loadgen.js" --url "http://127.0.0.1:$PEER_PORT" --pid "$SERVER_PID" "${args[@]}")
		echo "${cmd[*]}" >"$dir/peer.cmd"
		run_timed "$dir/peer.json" "$dir/peer.err" "$dir/peer.time" "${cmd[@]}"
	else
		echo "the peer did not become healthy: $(tail -n 3 "$dir/peer.server.log")" >"$dir/peer.err"
		log "  the peer did not start"
	fi
	stop_server "$SERVER_PID"
	SERVER_PID=
	sleep 1
done

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/meta.txt"
"$WORK/bin/report" --dir "$RESULTS" --out "$OUT"
log "wrote $OUT (raw results in $RESULTS)"
