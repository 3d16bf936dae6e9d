#!/usr/bin/env bash
# install.sh BUILD_DIR - zraft as an embedder and a packager get it:
#  1. `cmake --install` into a temporary prefix: every file in its place,
#     libzraft.so exporting only zraft_* (lib/check-exports.sh), the unit
#     naming the installed zraftd, zraft.pc relocatable (a DESTDIR staging
#     resolves to itself);
#  2. the examples built against that install with `pkg-config --cflags
#     --libs zraft` and with CMake's find_package(zraft) (shared and
#     static), and run: the counter (3 nodes in one process, leader stopped
#     half-way), the ledger (3 processes over TCP, restarted on their data
#     directories with more operations);
#  3. `cpack -G DEB`: the .deb's files, its dependencies (libzmq5,
#     libcjson1, libmicrohttpd12, libcurl4, from dpkg-shlibdeps) and its
#     unit's ExecStart.
# Prints "ok   ..." per check and "N passed, 0 failed"; exits 1 at the
# first failure.
set -euo pipefail
build=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zraft-pkg.XXXXXX")
pids=()
pass=0
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    for f in "$tmp"/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
    echo "$pass passed, 1 failed"
    exit 1
  fi
}
quiet() { "$@" >"$tmp/step.log" 2>&1 || { cat "$tmp/step.log"; return 1; }; }
CC=${CC:-cc}

# ------------------------------------------------------------ 1. install
P=$tmp/prefix
check "cmake --install into $P" quiet cmake --install "$build" --prefix "$P"
for f in bin/zraftd bin/zraftctl bin/zraft-bench \
  lib/libzraft.a lib/libzraft.so lib/libzraft.so.0 \
  include/zraft.h include/zraft_types.h include/zraft_storage.h \
  include/zraft_disk.h include/zraft_version.h \
  lib/pkgconfig/zraft.pc lib/cmake/zraft/zraftConfig.cmake \
  lib/cmake/zraft/zraftConfigVersion.cmake lib/cmake/zraft/zraftTargets.cmake \
  share/man/man8/zraftd.8.gz share/man/man1/zraftctl.1.gz \
  share/man/man1/zraft-bench.1.gz \
  lib/systemd/system/zraftd@.service share/doc/zraft/node.json.example \
  share/doc/zraft/examples/counter.c share/bash-completion/completions/zraftctl; do
  [ -e "$P/$f" ] || { echo "missing: $f"; false; }
done
echo "ok   every file installed"
pass=$((pass + 1))
check "libzraft.so: only zraft_*, all declared, SONAME" \
  "$src/lib/check-exports.sh" "$P/lib/libzraft.so" "$P/include"
check "SONAME is libzraft.so.0" \
  bash -c "objdump -p '$P/lib/libzraft.so' | grep -q 'SONAME *libzraft.so.0$'"
check "the unit runs the installed zraftd" \
  grep -qx "ExecStart=$P/bin/zraftd --config /etc/zraft/%i.json" \
  "$P/lib/systemd/system/zraftd@.service"
if command -v systemd-analyze >/dev/null; then
  cp "$P/lib/systemd/system/zraftd@.service" "$tmp/zraftd@1.service"
  # It exits 0 even on lines it ignores: it must say nothing at all.
  check "systemd-analyze verify has nothing to say about the unit" \
    bash -c "out=\$(systemd-analyze verify --man=no '$tmp/zraftd@1.service' 2>&1); [ -z \"\$out\" ] || echo \"\$out\"; [ -z \"\$out\" ]"
fi
export PKG_CONFIG_PATH=$P/lib/pkgconfig
check "pkg-config --modversion zraft" [ "$(pkg-config --modversion zraft)" = "$(
  sed -n 's/^#define ZRAFT_VERSION *"\(.*\)"/\1/p' "$P/include/zraft_version.h")" ]
S=$tmp/stage
DESTDIR=$S quiet cmake --install "$build" --prefix /usr/local
check "a DESTDIR staging's zraft.pc points into the staging" \
  [ "$(realpath "$(PKG_CONFIG_PATH=$S/usr/local/lib/pkgconfig pkg-config --variable=includedir zraft)")" = "$S/usr/local/include" ]

# ------------------------------------------------------------ 2. examples
E=$tmp/ex
mkdir -p "$E"
# shellcheck disable=SC2046 # pkg-config's words
check "counter.c builds with pkg-config" quiet $CC -std=c11 -Wall -Wextra -Werror \
  -o "$E/counter" "$src/examples/counter.c" $(pkg-config --cflags --libs zraft) \
  -Wl,-rpath,"$P/lib"
# shellcheck disable=SC2046
check "ledger.c builds with pkg-config" quiet $CC -std=c11 -Wall -Wextra -Werror \
  -o "$E/ledger" "$src/examples/ledger.c" $(pkg-config --cflags --libs zraft) \
  -Wl,-rpath,"$P/lib"
check "the counter links the installed libzraft.so" \
  bash -c "ldd '$E/counter' | grep -q '$P/lib/libzraft.so.0'"
check "counter: 3 nodes, leader stopped half-way, exact total" \
  bash -c "'$E/counter' 400 >'$tmp/counter.log' 2>&1 && grep -q '^ok: expected 80200' '$tmp/counter.log'"

# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
addrs="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
mkdir -p "$tmp/ledger"
# ledger_run OPS: starts the three processes, waits (deadline) for each to
# report, checks they agree and say ok, stops them with SIGTERM (exit 0).
ledger_run() {
  local ops=$1 i
  pids=()
  for i in 1 2 3; do
    "$E/ledger" $i "$tmp/ledger/n$i" "$addrs" "$ops" >"$tmp/ledger$i.out" 2>"$tmp/ledger$i.log" &
    pids+=($!)
  done
  local deadline=$((SECONDS + 120))
  while [ "$(cat "$tmp"/ledger[123].out | wc -l)" -lt 3 ]; do
    [ $SECONDS -lt $deadline ] || { echo "ledger: no report in 120 s"; return 1; }
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "ledger $p exited early"; return 1; }; done
    sleep 0.2
  done
  cat "$tmp"/ledger[123].out
  local states
  states=$(sed 's/^node [0-9]*: //' "$tmp"/ledger[123].out | sort -u)
  [ "$(echo "$states" | wc -l)" = 1 ] || { echo "the nodes disagree"; return 1; }
  echo "$states" | grep -q "^seq=$ops .* ok$" || return 1
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  for p in "${pids[@]}"; do wait "$p" || { echo "ledger $p: exit $?"; return 1; }; done
  pids=()
}
check "ledger: 3 processes agree after 300 operations" ledger_run 300
check "ledger: restarted on its data, 600 operations" ledger_run 600

C=$tmp/cmake-ex
check "examples build with find_package(zraft)" quiet cmake -S "$src/examples" -B "$C" \
  -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=RelWithDebInfo
check "... and compile (shared and static)" quiet cmake --build "$C" -j 2
check "counter-static has no libzraft.so" bash -c "! ldd '$C/counter-static' | grep -q libzraft"
check "counter (find_package, shared) runs" bash -c "'$C/counter' 100 | grep -q '^ok:'"
check "counter (find_package, static) runs" bash -c "'$C/counter-static' 100 | grep -q '^ok:'"

# ------------------------------------------------------------ 3. the .deb
D=$tmp/deb
check "cpack -G DEB" quiet cpack -G DEB -B "$D" --config "$build/CPackConfig.cmake"
deb=$(ls "$D"/zraft_*.deb)
echo "     $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$tmp/deb.files"
for f in /usr/bin/zraftd /usr/bin/zraftctl /usr/bin/zraft-bench \
  /usr/lib/libzraft.so.0 /usr/lib/libzraft.a /usr/include/zraft.h \
  /usr/lib/pkgconfig/zraft.pc /usr/lib/cmake/zraft/zraftConfig.cmake \
  /usr/lib/systemd/system/zraftd@.service /usr/share/man/man8/zraftd.8.gz \
  /usr/share/man/man1/zraftctl.1.gz /usr/share/man/man1/zraft-bench.1.gz; do
  grep -qx "$f" "$tmp/deb.files" || grep -q "^$f" "$tmp/deb.files" ||
    { echo "not in the .deb: $f"; false; }
done
echo "ok   the .deb holds the programs, library, headers, man pages, unit"
pass=$((pass + 1))
deps=$(dpkg-deb -f "$deb" Depends)
echo "     Depends: $deps"
for d in libzmq5 libcjson1 libmicrohttpd12 libcurl4 libc6; do
  check "the .deb depends on $d" grep -q "\b$d\b" <<<"$deps"
done
dpkg-deb -x "$deb" "$tmp/x"
check "the packaged unit runs /usr/bin/zraftd" \
  grep -qx "ExecStart=/usr/bin/zraftd --config /etc/zraft/%i.json" \
  "$tmp/x/usr/lib/systemd/system/zraftd@.service"
echo "$pass passed, 0 failed"
