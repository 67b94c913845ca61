# Sourced by the scripts in this directory: where the local 3-node cluster lives and how its nodes
# are named. Everything is its own (node names acx1..3@localhost, ports, data, logs, plugins file),
# so the machine's own RabbitMQ (rabbit@…, 5672/25672) is never touched. The Erlang cookie is the
# one the Debian package's wrapper already uses (the rabbitmq user's ~/.erlang.cookie): read, never
# written, so the machine's node keeps working and `rabbitmqctl -n acx1@localhost` works as root.
#
# Override with the environment: AC_CLUSTER_DIR (default /tmp/audio-convert-rabbit-cluster),
# AC_CLUSTER_PORT_BASE (default 5690: AMQP ports 5691..5693, distribution ports 25691..25693).

AC_CLUSTER_DIR=${AC_CLUSTER_DIR:-/tmp/audio-convert-rabbit-cluster}
AC_CLUSTER_PORT_BASE=${AC_CLUSTER_PORT_BASE:-5690}
AC_CLUSTER_NODES="1 2 3"

node_name() { echo "acx$1@localhost"; }
node_port() { echo $((AC_CLUSTER_PORT_BASE + $1)); }
node_dist_port() { echo $((AC_CLUSTER_PORT_BASE + 20000 + $1)); }
node_dir() { echo "$AC_CLUSTER_DIR/acx$1"; }
# Where the node writes its pid (RABBITMQ_PID_FILE), inside its own directory.
node_pid_file() { echo "$(node_dir "$1")/acx$1.pid"; }

ctl() { # ctl N ARGS…: rabbitmqctl against node N
  local n=$1; shift
  rabbitmqctl -q -n "$(node_name "$n")" "$@"
}

# The OS pid of node N's Erlang VM; empty when it is not running. 3.10 puts the node name in the
# VM's environment, not its command line: found by that exact RABBITMQ_NODENAME among the rabbitmq
# user's beam.smp processes (a pid file is removed by a second, failed start of the same node).
node_pid() {
  local pid
  for pid in $(pgrep -u rabbitmq -x beam.smp); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(node_name "$1")"; then
      echo "$pid"; return 0
    fi
  done
}

# Starts node N detached (its directories and config are created on first use).
start_node() {
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d/mnesia" "$d/log"
  echo '[].' > "$d/enabled_plugins"   # no management, Prometheus or MQTT listeners to clash with the machine's node
  cat > "$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$(node_port "$n")
# Quorum queues need a majority: with one node of three down the queue stays available.
cluster_partition_handling = pause_minority
CONF
  cat > "$d/rabbitmq-env.conf" <<CONF
ERL_EPMD_ADDRESS=127.0.0.1
CONF
  chown -R rabbitmq:rabbitmq "$d"
  RABBITMQ_NODENAME=$(node_name "$n") \
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT=$(node_port "$n") \
  RABBITMQ_DIST_PORT=$(node_dist_port "$n") \
  RABBITMQ_MNESIA_BASE="$d/mnesia" \
  RABBITMQ_LOG_BASE="$d/log" \
  RABBITMQ_PID_FILE=$(node_pid_file "$n") \
  RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
  RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
  RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
  RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    rabbitmq-server -detached
}

await_node() { # await_node N [SECONDS]: until node N (just started) has booted
  # await_startup waits for a booting node, but fails at once while the VM is not yet registered
  # with epmd: so it is asked again until the deadline.
  local deadline=$((SECONDS + ${2:-60}))
  until rabbitmqctl -q -n "$(node_name "$1")" await_startup --timeout 10 >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "$(node_name "$1") did not start; see $(node_dir "$1")/log" >&2; return 1; fi
    [ -n "$(node_pid "$1")" ] || { echo "$(node_name "$1") is not running; see $(node_dir "$1")/log" >&2; return 1; }
    sleep 0.5
  done
}
