#!/bin/bash
# The single-target points of BENCHMARKS.md (19,500 sockets, 10k SSE subscribers, persisted messages/s,
# reconnect storm), one after the other: server on CPU 1, load tool on CPU 0. Prints loadgen JSON lines.
set -u
cd "$(dirname "$0")/.."
go build -o /tmp/sbx . && go build -o /tmp/lgx ./cmd/loadgen || exit 1
start() { # start <db> [extra flags]: prints the pid
  local db=$1; shift
  rm -f $db $db-wal $db-shm
  GOMAXPROCS=1 taskset -c 1 /tmp/sbx -addr 127.0.0.1:3400 -db $db -send-rate 100000 -send-burst 100000 -max-user-conns 100000 "$@" > /tmp/sbx.log 2>&1 &
  echo $! > /tmp/sbx.pid
  sleep 1.5
}
stop() { kill $(cat /tmp/sbx.pid) 2>/dev/null; sleep 1; }
echo "== 19500 idle-ish websockets (rooms of 100), 2 source addresses"
start /tmp/x1.db -feed none
GOMAXPROCS=1 taskset -c 0 /tmp/lgx --url http://127.0.0.1:3400 --pid $(cat /tmp/sbx.pid) --conns 19500 --rooms 195 --senders 10 --rate 100 --seconds 10 --source-ips 127.0.0.1,127.0.0.2 2>/tmp/x1.err | tee /tmp/x1.json
stop
echo "== 10000 SSE subscribers, JSON stream, 1 tick/s per symbol"
start /tmp/x2.db -feed sim -tick 1s
GOMAXPROCS=1 taskset -c 0 /tmp/lgx --mode sse --url http://127.0.0.1:3400 --pid $(cat /tmp/sbx.pid) --conns 10000 --seconds 20 --symbols VOIDX 2>/tmp/x2.err | tee /tmp/x2.json
stop
echo "== 10000 SSE subscribers, HTML ticker stream (12 symbols)"
start /tmp/x3.db -feed sim -tick 1s
GOMAXPROCS=1 taskset -c 0 /tmp/lgx --mode sse --path /ticker/stream --url http://127.0.0.1:3400 --pid $(cat /tmp/sbx.pid) --conns 10000 --seconds 20 2>/tmp/x3.err | tee /tmp/x3.json
stop
echo "== persisted messages/s: 1000 conns, rooms of 2, 500 senders, 10000 msg/s offered"
start /tmp/x4.db -feed none
GOMAXPROCS=1 taskset -c 0 /tmp/lgx --url http://127.0.0.1:3400 --pid $(cat /tmp/sbx.pid) --conns 1000 --rooms 500 --senders 500 --rate 10000 --seconds 10 2>/tmp/x4.err | tee /tmp/x4.json
stop
echo "== reconnect storm: 10000 clients, restart"
start /tmp/x5.db -feed none
GOMAXPROCS=1 taskset -c 0 /tmp/lgx --mode reconnect --url http://127.0.0.1:3400 --pid $(cat /tmp/sbx.pid) --conns 10000 --rooms 100 --messages 100 \
  --restart-cmd "bench/restart-server.sh /tmp/sbx.pid /tmp/sbx.log -- env GOMAXPROCS=1 taskset -c 1 /tmp/sbx -addr 127.0.0.1:3400 -db /tmp/x5.db -send-rate 100000 -send-burst 100000 -max-user-conns 100000 -feed none" 2>/tmp/x5.err | tee /tmp/x5.json
stop
echo extra-done
