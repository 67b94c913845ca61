#!/usr/bin/env bash
# `npm run setup`: makes this machine (Debian 12) ready for `npm run demo` and `npm test`, and is
# the first step of .ci/run, so a newcomer, the README and CI take one path. Idempotent: what is
# there is left alone, and each thing it does is printed first.
#   1. Debian packages: sox (the simulator converts with it, tests make GSM with it), rabbitmq-server,
#      openssl (test certificates), systemd (systemd-analyze, systemd-notify: unit and sd_notify tests).
#      With --ci also what `npm run test:package` and `npm run test:systemd` need: dpkg-dev, debhelper,
#      build-essential, lintian, debootstrap, systemd-container.
#      Root is used for apt-get only; without root it prints the apt-get line to run.
#   2. RabbitMQ: started when nothing answers on 127.0.0.1:5672 (root), waited for (90 s at most).
#   3. Node 24 when the node in PATH is another version: the npm registry's node-linux-<arch>@24
#      package (official binaries), unpacked once into the cache scripts/node-cache.sh names; the
#      npm scripts run through scripts/node.sh, which uses it.
#   4. npm ci (with that node) when node_modules is missing or older than package-lock.json; not
#      with --ci (CI runs its own npm ci).
# Exit 0 when all is ready; 1 with one line per thing left to do (and how) when it could not act.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-cache.sh
. scripts/node-cache.sh

usage() { sed -n '2,16s/^# \{0,1\}//p' "$0"; echo "usage: scripts/setup.sh [--ci]"; }
ci=false
case "${1:-}" in
  '') ;;
  --ci) ci=true ;;
  -h | --help) usage; exit 0 ;;
  *) echo "setup: unknown option: $1" >&2; usage >&2; exit 2 ;;
esac

say() { printf '[setup] %s\n' "$*"; }
todo=()
root=false
[ "$(id -u)" = 0 ] && root=true

# --- 1. Debian packages -------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
want=(sox rabbitmq-server openssl systemd)
if $ci; then want+=(dpkg-dev debhelper build-essential lintian debootstrap systemd-container); fi
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  say "Debian packages present: ${want[*]}"
elif $root; then
  say "installing: ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  todo+=("missing ${missing[*]}: sudo apt-get install -y --no-install-recommends ${missing[*]}")
fi

# --- 2. RabbitMQ --------------------------------------------------------------------------
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if rabbit_up; then
  say "RabbitMQ answers on 127.0.0.1:5672"
elif ! installed rabbitmq-server; then
  : # said above: install it first
elif ! $root; then
  todo+=("RabbitMQ is not running: sudo systemctl start rabbitmq-server (without systemd: sudo rabbitmq-server -detached)")
else
  if [ -d /run/systemd/system ]; then
    say "starting RabbitMQ (systemctl start rabbitmq-server)"
    systemctl start rabbitmq-server || true
  else
    say "starting RabbitMQ (rabbitmq-server -detached: systemd is not running here)"
    rabbitmq-server -detached || true
  fi
  for _ in $(seq 1 90); do rabbit_up && break; sleep 1; done
  if rabbit_up; then
    say "RabbitMQ is up"
  else
    todo+=("RabbitMQ did not come up within 90 s: see /var/log/rabbitmq/ (or journalctl -u rabbitmq-server)")
  fi
fi

# --- 3. Node 24 ---------------------------------------------------------------------------
if [ "$(ac_node_major)" = "$AC_NODE_WANT" ]; then
  say "node $(node --version) ($(command -v node))"
else
  cache=$(ac_node_cache)
  if [ "$(ac_node_major "$cache/bin/node")" != "$AC_NODE_WANT" ]; then
    case "$(uname -m)" in
      x86_64) arch=x64 ;;
      aarch64) arch=arm64 ;;
      *) arch= ;;
    esac
    if [ -z "$arch" ]; then
      todo+=("no Node $AC_NODE_WANT package for $(uname -m): install Node $AC_NODE_WANT yourself (https://nodejs.org) and put it first in PATH")
    elif ! command -v npm >/dev/null 2>&1; then
      todo+=("npm is missing: sudo apt-get install -y npm (it fetches Node $AC_NODE_WANT), or install Node $AC_NODE_WANT yourself")
    elif ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
      todo+=("cannot write $cache: set AUDIOCONVERT_NODE_CACHE to a directory you own and run npm run setup again")
    else
      say "fetching Node $AC_NODE_WANT (npm package node-linux-$arch@$AC_NODE_WANT) into $cache (the node in PATH is $(node --version 2>/dev/null || echo none))"
      tmp=$(mktemp -d)
      (cd "$tmp" && npm pack --silent "node-linux-$arch@$AC_NODE_WANT" >/dev/null)
      tar -xzf "$tmp"/node-linux-"$arch"-*.tgz -C "$cache" --strip-components=1
      rm -rf "$tmp"
    fi
  fi
  if [ "$(ac_node_major "$cache/bin/node")" = "$AC_NODE_WANT" ]; then
    export PATH="$cache/bin:$PATH"
    say "node $(node --version) ($cache/bin/node; the npm scripts use it through scripts/node.sh)"
  fi
fi

# --- 4. npm ci ----------------------------------------------------------------------------
if ! $ci; then
  if [ "$(ac_node_major)" -lt "$AC_NODE_MIN" ]; then
    : # said above: no usable node yet
  elif [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
    say "node_modules matches package-lock.json"
  else
    say "npm ci"
    npm ci --no-audit --no-fund || todo+=("npm ci failed (its error is above): fix that, then npm run setup again")
  fi
fi

if [ "${#todo[@]}" -gt 0 ]; then
  for line in "${todo[@]}"; do printf '[setup] to do: %s\n' "$line" >&2; done
  exit 1
fi
say "ready: npm run demo; npm test"
