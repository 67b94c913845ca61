#!/usr/bin/env bash
# Stops every node of the local cluster (scripts/rabbit-cluster/start.sh), then kills any of its
# Erlang VMs still alive (found by their exact node name, never by a broad pattern), and with --purge removes its data.
set -uo pipefail
. "$(dirname "$0")/env.sh"
for n in $AC_CLUSTER_NODES; do
  pid=$(node_pid "$n")
  [ -n "$pid" ] || continue
  echo "stopping $(node_name "$n") (pid $pid)"
  timeout 60 rabbitmqctl -q -n "$(node_name "$n")" stop >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then echo "killing $(node_name "$n") (pid $pid)"; kill -9 "$pid"; fi
done
# Orphans: erl_child_setup / inet_gethost helpers of a killed VM exit on their own; epmd is the
# machine's and stays.
if [ "${1:-}" = "--purge" ]; then rm -rf "$AC_CLUSTER_DIR"; echo "removed $AC_CLUSTER_DIR"; fi
