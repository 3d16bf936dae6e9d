# ports.sh - a block of TCP ports for one test script, no two scripts the
# same block: ctest -j runs several at once, and random bases in one range
# collided ("Address already in use", seen in CI). Source it, then call
# port_base before using $base (procs.sh reads it when sourced).
# shellcheck shell=bash

# port_base: sets `base` to the first port of a 500-port block in
# 10000..29999 that no other zraft test holds: a lock file per block
# (/tmp/zraft-test-ports-N.lock), held until this shell exits. The range
# is below the kernel's ephemeral ports (32768 and up), so no outgoing
# connection takes one of these ports either.
port_base() {
  local start=$((RANDOM % 40)) i slot
  for ((i = 0; i < 40; i++)); do
    slot=$(((start + i) % 40))
    exec {zraft_port_fd}>"/tmp/zraft-test-ports-$slot.lock"
    if flock -n "$zraft_port_fd"; then
      base=$((10000 + slot * 500))
      return 0
    fi
    exec {zraft_port_fd}>&-
  done
  echo "port_base: all 40 port blocks are held by other tests" >&2
  return 1
}
