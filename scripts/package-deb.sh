#!/usr/bin/env bash
# npm run package:deb → dist/audio-convert_<version>_all.deb, offline.
#
# Stages what the package ships next to packaging/debian/ in a temporary tree, then runs
# dpkg-buildpackage (debhelper) there and copies the .deb into dist/:
#   app/dist          the service alone, compiled from src/ by tsc (tsconfig.build.json), no maps
#   app/node_modules  the production dependencies, copied from ./node_modules as `npm ls
#                     --omit=dev` lists them (no network, no install scripts)
#   app/package.json  version (package.json's, or $AUDIOCONVERT_DEB_VERSION) and "type": "module" for dist/
#   app/transcoding.conf (the example postinst copies when /etc has none), debian/auditorai-transcoding.service (the repository's unit with the
#                     package's paths), debian/changelog (that version)
# Needs: dpkg-dev, debhelper, build-essential, node and an installed ./node_modules (npm ci). See docs/packaging.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
die() { echo "package-deb: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh node npm; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev debhelper build-essential; Node >= 22)"
done
# dpkg-buildpackage's own check: said here in one line instead of its "Unmet build dependencies".
dpkg-query -W -f='${Status}' build-essential 2>/dev/null | grep -q 'install ok installed' \
  || die "build-essential is not installed (dpkg-buildpackage requires it): apt-get install build-essential"

[[ -x node_modules/.bin/tsc ]] || die "node_modules is missing: run npm ci first"

# AUDIOCONVERT_DEB_VERSION builds the same tree under another version (x.y.z plus an optional
# +suffix, e.g. 0.1.0+t2): the systemd suite upgrades one build to another with it.
version=${AUDIOCONVERT_DEB_VERSION:-$(node -p 'require("./package.json").version')}
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(\+[0-9A-Za-z.]+)?$ ]] || die "version '$version' is not x.y.z or x.y.z+suffix"

work=$(mktemp -d "${TMPDIR:-/tmp}/audio-convert-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/audio-convert-$version"
app="$tree/app"
mkdir -p "$app"
cp -R packaging/debian "$tree/debian"

echo "package-deb: compiling the service"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$app/dist" --sourceMap false
# The staged package.json carries the package's version: `audio-convert --version` reads it.
V="$version" node -e 'const p = require("./package.json"); p.version = process.env.V; process.stdout.write(JSON.stringify(p, null, 2) + "\n")' >"$app/package.json"
chmod 0755 "$app/dist/cli.js"    # the entry point of bin and of /usr/bin/audio-convert
cp config/transcoding.conf "$app/transcoding.conf"

echo "package-deb: production dependencies (offline)"
# The lockfile's production tree (npm ls reads node_modules, never the network; it fails on a
# missing or invalid package), copied package by package: a nested node_modules comes with
# the package that needs it.
deps=$(npm ls --omit=dev --all --parseable --loglevel=error) || die "npm ls: node_modules does not match package-lock.json (npm ci)"
while IFS= read -r dir; do
  rel=${dir#"$repo"/}
  [[ "$rel" == node_modules/* ]] || continue
  [[ -e "$app/$rel" ]] && continue
  mkdir -p "$app/$(dirname "$rel")"
  cp -R "$rel" "$app/$rel"
done <<<"$deps"
# Nothing in there is a program: plain 0644 files (some npm tarballs mark READMEs
# executable), no VCS or editor files.
find "$app/node_modules" -name '.bin' -prune -exec rm -rf {} +
find "$app/node_modules" \( -name '.git*' -o -name '.nyc_output' -o -name '.npmignore' -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.editorconfig' \) -exec rm -rf {} +
find "$app/node_modules" -type f -exec chmod 0644 {} +
find "$app/node_modules" -type d -exec chmod 0755 {} +
# Architecture: all holds only while no compiled code is shipped.
native=$(find "$app/node_modules" \( -name '*.node' -o -name binding.gyp -o -name '*.so' \) -print)
[[ -z "$native" ]] || die "native code in the production dependencies (Architecture: all would be wrong):"$'\n'"$native"

# The repository's unit, with the package's paths and its own header.
{
  echo "# /lib/systemd/system/auditorai-transcoding.service (= /usr/lib/systemd/system/ on merged-/usr Debian)"
  echo "#"
  echo "# audio-convert: RabbitMQ transcoding jobs -> Asterisk AMI Originate -> GSM to WAV."
  echo "# Shipped by the audio-convert package: local changes belong in a drop-in"
  echo "# (\`systemctl edit auditorai-transcoding.service\`), this file is replaced on upgrade."
  echo "# Hardening choices and how to verify them: /usr/share/doc/audio-convert/ and docs/systemd.md."
  sed -e '1,/^$/d' \
      -e 's|^WorkingDirectory=/usr/local/bin/auditorai/transcoding$|WorkingDirectory=/usr/lib/audio-convert|' \
      -e 's|/usr/local/bin/auditorai/transcoding/dist/cli\.js|/usr/lib/audio-convert/dist/cli.js|' \
      -e 's|^# it is not enabled here: scripts/install.sh writes the drop-in$|# it is not enabled here: add it in a drop-in (systemctl edit), e.g.|' \
      systemd/auditorai-transcoding.service | sed -e '1i\\'
} > "$tree/debian/auditorai-transcoding.service"
grep -q '^ExecStart=/usr/bin/node .*/usr/lib/audio-convert/dist/cli.js run ' "$tree/debian/auditorai-transcoding.service" \
  || die "could not rewrite ExecStart= for the package layout"
grep -q '^WorkingDirectory=/usr/lib/audio-convert$' "$tree/debian/auditorai-transcoding.service" \
  || die "could not rewrite WorkingDirectory= for the package layout"

# changelog: the version is package.json's; the date is the last commit's (reproducible).
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$tree/debian/changelog" <<CHANGELOG
audio-convert ($version) unstable; urgency=medium

  * Built from the audio-convert repository at commit $commit.

 -- AuditorAI operations <auditorai@reincar.example>  $when
CHANGELOG

echo "package-deb: dpkg-buildpackage"
(cd "$tree" && SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s) \
  dpkg-buildpackage --build=binary --no-sign >"$work/build.log" 2>&1) \
  || { cat "$work/build.log" >&2; die "dpkg-buildpackage failed"; }

mkdir -p dist
deb="dist/audio-convert_${version}_all.deb"
cp "$work/audio-convert_${version}_all.deb" "$deb"
echo "package-deb: $deb ($(du -k "$deb" | cut -f1) KiB)"
