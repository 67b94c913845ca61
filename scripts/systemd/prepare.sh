#!/usr/bin/env bash
# scripts/systemd/prepare.sh -- what `npm run test:systemd` needs before test/systemd/ runs:
#   1. the cached Debian 12 root file system (scripts/systemd/rootfs.sh; built once, minutes);
#   2. dist/systemd-debs/: this tree's package twice, as <version>+systemd.1 and +systemd.2 (an
#      upgrade between two builds), and the last release that shipped transcoding.conf as a
#      conffile (0.1.0, built from commit $CONFFILE_COMMIT, cached: it never changes), for the
#      migration to ADR 0016.
# Fails, saying how to get it, when a tool is missing. Needs root. See docs/testing.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
die() { echo "test:systemd: $*" >&2; exit 1; }
log() { echo "test:systemd: $*" >&2; }

# The last commit whose package shipped /etc/auditorai/transcoding.conf as a conffile.
CONFFILE_COMMIT=5d019bb4724ac1beb4e5414c79d5d079433d1d35
cache=${AUDIOCONVERT_SYSTEMD_CACHE:-/var/cache/audio-convert-ci}

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, systemd-nspawn, mount, nsenter)"
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container nsenter:util-linux \
            dpkg-buildpackage:dpkg-dev dh:debhelper; do
  command -v "${tool%%:*}" >/dev/null \
    || die "${tool%%:*} not found: apt-get update && apt-get install -y debootstrap systemd-container dpkg-dev debhelper (it provides ${tool%%:*}: ${tool#*:})"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "no overlay file system in this kernel (the container runs on an overlay of the cached tree)"

bash scripts/systemd/rootfs.sh >/dev/null

out=dist/systemd-debs
mkdir -p "$out"
rm -f "$out"/audio-convert_*+systemd.*_all.deb
version=$(node -p 'require("./package.json").version')
for n in 1 2; do
  log "building the package as $version+systemd.$n"
  AUDIOCONVERT_DEB_VERSION="$version+systemd.$n" bash scripts/package-deb.sh >/dev/null
  mv "dist/audio-convert_${version}+systemd.${n}_all.deb" "$out/"
done

old="$cache/systemd-debs/audio-convert_0.1.0_all.${CONFFILE_COMMIT:0:12}.deb"
if [[ ! -f "$old" ]]; then
  log "building 0.1.0 (the conffile release) from $CONFFILE_COMMIT, once"
  git cat-file -e "$CONFFILE_COMMIT^{commit}" 2>/dev/null || die "commit $CONFFILE_COMMIT is not in this clone (git fetch)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/audio-convert-old.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  git archive "$CONFFILE_COMMIT" | tar -x -C "$tmp"
  # Its lockfile is this tree's (unchanged since): a hard-linked copy of node_modules, since
  # package-deb.sh copies the packages npm ls lists from its own ./node_modules.
  cp -al node_modules "$tmp/node_modules" 2>/dev/null || cp -a node_modules "$tmp/node_modules"
  (cd "$tmp" && bash scripts/package-deb.sh >/dev/null)
  mkdir -p "${old%/*}"
  cp "$tmp/dist/audio-convert_0.1.0_all.deb" "$old.tmp" && mv "$old.tmp" "$old"
fi
cp "$old" "$out/audio-convert_0.1.0_all.deb"
log "ready: $(cd "$out" && echo *.deb)"
