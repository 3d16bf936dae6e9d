#!/usr/bin/env bash
# System test: HTTPS and bearer tokens on zraftd's API (docs/security.md).
# Three nodes serve HTTPS with a certificate signed by a test CA (openssl),
# a token for /kv and the RESP port, another for /cluster/*:
#   - a client that trusts another CA fails the handshake, the right CA
#     works, plain HTTP gets no answer;
#   - /kv and /cluster/* without a token or with a wrong one (or the other
#     one) answer 401 with a JSON error and WWW-Authenticate; the right
#     token works; /healthz and /metrics are open;
#   - RESP answers -NOAUTH until AUTH <token>, -WRONGPASS for a wrong one;
#   - zraftctl with --cacert/--token/--admin-token writes through a
#     follower (redirect to the leader), reads and lists members;
#     without the token it is refused;
#   - with tls_client_ca (a fourth, single-node cluster), a client without
#     a certificate from that CA is refused and one with it is served.
# Usage: security_api.sh PATH/TO/zraftd PATH/TO/zraftctl
set -euo pipefail
ZRAFTD=${1:?usage: security_api.sh PATH/TO/zraftd PATH/TO/zraftctl}
CTL=${2:?usage: security_api.sh PATH/TO/zraftd PATH/TO/zraftctl}
command -v openssl >/dev/null || { echo "skipped: needs openssl"; exit 77; }
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-api.XXXXXX")
declare -A pids=()
pass=0
fail=0
log_tail=8
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"
resp() { echo "$((base + 200 + $1))"; }

# A CA, a server certificate it signs (for 127.0.0.1), a client one, and
# another CA nobody should trust.
t=$work/tls
mkdir -p "$t"
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=zraft-test-ca \
  -keyout "$t/ca.key" -out "$t/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
  -keyout "$t/other.key" -out "$t/other.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
  -keyout "$t/server.key" -out "$t/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' >"$t/san.ext"
ossl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
  -CAcreateserial -days 2 -extfile "$t/san.ext" -out "$t/server.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=client \
  -keyout "$t/client.key" -out "$t/client.csr"
ossl x509 -req -in "$t/client.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
  -CAcreateserial -days 2 -out "$t/client.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=stranger \
  -keyout "$t/stranger.key" -out "$t/stranger.csr"
ossl x509 -req -in "$t/stranger.csr" -CA "$t/other.pem" -CAkey "$t/other.key" \
  -CAcreateserial -days 2 -out "$t/stranger.pem"
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$work/api.token"
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$work/admin.token"
API=$(cat "$work/api.token")
ADMIN=$(cat "$work/admin.token")

extra_args() {
  printf '%s\n' --tls-cert "$t/server.pem" --tls-key "$t/server.key" \
    --api-token-file "$work/api.token" --admin-token-file "$work/admin.token" \
    --resp-addr "127.0.0.1:$(resp "$1")"
  [ "$1" != 9 ] || printf '%s\n' --tls-client-ca "$t/ca.pem"
}
# The helpers of procs.sh/cluster.sh speak HTTPS with the admin token.
status_url() { echo "https://$(http "$1")/cluster/status"; }
field() {
  curl -s --max-time 2 --cacert "$t/ca.pem" -H "Authorization: Bearer $ADMIN" \
    "$(status_url "$1")" 2>/dev/null |
    python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v)' "$2" 2>/dev/null || true
}
# code N METHOD PATH [TOKEN] [BODY]: the HTTP status.
code() {
  local h=() d=()
  [ -z "${4-}" ] || h=(-H "Authorization: Bearer $4")
  [ -z "${5-}" ] || d=(--data-binary "$5")
  # Redirects to the leader (it may change under load) keep the token.
  curl -s -L --location-trusted --max-time 10 --cacert "$t/ca.pem" \
    -o /dev/null -w '%{http_code}' -X "$2" "${h[@]}" "${d[@]}" \
    "https://$(http "$1")$3"
}
unauthorized() { # N PATH [TOKEN]: 401, JSON error, WWW-Authenticate
  local h=() out
  [ -z "${3-}" ] || h=(-H "Authorization: Bearer $3")
  out=$(curl -s -i --max-time 10 --cacert "$t/ca.pem" "${h[@]}" \
    "https://$(http "$1")$2" | tr -d '\r')
  grep -q '^HTTP/1.1 401' <<<"$out" &&
    grep -qi '^WWW-Authenticate: Bearer realm="zraft"' <<<"$out" &&
    tail -1 <<<"$out" | python3 -c 'import json, sys
o = json.load(sys.stdin); assert o["code"] == "UNAUTHORIZED" and o["error"]'
}
# resp_send N ARGS...: one RESP connection; prints each reply's first line.
resp_send() {
  python3 - "$(resp "$1")" "${@:2}" <<'EOF'
import socket, sys
port, cmds = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
for c in cmds:
    parts = c.split(" ")
    s.sendall(b"*%d\r\n" % len(parts) + b"".join(
        b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts))
    line = f.readline().decode().rstrip("\r\n")
    if line.startswith("$") and line != "$-1":
        line = f.readline().decode().rstrip("\r\n")
    print(line)
EOF
}
EPS="$(http 1),$(http 2),$(http 3)"
ctl() {
  "$CTL" --endpoints "$EPS" --timeout 10 --cacert "$t/ca.pem" "$@"
}

# leader NODES...: the leader they agree on, polled until a deadline (a
# leader seen a moment ago may be changing).
leader() {
  local l deadline=$((SECONDS + 30))
  until l=$(leader_of "$@"); do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
  echo "$l"
}

for id in 1 2 3; do start "$id"; done
check "a leader is elected" wait_for 30 has_leader 1 2 3
L=$(leader 1 2 3)
F=$((L % 3 + 1))

check "a client trusting another CA fails the handshake" bash -c \
  "! curl -s --max-time 5 --cacert '$t/other.pem' https://$(http 1)/healthz"
check "the right CA works (/healthz is open)" \
  [ "$(curl -s --max-time 5 --cacert "$t/ca.pem" "https://$(http 1)/healthz")" = ok ]
check "plain HTTP gets no answer" bash -c \
  "! curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://$(http 1)/healthz | grep -q 200"
check "/metrics is open" [ "$(code 1 GET /metrics)" = 200 ]

check "PUT /kv without a token: 401" unauthorized "$L" /kv/a
check "GET /kv with a wrong token: 401" unauthorized "$L" /kv/a wrong-token
check "/kv with the admin token: 401" unauthorized "$L" /kv/a "$ADMIN"
check "PUT /kv with the token: 204" [ "$(code "$L" PUT /kv/a "$API" v1)" = 204 ]
check "GET /kv with the token: 200" [ "$(code "$L" GET /kv/a "$API")" = 200 ]
check "/cluster/status is open (read-only, the page polls it)" \
  [ "$(code 1 GET /cluster/status)" = 200 ]
check "/cluster/membership without a token: 401" unauthorized 1 /cluster/membership
check "/cluster/membership with the kv token: 401" unauthorized 1 /cluster/membership "$API"
check "POST /cluster/snapshot without a token: 401" \
  [ "$(code "$L" POST /cluster/snapshot)" = 401 ]
check "POST /cluster/learners with a wrong token: 401" \
  [ "$(code "$L" POST /cluster/learners wrong '{"id":7,"raft_addr":"127.0.0.1:1"}')" = 401 ]
check "POST /cluster/snapshot with the admin token: 200" \
  [ "$(code "$L" POST /cluster/snapshot "$ADMIN")" = 200 ]

L=$(leader 1 2 3)
mapfile -t out < <(resp_send "$L" "GET a" "AUTH wrong" "AUTH $API" "GET a" \
  "AUTH default $API" "PING")
check "RESP: -NOAUTH before AUTH (${out[0]})" \
  [ "${out[0]}" = "-NOAUTH Authentication required." ]
check "RESP: -WRONGPASS for a wrong token" \
  [ "${out[1]}" = "-WRONGPASS invalid username-password pair or user is disabled." ]
# After AUTH the GET is served: the value, or (leadership moved meanwhile)
# a redirect, never -NOAUTH.
check "RESP: AUTH <token>, then commands run (${out[3]})" \
  bash -c "[ '${out[2]}' = +OK ] && { [ '${out[3]}' = v1 ] || [[ '${out[3]}' == -MOVED* ]]; }"
check "RESP: AUTH default <token>" \
  bash -c "[ '${out[4]}' = +OK ] && [ '${out[5]}' = +PONG ]"

FE=$(http "$F")
check "zraftctl put through a follower (redirect, token)" \
  "$CTL" --endpoints "$FE" --timeout 10 --cacert "$t/ca.pem" \
  --token "@$work/api.token" put k2 v2
check "zraftctl get" [ "$(ctl --token "$API" get k2)" = v2 ]
check "zraftctl member list (admin token from the environment)" \
  env ZRAFTCTL_ADMIN_TOKEN="$ADMIN" "$CTL" --endpoints "$EPS" --timeout 10 \
  --cacert "$t/ca.pem" member list
check "zraftctl without the token is refused" bash -c \
  "! '$CTL' --endpoints '$EPS' --timeout 10 --cacert '$t/ca.pem' get k2 >/dev/null 2>&1"

# Mutual TLS: node 9, a cluster of its own, wants client certificates.
start 9 "9=$(raft 9)"
check "node 9 is up" wait_for 30 bash -c \
  "[ \"\$(curl -s --max-time 2 --cacert '$t/ca.pem' https://$(http 9)/healthz)\" = ok ]"
check "mTLS: no client certificate: 403" [ "$(code 9 GET /kv/a "$API")" = 403 ]
# mtls_code CERT: the status of GET /kv/a on node 9 with that client
# certificate ("000": the handshake failed).
mtls_code() {
  curl -s --max-time 5 -o /dev/null -w '%{http_code}' --cacert "$t/ca.pem" \
    --cert "$t/$1.pem" --key "$t/$1.key" -H "Authorization: Bearer $API" \
    "https://$(http 9)/kv/a" || true
}
out=$(mtls_code stranger)
check "mTLS: another CA's certificate is refused ($out)" \
  bash -c "[ '$out' = 403 ] || [ '$out' = 000 ]"
check "mTLS: the CA's client certificate is served" bash -c \
  "[ \"\$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' --cacert '$t/ca.pem' \
     --cert '$t/client.pem' --key '$t/client.key' \
     -H 'Authorization: Bearer $API' https://$(http 9)/kv/a)\" = 404 ]"

ok=1
for id in "${!pids[@]}"; do
  kill -TERM "${pids[$id]}"
  if ! wait "${pids[$id]}"; then ok=0; fi
  unset "pids[$id]"
done
check "SIGTERM stops every node with exit 0" [ "$ok" = 1 ]
check "no token in any log" bash -c \
  "! grep -qF -e '$API' -e '$ADMIN' '$work'/log*"
check "no sanitizer report in any node's log" no_sanitizer_report "$work"
echo "$pass passed, $fail failed"
