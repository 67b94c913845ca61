#!/usr/bin/env bash
# Installs (Debian 12) what building and running the throwaway Asterisk needs, when missing.
set -euo pipefail
need=()
# valgrind: the module's memcheck suite; util-linux: setpriv (hostile-file tests)
for p in build-essential pkgconf libedit-dev libjansson-dev libxml2-dev libsqlite3-dev uuid-dev libssl-dev sox libgsm-tools coreutils valgrind util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ "${#need[@]}" -eq 0 ] && exit 0
echo "[asterisk-deps] installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
