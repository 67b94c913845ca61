#!/usr/bin/env bash
# Runs a command with Node >= 22 first in PATH. The npm scripts that run the code (demo, test,
# simulate, bench, …) start through it: `npm ci` and `npm run` may run on the machine's own node
# (Debian 12 has 18; this kind of machine 20, past its end of life and unsupported), and then so
# would the script. With an older node in PATH it uses the Node 24 that `npm run setup` fetched;
# without that it says so in one line and exits 1.
set -euo pipefail
# shellcheck source=scripts/node-cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/node-cache.sh"
if ! ac_use_node "$AC_NODE_MIN"; then
  echo "audio-convert: node $(node --version 2>/dev/null || echo '(none)') is too old (Node >= $AC_NODE_MIN needed, $AC_NODE_WANT is what we test on): run 'npm run setup', which fetches Node $AC_NODE_WANT into $(ac_node_cache)" >&2
  exit 1
fi
exec "$@"
