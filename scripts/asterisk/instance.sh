#!/usr/bin/env bash
# A throwaway Asterisk that touches nothing else on the machine: its own directories, its own free
# AMI port on 127.0.0.1, the repository's config/asterisk/extensions.conf loaded UNCHANGED (by
# #include), and an AMI user with the rights of config/asterisk/manager.conf's [auditorai] and a
# random secret.
#
#   scripts/asterisk/instance.sh start [DIR]   create (if new) and start; prints KEY=VALUE lines
#                                              (also in DIR/instance.env) once AMI is fully booted
#   scripts/asterisk/instance.sh stop DIR      `core stop now`, then kill what is left of every
#                                              session this DIR started (an orphaned step too)
#                                              and remove DIR (AUDIOCONVERT_ASTERISK_KEEP=1 keeps it)
#   scripts/asterisk/instance.sh cli DIR CMD   run one CLI command (asterisk -rx) on it
#
# `start` on a DIR whose Asterisk is gone (kill -9) starts it again with the same port and secret.
# The prefix: --prefix P, else scripts/asterisk/prefix.sh (AUDIOCONVERT_ASTERISK_PREFIX or
# AUDIOCONVERT_ASTERISK_SOURCE). The dialplan's System() steps run with the PATH this script had.
# Runs Asterisk as the calling user (root in CI: it must write /var/local/auditorai/wav).
# AUDIOCONVERT_ASTERISK_NOLOAD lists modules the instance must not load (modules.conf noload);
# AUDIOCONVERT_ASTERISK_MODDIR replaces the prefix's module directory (an out-of-tree module build).
# AUDIOCONVERT_ASTERISK_WRAPPER, when set, is a command prefix Asterisk is started under (word-split):
# e.g. `valgrind --log-file=F` for the module's memory checks, or `setpriv --bounding-set=-dac_override`
# for a root that obeys file modes (the hostile-file tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "instance.sh: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" >&2; exit 2; }

prefix=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    *) break ;;
  esac
done
cmd=${1:-}; shift || true

# Every process Asterisk starts (SHELL() → sh → perl → untoast, TrySystem() → sh → mkdir) stays in its session: Asterisk is
# started by setsid, and nothing in it calls setsid again. Killing by session id reaches orphans
# too, and nothing else.
session_pids() { ps -eo pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'; }

kill_sessions() {
  local dir=$1 sid
  [ -f "$dir/sessions" ] || return 0
  while read -r sid; do
    [ -n "$sid" ] || continue
    session_pids "$sid" | xargs -r kill -KILL 2>/dev/null || true
  done < "$dir/sessions"
}

# A zombie is not alive: when the reaper of this machine's PID 1 is slow or absent, a killed Asterisk
# stays in the process table.
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }

cli() {
  local dir=$1; shift
  # shellcheck disable=SC1091
  . "$dir/instance.env"
  "$ASTERISK_PREFIX/sbin/asterisk" -C "$dir/etc/asterisk.conf" -rx "$*"
}

write_config() {
  local dir=$1 port secret rights read write filters
  mkdir -p "$dir"/{etc,lib,spool,run,log,cache}
  touch "$dir/.audio-convert-instance"
  port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  secret=$(od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
  # read/write of the shipped user, comments stripped: the instance grants exactly what it ships.
  rights=$(awk '/^\[/ { in_user = ($0 ~ /^\[auditorai\]/) } in_user && /^(read|write)[ \t]*=/ {
      sub(/;.*/, ""); gsub(/[ \t]/, ""); print }' "$repo/config/asterisk/manager.conf")
  read=$(sed -n 's/^read=//p' <<<"$rights"); write=$(sed -n 's/^write=//p' <<<"$rights")
  [ -n "$read" ] && [ -n "$write" ] || die "no read/write in config/asterisk/manager.conf [auditorai]"
  # ... and its event filters, as written
  filters=$(awk '/^\[/ { in_user = ($0 ~ /^\[auditorai\]/) } in_user && /^eventfilter/ { print }' "$repo/config/asterisk/manager.conf")

  cat > "$dir/etc/asterisk.conf" <<EOF
; A plain [directories] section: the sample's [directories](!) is a template Asterisk ignores.
[directories]
astetcdir => $dir/etc
astmoddir => ${AUDIOCONVERT_ASTERISK_MODDIR:-$prefix/lib/asterisk/modules}
astvarlibdir => $dir/lib
astdbdir => $dir/lib
astkeydir => $dir/lib
astdatadir => $prefix/var/lib/asterisk
astagidir => $dir/lib/agi-bin
astspooldir => $dir/spool
astrundir => $dir/run
astlogdir => $dir/log
astcachedir => $dir/cache
astsbindir => $prefix/sbin

[options]
verbose = 0
nocolor = yes
EOF
  # AUDIOCONVERT_ASTERISK_NOLOAD: modules not to load (space-separated), e.g. app_convert.so for the
  # perl step (the dialplan picks Convert() whenever app_convert is loaded).
  { printf '[modules]\nautoload = yes\n'
    for m in ${AUDIOCONVERT_ASTERISK_NOLOAD:-}; do printf 'noload => %s\n' "$m"; done
  } > "$dir/etc/modules.conf"
  printf '[general]\n\n[logfiles]\nmessages.log => notice,warning,error\n' > "$dir/etc/logger.conf"
  printf '[general]\nenable = no\n' > "$dir/etc/cdr.conf"
  printf '[general]\nenable = no\n' > "$dir/etc/cel.conf"
  for f in ccss features indications acl udptl; do : > "$dir/etc/$f.conf"; done
  cat > "$dir/etc/extensions.conf" <<EOF
[general]
static = yes
writeprotect = yes

; the repository's dialplan, unchanged
#include "$repo/config/asterisk/extensions.conf"
EOF
  (umask 077; cat > "$dir/etc/manager.conf" <<EOF
[general]
enabled = yes
port = $port
bindaddr = 127.0.0.1
displayconnects = no

[auditorai]
secret = $secret
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = $read
write = $write
$filters
EOF
  cat > "$dir/instance.env" <<EOF
ASTERISK_PREFIX=$prefix
ASTERISK_DIR=$dir
ASTERISK_CONF=$dir/etc/asterisk.conf
AMI_HOST=127.0.0.1
AMI_PORT=$port
AMI_USER=auditorai
AMI_SECRET=$secret
EOF
  )
}

start() {
  local dir=${1:-} pid deadline
  if [ -n "$dir" ] && [ -f "$dir/instance.env" ]; then
    dir=$(cd "$dir" && pwd)
    prefix=$(sed -n 's/^ASTERISK_PREFIX=//p' "$dir/instance.env")
  else
    [ -n "$prefix" ] || prefix=$("$here/prefix.sh") || exit 2
    if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/ac-asterisk.XXXXXX"); fi
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    write_config "$dir"
  fi
  pid=$(cat "$dir/run/asterisk.pid" 2>/dev/null || true)
  alive "$pid" && die "already running in $dir (pid $pid)"
  rm -f "$dir/run/asterisk.pid" "$dir/run/asterisk.ctl"
  # -f: no fork, so $! is Asterisk; setsid: its own session, which its children inherit.
  # shellcheck disable=SC2086 # the wrapper is a command line, split into words on purpose
  setsid ${AUDIOCONVERT_ASTERISK_WRAPPER:-} "$prefix/sbin/asterisk" -C "$dir/etc/asterisk.conf" -f -n >>"$dir/log/console.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >> "$dir/sessions"
  deadline=$((SECONDS + ${AUDIOCONVERT_ASTERISK_START_S:-60}))
  until "$prefix/sbin/asterisk" -C "$dir/etc/asterisk.conf" -rx 'core waitfullybooted' >/dev/null 2>&1; do
    alive "$pid" || { tail -n 30 "$dir/log/console.log" "$dir/log/messages.log" >&2 2>/dev/null; die "asterisk exited during start-up ($dir)"; }
    [ $SECONDS -lt $deadline ] || die "asterisk not fully booted after ${AUDIOCONVERT_ASTERISK_START_S:-60} s ($dir/log)"
    sleep 0.1
  done
  sed -i '/^ASTERISK_PID=/d' "$dir/instance.env"
  echo "ASTERISK_PID=$pid" >> "$dir/instance.env"
  cat "$dir/instance.env"
}

stop() {
  local dir=${1:?usage: instance.sh stop DIR} pid i
  [ -f "$dir/.audio-convert-instance" ] || die "$dir is not an instance directory"
  pid=$(sed -n 's/^ASTERISK_PID=//p' "$dir/instance.env" 2>/dev/null || true)
  if alive "$pid"; then
    timeout 10 "$(sed -n 's/^ASTERISK_PREFIX=//p' "$dir/instance.env")/sbin/asterisk" \
      -C "$dir/etc/asterisk.conf" -rx 'core stop now' >/dev/null 2>&1 || true
    for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  fi
  kill_sessions "$dir"
  if [ "${AUDIOCONVERT_ASTERISK_KEEP:-}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}

case $cmd in
  start) start "${1:-}" ;;
  stop) stop "${1:-}" ;;
  cli) d=${1:?usage: instance.sh cli DIR COMMAND}; shift; cli "$d" "$@" ;;
  *) usage ;;
esac
