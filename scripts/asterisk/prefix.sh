#!/usr/bin/env bash
# Prints the install prefix of the Asterisk the real-Asterisk tests and benchmarks use.
#
#   AUDIOCONVERT_ASTERISK_PREFIX=/opt/asterisk   an existing install (has sbin/asterisk)
#   AUDIOCONVERT_ASTERISK_SOURCE=asterisk-22.10.1.tar.gz
#                                                a source tarball: built once into the cache by build.sh
#
# With neither, exits 2 with a message saying how to get one: nothing that needs a real Asterisk
# may pass by running nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ -n "${AUDIOCONVERT_ASTERISK_PREFIX:-}" ]; then
  p=$AUDIOCONVERT_ASTERISK_PREFIX
  [ -x "$p/sbin/asterisk" ] || { echo "AUDIOCONVERT_ASTERISK_PREFIX=$p has no sbin/asterisk" >&2; exit 2; }
  echo "$p"
elif [ -n "${AUDIOCONVERT_ASTERISK_SOURCE:-}" ]; then
  exec "$here/build.sh" "$AUDIOCONVERT_ASTERISK_SOURCE"
else
  cat >&2 <<'EOF'
No Asterisk to test against. Set one of:
  AUDIOCONVERT_ASTERISK_SOURCE=/path/to/asterisk-22.10.1.tar.gz
      the source tarball from https://downloads.asterisk.org/pub/telephony/asterisk/
      (built once into ~/.cache/audio-convert/asterisk: 5–11 minutes on 2 cores;
      build packages: scripts/asterisk/deps.sh)
  AUDIOCONVERT_ASTERISK_PREFIX=/path/to/install
      an existing Asterisk install (its sbin/asterisk and lib/asterisk/modules)
See docs/testing.md.
EOF
  exit 2
fi
