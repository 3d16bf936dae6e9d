#!/bin/sh
# fuzz.sh [seconds] - builds the libFuzzer targets with clang (ASan + UBSan)
# in build-fuzz/ and runs each for a sixth of `seconds` (default 60): the
# wire codec (fuzz_codec, corpus test/fuzz/corpus/codec), the disk store's
# recovery (fuzz_disk, corpus test/fuzz/corpus/disk), the RESP command
# parser (fuzz_resp, corpus test/fuzz/corpus/resp), zraftd's configuration
# (fuzz_config: JSON file, environment, flags), the key-value state
# machine's records and snapshots against a model (fuzz_kv) and the
# bodies of the admin calls (fuzz_admin: POST /cluster/...), each over a
# temporary copy of its corpus, so the repository is never modified. Exits non-zero on
# any crash, leak, sanitizer report or violated property; the crashing input
# is kept in build-fuzz/artifacts/.
#
# Environment: ZRAFT_FUZZ_BUILD (build dir), ZRAFT_JOBS (make -j, default 2),
# ZRAFT_FUZZ_ARGS (extra libFuzzer flags).
set -eu

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [seconds]" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ZRAFT_FUZZ_BUILD:-$root/build-fuzz}
jobs=${ZRAFT_JOBS:-2}
each=$((secs / 6))
[ "$each" -ge 1 ] || each=1

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZRAFT_FUZZ=ON -DZRAFT_SANITIZE=ON \
    >/dev/null
cmake --build "$build" --target fuzz_codec fuzz_disk fuzz_resp fuzz_config fuzz_kv fuzz_admin -j "$jobs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$build/artifacts"

# run TARGET CORPUS MAX_LEN
run() {
    cp -R "$root/test/fuzz/corpus/$2" "$work/$2"
    echo "fuzz.sh: $1 for ${each}s over $(find "$work/$2" -type f | wc -l) seeds"
    # shellcheck disable=SC2086 # ZRAFT_FUZZ_ARGS is a list of flags
    if ! "$build/test/fuzz/$1" -max_total_time="$each" -max_len="$3" \
        -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/" ${ZRAFT_FUZZ_ARGS:-} \
        "$work/$2"; then
        echo "fuzz.sh: $1 FAILED; reproduce with:" >&2
        echo "  $build/test/fuzz/$1 $build/artifacts/<crash-file>" >&2
        exit 1
    fi
}

run fuzz_codec codec 8192
run fuzz_disk disk 65536
run fuzz_resp resp 16384
run fuzz_config config 4096
run fuzz_kv kv 16384
run fuzz_admin admin 8192
echo "fuzz.sh: ok"
