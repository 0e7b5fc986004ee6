#!/bin/bash
# Two instances against one, same total connections, on Postgres + Redis (issue 7). Needs Postgres at
# 127.0.0.1:5432 (trust auth, database test) and redis-server on PATH; prints one loadgen JSON line per run.
set -u
BIN=$(mktemp -d)
cd "$(dirname "$0")/.."
go build -o "$BIN"/switchboard . && go build -o "$BIN"/loadgen ./cmd/loadgen || exit 1
redis-server --port 6390 --save "" --appendonly no --daemonize no > "$BIN"/redis.log 2>&1 &
RPID=$!
sleep 0.5
run() { # run <label> <n instances>
  local label=$1 n=$2 schema="bench_$(date +%s%N)"
  psql -h 127.0.0.1 -U postgres -d test -qc "CREATE SCHEMA $schema" >/dev/null
  local db="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=$schema"
  redis-cli -p 6390 flushall >/dev/null
  local pids=() urls=()
  for i in $(seq 1 $n); do
    port=$((3300 + i))
    GOMAXPROCS=1 taskset -c 1 "$BIN"/switchboard -addr 127.0.0.1:$port -db "$db" -redis redis://127.0.0.1:6390/0 -feed none \
      -send-rate 100000 -send-burst 100000 -max-user-conns 100000 > "$BIN"/switchboard-$i.log 2>&1 &
    pids+=($!); urls+=("http://127.0.0.1:$port")
  done
  sleep 2
  local also_url="" also_pid="$RPID"
  for i in $(seq 2 $n); do also_url+="${urls[$((i-1))]},"; also_pid+=",${pids[$((i-1))]}"; done
  GOMAXPROCS=1 taskset -c 0 "$BIN"/loadgen --url ${urls[0]} --pid ${pids[0]} --also-url "${also_url%,}" --also-pid "$also_pid" \
    --conns 2000 --rooms 20 --senders 20 --rate 200 --seconds 10 --label "$label" 2>"$BIN"/lg-$label.err | tee "$BIN"/lg-$label.json
  kill ${pids[@]}; wait ${pids[@]} 2>/dev/null
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA $schema CASCADE" >/dev/null
}
run one 1
run two 2
kill $RPID
