#!/usr/bin/env bash
# One node of the local cluster, for fault injection: node.sh start|stop|kill N
#   stop: rabbitmqctl stop (a clean shutdown); kill: SIGKILL its Erlang VM; start: start it again
#   and wait until it runs (it rejoins the cluster by itself).
set -euo pipefail
. "$(dirname "$0")/env.sh"
action=${1:?start|stop|kill}; n=${2:?node number 1..3}
case "$action" in
  start) [ -n "$(node_pid "$n")" ] || start_node "$n"; await_node "$n" 120 ;;
  stop) timeout 60 rabbitmqctl -q -n "$(node_name "$n")" stop >/dev/null ;;
  kill) pid=$(node_pid "$n"); [ -z "$pid" ] || { kill -9 "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; } ;;
  *) echo "usage: node.sh start|stop|kill N" >&2; exit 2 ;;
esac
