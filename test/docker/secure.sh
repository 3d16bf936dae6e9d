# test/docker/secure.sh - the secure phase of test/docker/run.sh (sourced by
# it, with its helpers): docker-compose.secure.yml's 3 nodes make their
# keys, CA, certificates and tokens at first start
# (server/zraft-secure-start), turn healthy (the health check speaks HTTPS),
# elect a leader over CurveZMQ, and serve HTTPS with tokens: the cluster's
# CA is trusted and another is not, /kv without the token is 401 and with
# it works through every node (redirects carry it: --location-trusted),
# /cluster/* wants the admin token. Then the
# project is removed with its volumes.
# shellcheck shell=bash disable=SC2154 # root, DOCKER, COMPOSE: run.sh's

if [ "$compose_up" = 1 ]; then
  step "compose down -v (plain cluster)" "${COMPOSE[@]}" down -v --remove-orphans \
    --timeout "$STOP_TIMEOUT"
  compose_up=0
fi
base_cmd=()
for a in "${COMPOSE[@]}"; do
  [ "$a" != -p ] || break
  base_cmd+=("$a")
done
COMPOSE=("${base_cmd[@]}" -p "${PROJECT}sec" -f "$root/docker-compose.secure.yml")
CIDS=()
sport() { echo $((18100 + $1)); }
compose_up=1
step "compose up (secure, 3 nodes)" "${COMPOSE[@]}" up -d --no-build zraft1 zraft2 zraft3
check "every container is healthy (HEALTHCHECK over HTTPS)" wait_for 90 healthy 1 2 3
secrets() { "$DOCKER" exec "$(cid 1)" cat "/var/lib/zraft-secrets/$1"; }
secrets ca.pem >"$work/ca.pem"
API=$(secrets api.token)
ADMIN=$(secrets admin.token)
check "the secrets were made (CA, tokens)" \
  bash -c "grep -q 'BEGIN CERTIFICATE' '$work/ca.pem' && [ -n '$API' ] && [ -n '$ADMIN' ]"
SCONNECT=()
for n in 1 2 3; do SCONNECT+=(--connect-to "zraft$n:8001:127.0.0.1:$(sport "$n")"); done
scurl() { # node path [curl args...]
  local n=$1 p=$2
  shift 2
  curl -s -L --location-trusted --max-time 10 --cacert "$work/ca.pem" \
    "${SCONNECT[@]}" "$@" \
    "https://zraft$n:8001$p" || true
}
status_url() { echo "https://zraft$1:8001/cluster/status"; }
field() {
  scurl "$1" /cluster/status -H "Authorization: Bearer $ADMIN" |
    python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v)' "$2" 2>/dev/null || true
}
check "a leader is elected over CURVE" wait_for 60 has_leader 1 2 3
check "every node says security curve" bash -c \
  "for n in 1 2 3; do [ \"\$(curl -s --max-time 5 --cacert '$work/ca.pem' \
     --connect-to zraft\$n:8001:127.0.0.1:\$((18100 + n)) \
     -H 'Authorization: Bearer $ADMIN' https://zraft\$n:8001/cluster/status |
     python3 -c 'import json,sys; print(json.load(sys.stdin)[\"security\"])')\" = curve ] || exit 1; done"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other \
  -keyout "$work/other.key" -out "$work/other.pem" >/dev/null 2>&1
check "a client trusting another CA is refused" bash -c \
  "! curl -s --max-time 5 --cacert '$work/other.pem' ${SCONNECT[*]} https://zraft1:8001/healthz"
check "PUT /kv without the token: 401" \
  [ "$(scurl 1 /kv/s1 -o /dev/null -w '%{http_code}' -X PUT --data-binary x)" = 401 ]
check "POST /cluster/snapshot without the admin token: 401" \
  [ "$(scurl 1 /cluster/snapshot -o /dev/null -w '%{http_code}' -X POST)" = 401 ]
sput() { scurl "$1" "/kv/$2" -o /dev/null -w '%{http_code}' -X PUT \
  -H "Authorization: Bearer $API" --data-binary "$3"; }
swrites() {
  local n
  for n in 1 2 3; do
    [ "$(sput "$n" "s$n" "v$n")" = 204 ] || { echo "    PUT through zraft$n failed"; return 1; }
  done
}
check "PUT /kv with the token through every node (HTTPS redirects)" swrites
check "reads with the token see them" bash -c \
  "[ \"\$(curl -s -L --max-time 10 --cacert '$work/ca.pem' ${SCONNECT[*]} \
     --location-trusted -H 'Authorization: Bearer $API' https://zraft2:8001/kv/s3)\" = v3 ]"
step "compose down -v (secure)" "${COMPOSE[@]}" down -v --remove-orphans \
  --timeout "$STOP_TIMEOUT"
compose_up=0
