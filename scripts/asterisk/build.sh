#!/usr/bin/env bash
# Builds Asterisk from a source tarball into a cache outside the repository, once per version.
#
#   scripts/asterisk/build.sh TARBALL        prints the install prefix on stdout (logs on stderr)
#
# Cache: $AUDIOCONVERT_ASTERISK_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/audio-convert/asterisk.
# The prefix is <cache>/<version>-<first 12 hex of the tarball's sha256>: a second run with the same
# tarball reuses it (a finished build leaves a .complete marker; a half-finished one is redone).
# Minimal module set: what the shipped dialplan and the tests use (docs/testing.md lists why each).
# Build packages on Debian 12: build-essential pkgconf libedit-dev libjansson-dev libxml2-dev
# libsqlite3-dev uuid-dev libssl-dev (scripts/asterisk/deps.sh installs them).
set -euo pipefail

tarball=${1:?usage: build.sh ASTERISK_SOURCE_TARBALL}
[ -f "$tarball" ] || { echo "build.sh: no such tarball: $tarball" >&2; exit 2; }
tarball=$(readlink -f "$tarball")

cache=${AUDIOCONVERT_ASTERISK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/audio-convert/asterisk}
sum=$(sha256sum "$tarball" | cut -c1-12)
# (head closes the pipe early: tar dies of SIGPIPE, which pipefail would report as a failure)
top=$( (tar -tzf "$tarball" || true) | head -n 1 | cut -d/ -f1)
version=${top#asterisk-}
prefix="$cache/$version-$sum"

if [ -f "$prefix/.complete" ]; then
  echo "asterisk $version: cached in $prefix" >&2
  echo "$prefix"
  exit 0
fi

log() { printf '[asterisk-build] %s\n' "$*" >&2; }
rm -rf "$prefix"
work=$(mktemp -d "${TMPDIR:-/tmp}/asterisk-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building asterisk $version into $prefix (first time only: about 5 minutes on 2 cores)"
tar -xzf "$tarball" -C "$work"
cd "$work/$top"

jobs=$(nproc 2>/dev/null || echo 2)
{
  # --disable-asteriskssl: no libasteriskssl, so the install runs from any path without LD_LIBRARY_PATH.
  ./configure --prefix="$prefix" --without-pjproject-bundled --with-jansson-bundled=no --disable-asteriskssl
  make menuselect.makeopts
  modules=(app_system app_userevent app_verbose app_exec app_stack app_originate bridge_simple
    codec_gsm codec_ulaw codec_alaw codec_resample format_gsm format_wav format_wav_gsm format_pcm format_sln
    func_channel func_env func_strings func_logic func_global func_cut func_shell func_math func_callerid
    pbx_config res_convert res_timing_timerfd)
  args=(--disable-all)
  for m in "${modules[@]}"; do args+=(--enable "$m"); done
  # Always name menuselect.makeopts: a call without it resets the selection.
  menuselect/menuselect "${args[@]}" --enable OPTIONAL_API --disable BUILD_NATIVE menuselect.makeopts
  menuselect/menuselect --check-deps menuselect.makeopts
  make -j"$jobs"
  make install
} > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; log "build failed (log above)"; exit 1; }

touch "$prefix/.complete"
log "done: $prefix"
echo "$prefix"
