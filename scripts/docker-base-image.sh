#!/usr/bin/env bash
# docker-base-image.sh - makes the `debian:bookworm-slim` base image exist in
# the Docker engine that DOCKER_HOST names, without a container registry.
#
# zraft's Dockerfile builds both of its stages FROM debian:bookworm-slim.
# Where no registry is reachable (an air-gapped machine, or one that reaches
# only a Debian mirror), this script builds that image locally:
#   debootstrap --variant=minbase bookworm ROOTFS MIRROR
# with MIRROR taken from this machine's apt sources, trims it the way Debian's
# slim images are trimmed (no docs, man pages or locales; apt caches cleaned),
# tars the root file system into a cache and `docker import`s the tarball.
# The image's /etc/apt/sources.list names the same mirror (and its updates
# and security suites where the host has them), so apt-get works inside it.
#
# Usage: scripts/docker-base-image.sh [--force] [--no-import]
#   --force      rebuild the tarball and re-import even if they exist
#   --no-import  only build (or find) the cached tarball
# Environment:
#   ZRAFT_CACHE          cache directory (default /var/cache/zraft)
#   ZRAFT_BASE_IMAGE     image name to create (default debian:bookworm-slim)
#   ZRAFT_DEBIAN_MIRROR  mirror URL (default: from /etc/apt/sources*)
#   ZRAFT_DOCKER_PULL=1  try `docker pull` first (needs a reachable registry)
#   DOCKER               docker client (default: /usr/bin/docker or docker)
# Needs root (debootstrap) and the debootstrap package.
set -euo pipefail

SUITE=bookworm
CACHE=${ZRAFT_CACHE:-/var/cache/zraft}
IMAGE=${ZRAFT_BASE_IMAGE:-debian:bookworm-slim}
TARBALL=$CACHE/$SUITE-minbase.tar
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
force=0
import=1
for a in "$@"; do
  case "$a" in
  --force) force=1 ;;
  --no-import) import=0 ;;
  *)
    echo "usage: $0 [--force] [--no-import]" >&2
    exit 2
    ;;
  esac
done

say() { echo "base-image: $*" >&2; }

# Prints "URI SUITE" for every enabled `deb` entry of this machine's apt
# sources, one-line (*.list) and deb822 (*.sources) formats alike.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [opt=val ...] URI SUITE COMPONENT...
    awk '$1 == "deb" {
           i = 2
           if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
           if (i + 1 <= NF) print $i, $(i + 1)
         }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Stanzas separated by blank lines; "Key: value" fields, keys in any case.
    awk 'BEGIN { RS = ""; FS = "\n" }
         {
           types = ""; uris = ""; suites = ""; enabled = "yes"; key = ""
           for (l = 1; l <= NF; l++) {
             line = $l
             if (line ~ /^#/) continue
             if (line ~ /^[ \t]/) { val = line }       # continuation line
             else if (match(line, /^[A-Za-z0-9-]+:/)) {
               key = tolower(substr(line, 1, RLENGTH - 1))
               val = substr(line, RLENGTH + 1)
             } else continue
             if (key == "types") types = types " " val
             else if (key == "uris") uris = uris " " val
             else if (key == "suites") suites = suites " " val
             else if (key == "enabled") enabled = tolower(val)
           }
           gsub(/[ \t]/, "", enabled)
           if (enabled == "no" || (" " types " ") !~ /[ \t]deb[ \t]/) next
           nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
           for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
             if (U[i] != "" && S[j] != "") print U[i], S[j]
         }' "$f"
  done
}

# The mirror that serves SUITE (ZRAFT_DEBIAN_MIRROR wins).
find_mirror() {
  if [ -n "${ZRAFT_DEBIAN_MIRROR:-}" ]; then
    echo "$ZRAFT_DEBIAN_MIRROR"
    return
  fi
  apt_sources | awk -v s="$SUITE" '$2 == s && $1 ~ /^(https?|file):/ { print $1; exit }'
}

find_security_mirror() {
  apt_sources | awk -v s="$SUITE-security" '$2 == s || $2 == s "/updates" { print $1; exit }'
}

# Trims ROOTFS like a slim image and points its apt at MIRROR.
slim_rootfs() {
  local root=$1 mirror=$2 security=$3
  # Never install these again (dpkg path filters), and drop what is there.
  cat >"$root/etc/dpkg/dpkg.cfg.d/zraft-slim" <<'EOF'
# Container image: no documentation, manual pages or translations.
# Copyright notices stay.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/man/"* "$root/usr/share/groff/"* "$root/usr/share/info/"* \
    "$root/usr/share/lintian/"* "$root/usr/share/linda/"*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
    -exec rm -rf {} +
  # apt: no package caches kept in layers, no translations, no suggestions.
  cat >"$root/etc/apt/apt.conf.d/zraft-container" <<'EOF'
// Container image: keep layers small.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::AutoRemove::SuggestsImportant "false";
EOF
  {
    echo "deb $mirror $SUITE main"
    echo "deb $mirror $SUITE-updates main"
    if [ -n "$security" ]; then echo "deb $security $SUITE-security main"; fi
  } >"$root/etc/apt/sources.list"
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
    "$root/var/cache/apt/archives/"*.deb "$root/var/cache/debconf/"*-old \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/tmp/"* "$root/root/".bash_history
  # Docker provides these at run time; do not ship the build host's.
  : >"$root/etc/resolv.conf"
  echo localhost >"$root/etc/hostname"
  rm -f "$root/etc/machine-id"
}

build_tarball() {
  command -v debootstrap >/dev/null ||
    { say "debootstrap is not installed (apt-get install debootstrap)"; return 1; }
  [ "$(id -u)" -eq 0 ] || { say "debootstrap needs root"; return 1; }
  local mirror security arch root t0
  mirror=$(find_mirror)
  [ -n "$mirror" ] ||
    { say "no mirror for '$SUITE' in /etc/apt/sources*; set ZRAFT_DEBIAN_MIRROR"; return 1; }
  security=$(find_security_mirror)
  arch=$(dpkg --print-architecture)
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the trap must remove this dir
  trap "rm -rf '$root'" EXIT
  say "debootstrap --variant=minbase $SUITE ($arch) from $mirror"
  t0=$SECONDS
  if ! debootstrap --variant=minbase --arch="$arch" --components=main \
    "$SUITE" "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
    say "debootstrap failed; last lines of $CACHE/debootstrap.log:"
    tail -20 "$CACHE/debootstrap.log" >&2
    return 1
  fi
  say "debootstrap took $((SECONDS - t0))s"
  slim_rootfs "$root" "$mirror" "$security"
  tar --numeric-owner --xattrs -C "$root" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$root"
  trap - EXIT
  say "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
}

if [ "$import" = 1 ] && [ "$force" = 0 ] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE is present"
  exit 0
fi
if [ "$import" = 1 ] && [ "${ZRAFT_DOCKER_PULL:-0}" = 1 ] && "$DOCKER" pull "$IMAGE"; then
  exit 0
fi
if [ "$force" = 1 ] || [ ! -s "$TARBALL" ]; then
  build_tarball
else
  say "using cached $TARBALL"
fi
if [ "$import" = 1 ]; then
  "$DOCKER" import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.zraft.base="debootstrap --variant=minbase bookworm"' \
    --message "debootstrap --variant=minbase $SUITE (scripts/docker-base-image.sh)" \
    "$TARBALL" "$IMAGE" >/dev/null
  say "imported $IMAGE ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
fi
