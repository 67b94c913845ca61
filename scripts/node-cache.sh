# Sourced by scripts/setup.sh, scripts/node.sh and .ci/run: where the Node 24 that setup fetches
# lives, and how to put it first in PATH. Node 24 is the line we develop and test on (>= 22 runs).
#
# The cache: $AUDIOCONVERT_NODE_CACHE, else /var/cache/audio-convert-ci/node-24 (root, or when it
# is already there: outside any home directory, so uid nobody and a unit with ProtectHome= can run
# it), else ~/.cache/audio-convert/node-24 for a user who cannot write /var/cache.
AC_NODE_WANT=24
AC_NODE_MIN=22

ac_node_cache() {
  if [ -n "${AUDIOCONVERT_NODE_CACHE:-}" ]; then
    printf '%s\n' "$AUDIOCONVERT_NODE_CACHE"
    return
  fi
  local system=/var/cache/audio-convert-ci/node-$AC_NODE_WANT
  if [ -x "$system/bin/node" ] || [ "$(id -u)" = 0 ]; then
    printf '%s\n' "$system"
  else
    printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/audio-convert/node-$AC_NODE_WANT"
  fi
}

# The major version of a node binary (default: the one in PATH); 0 when there is none.
ac_node_major() {
  "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# Puts the cached Node 24 first in PATH unless the node in PATH is already $1 or newer
# (default 24). Returns 1 when that is needed but the cache is empty (run scripts/setup.sh).
ac_use_node() {
  local min=${1:-$AC_NODE_WANT}
  [ "$(ac_node_major)" -ge "$min" ] && return 0
  local cache
  cache=$(ac_node_cache)
  [ -x "$cache/bin/node" ] || return 1
  export PATH="$cache/bin:$PATH"
}
