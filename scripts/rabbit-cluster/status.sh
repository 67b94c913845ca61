#!/usr/bin/env bash
# One line per node of the local cluster: running or not, its pid and AMQP port; then the
# cluster's view of itself and the quorum queues' leaders.
set -uo pipefail
. "$(dirname "$0")/env.sh"
up=""
for n in $AC_CLUSTER_NODES; do
  pid=$(node_pid "$n")
  if [ -n "$pid" ]; then echo "$(node_name "$n")  running  pid $pid  amqp 127.0.0.1:$(node_port "$n")"; up=${up:-$n}
  else echo "$(node_name "$n")  stopped"; fi
done
[ -n "$up" ] || exit 3
ctl "$up" cluster_status --formatter json | grep -o '"running_nodes":\[[^]]*\]'
ctl "$up" list_queues name type leader members messages 2>/dev/null | grep -w quorum || true
