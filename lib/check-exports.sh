#!/bin/sh
# check-exports.sh LIB.so INCLUDE_DIR - fails unless the shared library's
# dynamic symbol table exports exactly the functions that the public
# headers declare: every zraft_* there, nothing else (no engine_*,
# actor_*, codec_*, ... leaking into embedders' namespaces), and that it
# has a SONAME.
set -eu
lib=${1:?usage: check-exports.sh LIB.so INCLUDE_DIR}
inc=${2:?usage: check-exports.sh LIB.so INCLUDE_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined, exported symbols (the version node ZRAFT_0 is an absolute
# symbol, not code).
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$tmp/exported"
# Functions the headers declare: a zraft_ name followed by "(", comments
# stripped by the preprocessor, outside a typedef or static inline helper.
for h in "$inc"/zraft*.h; do echo "#include \"$h\""; done |
    ${CC:-cc} -E -P -I"$inc" - | grep -v '^static inline\|typedef' |
    grep -o '\bzraft_[a-z0-9_]*(' | tr -d '(' | sort -u >"$tmp/declared"

bad=0
if grep -v '^zraft_' "$tmp/exported" >"$tmp/stray"; then
    echo "exported but not zraft_*:"
    sed 's/^/  /' "$tmp/stray"
    bad=1
fi
if comm -13 "$tmp/exported" "$tmp/declared" | grep . >"$tmp/missing"; then
    echo "declared in the headers but not exported:"
    sed 's/^/  /' "$tmp/missing"
    bad=1
fi
if comm -23 "$tmp/exported" "$tmp/declared" | grep . >"$tmp/extra"; then
    echo "exported but declared in no public header:"
    sed 's/^/  /' "$tmp/extra"
    bad=1
fi
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
if [ -z "$soname" ]; then
    echo "no SONAME"
    bad=1
fi
n=$(wc -l <"$tmp/exported")
if [ "$bad" = 0 ]; then
    echo "ok: $n symbols exported, all zraft_*, all declared; SONAME $soname"
fi
exit "$bad"
