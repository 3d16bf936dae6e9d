#!/usr/bin/env bash
# Fails if libzraft_core.a references anything beyond pure libc: no threads,
# no clocks, no sockets, no files, no ZeroMQ. Usage: check-core-symbols.sh LIB
set -euo pipefail
lib=$1
allowed='^(malloc|calloc|realloc|free|memcpy|memmove|memset|memcmp|memchr|strlen|strcmp|strncmp|strnlen|strncpy|strchr|snprintf|abort|__assert_fail|__stack_chk_fail|__ubsan_.*|__asan_.*|__sanitizer_.*|__msan_.*|__tsan_.*|_GLOBAL_OFFSET_TABLE_|__memcpy_chk|__memset_chk|__snprintf_chk|__strncpy_chk|qsort|bsearch|asan\..*|__ubsan_handle_.*)$'
bad=$(nm --undefined-only "$lib" | awk 'NF>=2 && $1=="U" {print $2}' | sort -u |
      grep -Ev "$allowed" || true)
# Symbols defined inside the archive itself are fine.
defined=$(nm --defined-only "$lib" | awk 'NF>=3 {print $3}' | sort -u)
out=""
for s in $bad; do
  grep -qx "$s" <<<"$defined" || out="$out $s"
done
if [ -n "$out" ]; then
  echo "core_symbols: libzraft_core.a calls outside pure libc:$out" >&2
  exit 1
fi
echo "core_symbols: ok ($(nm --undefined-only "$lib" | awk '$1=="U"' | sort -u | wc -l) undefined refs, all libc)"
