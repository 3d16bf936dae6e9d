#!/bin/sh
# fuzz.sh [seconds] - builds the libFuzzer targets with clang (ASan + UBSan)
# in build-fuzz/ and runs the wire codec fuzzer for `seconds` (default 60)
# over a temporary copy of test/fuzz/corpus/codec, so the repository is never
# modified. Exits non-zero on any crash, leak, sanitizer report or violated
# property; the crashing input is kept in build-fuzz/artifacts/.
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

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZRAFT_FUZZ=ON -DZRAFT_SANITIZE=ON \
    >/dev/null
cmake --build "$build" --target fuzz_codec -j "$jobs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp -R "$root/test/fuzz/corpus/codec" "$work/corpus"
mkdir -p "$build/artifacts"

echo "fuzz.sh: fuzz_codec for ${secs}s over $(find "$work/corpus" -type f | wc -l) seeds"
# shellcheck disable=SC2086 # ZRAFT_FUZZ_ARGS is a list of flags
if ! "$build/test/fuzz/fuzz_codec" -max_total_time="$secs" -max_len=8192 \
    -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/" ${ZRAFT_FUZZ_ARGS:-} \
    "$work/corpus"; then
    echo "fuzz.sh: FAILED; reproduce with:" >&2
    echo "  $build/test/fuzz/fuzz_codec $build/artifacts/<crash-file>" >&2
    exit 1
fi
echo "fuzz.sh: ok"
