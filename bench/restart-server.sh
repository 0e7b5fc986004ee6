#!/usr/bin/env bash
# Restarts a server for `loadgen --mode reconnect --restart-cmd …`: signals the process whose pid is in PIDFILE
# (SIGTERM by default: Switchboard closes its sockets with 1012 and exits; SIGNAL=KILL for a crash), waits until it
# is gone, starts COMMAND… again in the background (same address, same database), writes the new pid to PIDFILE
# and prints it as the last line, which loadgen reads to report the new server's CPU and peak memory.
#
#   bench/restart-server.sh PIDFILE LOGFILE -- COMMAND [ARGS…]
#
# QUIT_AFTER=N: if the old server has not exited N seconds after the signal, send it SIGQUIT so that Go writes every
# goroutine's stack to LOGFILE (to see what a slow shutdown waits for), then start the new one.
set -euo pipefail
[[ $# -ge 4 && "$3" == "--" ]] || { echo "usage: $0 PIDFILE LOGFILE -- COMMAND [ARGS…]" >&2; exit 2; }
pidfile=$1 logfile=$2
shift 3
old=$(cat "$pidfile")
alive() { # a zombie (exited, not yet reaped by its parent) counts as gone
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n "$state" && "$state" != Z ]]
}
kill -"${SIGNAL:-TERM}" "$old"
limit=$((${QUIT_AFTER:-30} * 100))
for _ in $(seq 1 "$limit"); do # up to 30 s by default (the server gives open connections 10 s)
	alive "$old" || break
	sleep 0.01
done
if [[ -n "${QUIT_AFTER:-}" ]] && alive "$old"; then
	echo "restart-server: pid $old still running after ${QUIT_AFTER}s: SIGQUIT for a goroutine dump in $logfile" >&2
	kill -QUIT "$old"
	for _ in $(seq 1 500); do alive "$old" || break; sleep 0.01; done
fi
if alive "$old"; then
	echo "restart-server: pid $old did not exit" >&2
	exit 1
fi
nohup "$@" >>"$logfile" 2>&1 </dev/null &
echo $! >"$pidfile"
echo $!
