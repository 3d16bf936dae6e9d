#!/usr/bin/env bash
# deb-docker.sh BUILD_DIR - the .deb on a clean Debian 12: builds it
# (cpack), then in a fresh debian:bookworm-slim container runs
# `apt-get install ./zraft_*.deb`, which must pull libzmq5, libcjson1,
# libmicrohttpd12 and libcurl4 from the Debian mirror, and uses what it
# installed: a one-node zraftd (memory storage) driven with zraftctl
# (put, get, status), zraft-bench in process, the library, headers and
# unit in place; `dpkg -r` removes it all.
#
# Engine: the one `docker info` reaches, else the private one of
# test/docker/dockerd.sh (started and stopped here). Run it under
# `flock /tmp/zraft-docker.lock` on a shared machine (scripts/test.sh
# does). Exit 0 pass, 1 fail, 77 skipped (no Docker here: says why).
set -euo pipefail
build=$(cd "${1:?usage: deb-docker.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zraft-deb.XXXXXX")
own_engine=0
cleanup() {
  rm -rf "$tmp"
  if [ "$own_engine" = 1 ]; then "$root/test/docker/dockerd.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
skip() { echo "SKIP: $*"; exit 77; }
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
command -v "$DOCKER" >/dev/null || skip "no docker client (test/docker/run.sh installs docker.io)"
if ! "$DOCKER" info >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || skip "no Docker engine answers and starting one needs root"
  eval "$("$root/test/docker/dockerd.sh" env)"
  if ! "$root/test/docker/dockerd.sh" status; then
    "$root/test/docker/dockerd.sh" start >/dev/null 2>&1 || skip "cannot start dockerd"
    own_engine=1
  fi
fi
"$root/scripts/docker-base-image.sh" >"$tmp/base.log" 2>&1 ||
  { tail -20 "$tmp/base.log"; echo "FAIL base image"; exit 1; }

cpack -G DEB -B "$tmp/deb" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; echo "FAIL cpack"; exit 1; }
deb=$(basename "$(ls "$tmp"/deb/zraft_*.deb)")
echo "package: $deb"

# Inside the container: each step prints "ok   ..." or fails the script.
cat >"$tmp/deb/inside.sh" <<'INSIDE'
set -eu
ok() { echo "ok   $*"; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
for p in libzmq5 libcjson1 libmicrohttpd12 libcurl4; do
  ! dpkg -s "$p" >/dev/null 2>&1 || { echo "FAIL $p was there before"; exit 1; }
done
apt-get install -y -qq --no-install-recommends ./"$1" >/tmp/apt.log 2>&1 ||
  { cat /tmp/apt.log; echo "FAIL apt-get install ./$1"; exit 1; }
ok "apt-get install ./$1 on a clean debian:bookworm-slim"
for p in libzmq5 libcjson1 libmicrohttpd12 libcurl4; do
  dpkg -s "$p" >/dev/null 2>&1 || { echo "FAIL $p not pulled in"; exit 1; }
done
ok "it pulled libzmq5, libcjson1, libmicrohttpd12, libcurl4"
for f in /usr/bin/zraftd /usr/bin/zraftctl /usr/bin/zraft-bench /usr/lib/libzraft.so.0 \
  /usr/include/zraft.h /usr/lib/systemd/system/zraftd@.service; do
  [ -e "$f" ] || { echo "FAIL missing $f"; exit 1; }
done
# (The slim image excludes /usr/share/man from every package it installs;
# test/package/install.sh checks the .deb holds the man pages.)
ok "programs, library, headers and unit in place"
zraftd --id 1 --raft-addr 127.0.0.1:7001 --http-addr 127.0.0.1:8001 \
  --initial-cluster 1=127.0.0.1:7001 --storage memory >/tmp/zraftd.log 2>&1 &
pid=$!
i=0
until zraftctl --endpoints 127.0.0.1:8001 --timeout 2 put hello world >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 100 ] || { cat /tmp/zraftd.log; echo "FAIL zraftd never took a write"; exit 1; }
  sleep 0.1
done
[ "$(zraftctl --endpoints 127.0.0.1:8001 get hello)" = world ] || { echo "FAIL get"; exit 1; }
zraftctl --endpoints 127.0.0.1:8001 status | grep -q leader || { echo "FAIL status"; exit 1; }
ok "the installed zraftd serves zraftctl put, get, status"
kill -TERM $pid
wait $pid || { echo "FAIL zraftd exit $?"; exit 1; }
ok "zraftd stops cleanly on SIGTERM"
zraft-bench --nodes 3 --clients 4 --ops 2000 >/tmp/bench.log 2>&1 ||
  { cat /tmp/bench.log; echo "FAIL zraft-bench"; exit 1; }
ok "the installed zraft-bench runs ($(tail -1 /tmp/bench.log | awk '{print $5}') writes/s)"
dpkg -r zraft >/dev/null
[ ! -e /usr/bin/zraftd ] && [ ! -e /usr/lib/libzraft.so.0 ] || { echo "FAIL dpkg -r left files"; exit 1; }
ok "dpkg -r zraft removes it"
INSIDE
t0=$SECONDS
rc=0
"$DOCKER" run --rm -v "$tmp/deb:/deb:ro" -w /deb debian:bookworm-slim \
  sh /deb/inside.sh "$deb" | tee "$tmp/inside.out" || rc=$?
n=$(grep -c '^ok ' "$tmp/inside.out" || true)
if [ "$rc" != 0 ] || [ "$n" != 7 ]; then
  echo "$n passed, 1 failed"
  exit 1
fi
echo "$n passed, 0 failed ($((SECONDS - t0)) s in the container)"
