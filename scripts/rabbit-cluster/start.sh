#!/usr/bin/env bash
# Starts a local 3-node RabbitMQ cluster (acx1..3@localhost on 127.0.0.1:5691..5693) beside the
# machine's own RabbitMQ, which stays untouched. Idempotent: running nodes are left as they are, a
# stopped node is started again and rejoins. Prints the HostName line for transcoding.conf.
# Needs root (the Debian wrapper runs the nodes as the rabbitmq user). Stop: scripts/rabbit-cluster/stop.sh
set -euo pipefail
. "$(dirname "$0")/env.sh"
[ "$(id -u)" = 0 ] || { echo "run as root (rabbitmq-server runs the node as the rabbitmq user)" >&2; exit 1; }

for n in $AC_CLUSTER_NODES; do
  if [ -z "$(node_pid "$n")" ]; then
    echo "starting $(node_name "$n") on 127.0.0.1:$(node_port "$n")"
    start_node "$n"
  fi
done
for n in $AC_CLUSTER_NODES; do await_node "$n" 90; done

# acx2 and acx3 join acx1 (once; a node that was only restarted is still a member).
for n in 2 3; do
  if ! ctl "$n" cluster_status --formatter json | grep -q "$(node_name 1)"; then
    echo "$(node_name "$n") joins $(node_name 1)"
    ctl "$n" stop_app
    ctl "$n" reset
    ctl "$n" join_cluster "$(node_name 1)"
    ctl "$n" start_app
    await_node "$n" 60
  fi
done
ctl 1 cluster_status --formatter json | grep -o '"running_nodes":\[[^]]*\]'
hosts=""
for n in $AC_CLUSTER_NODES; do hosts="${hosts:+$hosts, }127.0.0.1:$(node_port "$n")"; done
echo "HostName = $hosts"
