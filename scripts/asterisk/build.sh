#!/usr/bin/env bash
# Builds Asterisk from a source tarball into a cache outside the repository, once per version.
#
#   scripts/asterisk/build.sh TARBALL        prints the install prefix on stdout (logs on stderr)
#
# Cache: $AUDIOCONVERT_ASTERISK_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/audio-convert/asterisk.
# The prefix is <cache>/<version>-<first 12 hex of the tarball's sha256>: a second run with the same
# tarball reuses it (a finished build leaves a .complete marker; a half-finished one is redone).
# Minimal module set: what the shipped dialplan and the tests use (docs/testing.md lists why each).
# Our own module, asterisk/app_convert.c (the Convert() application), is then built IN the kept source
# tree as Asterisk builds its own apps (copied into apps/, enabled in menuselect, `make apps`), and
# installed into the prefix; that step reruns whenever the module's source changes (a few seconds), and
# never rebuilds Asterisk itself. AUDIOCONVERT_MODULE_CFLAGS adds flags to it (e.g. -fsanitize=address).
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
# v2: the module set gained func_module (IFMODULE) and the source tree is kept for app_convert.
prefix="$cache/$version-$sum-v2"
repo=$(cd "$(dirname "$0")/../.." && pwd)
module_src="$repo/asterisk/app_convert.c"
log() { printf '[asterisk-build] %s\n' "$*" >&2; }

# Builds app_convert in the kept tree when its source (or the extra flags) changed since the last time.
build_module() {
  local tree="$prefix/src/$top" want have
  want=$( (sha256sum "$module_src" | cut -c1-64; echo "${AUDIOCONVERT_MODULE_CFLAGS:-}") | sha256sum | cut -c1-64)
  have=$(cat "$prefix/.app_convert" 2>/dev/null || true)
  [ "$want" != "$have" ] || return 0
  log "building app_convert in the Asterisk tree (${AUDIOCONVERT_MODULE_CFLAGS:-no extra flags})"
  {
    cp "$module_src" "$tree/apps/app_convert.c"
    cd "$tree"
    # The headers, for the out-of-tree build (asterisk/Makefile) that operators use.
    [ -f "$prefix/include/asterisk.h" ] || make install-headers
    make menuselect-tree menuselect.makeopts
    menuselect/menuselect --enable app_convert menuselect.makeopts
    rm -f apps/app_convert.o apps/app_convert.so
    # -Werror: a warning in code that runs inside the PBX is a bug (docs/asterisk.md).
    make apps ASTCFLAGS="-Werror -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-missing-field-initializers -Wno-old-style-declaration ${AUDIOCONVERT_MODULE_CFLAGS:-}"
    install -m 0755 apps/app_convert.so "$prefix/lib/asterisk/modules/app_convert.so"
    # Its XML documentation (`core show application Convert`) joins Asterisk's own.
    make doc/core-en_US.xml
    install -m 0644 doc/core-en_US.xml "$prefix/var/lib/asterisk/documentation/core-en_US.xml"
  } > "$prefix/module-build.log" 2>&1 || { tail -n 40 "$prefix/module-build.log" >&2; log "app_convert failed to build (log above)"; exit 1; }
  echo "$want" > "$prefix/.app_convert"
}

if [ -f "$prefix/.complete" ]; then
  echo "asterisk $version: cached in $prefix" >&2
  build_module
  echo "$prefix"
  exit 0
fi

rm -rf "$prefix"
mkdir -p "$prefix/src"
work="$prefix/src"
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
    func_channel func_env func_strings func_logic func_global func_cut func_shell func_math func_callerid func_module
    pbx_config res_convert res_timing_timerfd)
  args=(--disable-all)
  for m in "${modules[@]}"; do args+=(--enable "$m"); done
  # Always name menuselect.makeopts: a call without it resets the selection.
  menuselect/menuselect "${args[@]}" --enable OPTIONAL_API --disable BUILD_NATIVE menuselect.makeopts
  menuselect/menuselect --check-deps menuselect.makeopts
  make -j"$jobs"
  make install
} > "$prefix/build.log" 2>&1 || { tail -n 40 "$prefix/build.log" >&2; log "build failed (log above)"; exit 1; }

touch "$prefix/.complete"
build_module
log "done: $prefix"
echo "$prefix"
