#!/bin/sh
# check-man.sh DIR - fails if groff reports any warning or error on a man
# page in DIR (bad macros, unknown escapes, lines it cannot set).
set -eu
dir=${1:?usage: check-man.sh DIR}
bad=0
for f in "$dir"/*.[0-9]; do
    out=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$f" 2>&1) || bad=1
    if [ -n "$out" ]; then
        echo "$f:"
        echo "$out"
        bad=1
    fi
done
[ "$bad" = 0 ] && echo "man pages: ok ($(ls "$dir"/*.[0-9] | wc -l))"
exit "$bad"
