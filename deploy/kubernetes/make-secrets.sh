#!/usr/bin/env bash
# The Secrets of the Kubernetes demo (deploy/kubernetes/), from a dev PKI directory, as YAML on
# stdout; nothing is sent to a cluster (kubectl renders them offline, --dry-run=client):
#
#   deploy/kubernetes/make-secrets.sh DIR [NAMESPACE] | kubectl apply -f -
#   deploy/kubernetes/make-secrets.sh --files      the files it reads from DIR, one a line
#
# DIR is made by `gatehouse-certs init --dir DIR --service idp ... --service redis` and
# `gatehouse-certs jwt-keys --dir DIR` (docs/kubernetes.md); NAMESPACE defaults to gatehouse.
# It writes:
#   gatehouse-tls-NAME    for each identity: ca.pem, NAME.pem, NAME-key.pem (one Secret per pod
#                         kind, so that a pod holds its own key only; ca-key.pem never leaves DIR)
#   gatehouse-jwt         jwt-signing-key.pem (the idp's app container)
#   gatehouse-redis-edge  password: the edges' Redis password
#   gatehouse-redis-acl   users.acl: Redis's ACL file, `default` off and `edge` with the SHA-256 of
#                         that password (the same rules as topology/src/up/redis.rs)
#   gatehouse-nats-auth   internal-password, orders-password: the broker's two users
# The passwords are made once (48 hex digits from /dev/urandom) and kept in DIR/kubernetes/
# (mode 0600), so running it again gives the same Secrets. Every Secret is labelled
# app.kubernetes.io/part-of=gatehouse. Needs kubectl and sha256sum.
set -euo pipefail

IDENTITIES=(edge internal idp catalog reviews pricing inventory users orders echo nats redis)
# What the edge may do in Redis (docs/edge.md "Shared limits on Redis").
EDGE_RULES='~gatehouse:rl:* +evalsha +eval +script|load +get +set +time +hello +auth +ping'

prog=deploy/kubernetes/make-secrets.sh
# die MESSAGE [EXIT_CODE]
die() { printf '%s: %s\n' "$prog" "$1" >&2; exit "${2:-1}"; }

files() {
  local id
  echo ca.pem
  for id in "${IDENTITIES[@]}"; do printf '%s.pem\n%s-key.pem\n' "$id" "$id"; done
  echo jwt-signing-key.pem
}

if [ "${1:-}" = --files ]; then
  files
  exit 0
fi
[ $# -ge 1 ] && [ $# -le 2 ] && [ "${1:0:1}" != - ] \
  || die "usage: $prog DIR [NAMESPACE] | kubectl apply -f -   (or: $prog --files)" 2
DIR=$1
NS=${2:-gatehouse}
command -v kubectl >/dev/null 2>&1 || die "missing: kubectl (Debian: apt-get install kubectl)" 69
command -v sha256sum >/dev/null 2>&1 || die "missing: sha256sum (Debian: apt-get install coreutils)" 69

[ -d "$DIR" ] || die "no directory $DIR (make the PKI with gatehouse-certs: docs/kubernetes.md)"
missing=()
while read -r f; do [ -r "$DIR/$f" ] || missing+=("$f"); done < <(files)
[ "${#missing[@]}" -eq 0 ] || die "not in $DIR: ${missing[*]} (make them with gatehouse-certs: docs/kubernetes.md)"

# A password kept in DIR/kubernetes/NAME, made on first use.
password() {
  local f=$DIR/kubernetes/$1
  if [ ! -s "$f" ]; then
    mkdir -p "$DIR/kubernetes"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$f")
  fi
  cat "$f"
}

# One Secret as YAML, labelled, without the null creationTimestamp kubectl prints.
secret() {
  local name=$1
  shift
  printf -- '---\n'
  kubectl create secret generic "$name" --namespace "$NS" "$@" --dry-run=client -o yaml \
    | kubectl label --local -f - app.kubernetes.io/part-of=gatehouse -o yaml \
    | grep -v '^  creationTimestamp: null$'
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for id in "${IDENTITIES[@]}"; do
  secret "gatehouse-tls-$id" --from-file="$DIR/ca.pem" --from-file="$DIR/$id.pem" \
    --from-file="$DIR/$id-key.pem"
done
secret gatehouse-jwt --from-file="$DIR/jwt-signing-key.pem"

redis_pw=$(password redis-edge-password)
printf '%s' "$redis_pw" >"$tmp/password"
hash=$(printf '%s' "$redis_pw" | sha256sum)
printf 'user default off\nuser edge on #%s %s\n' "${hash%% *}" "$EDGE_RULES" >"$tmp/users.acl"
secret gatehouse-redis-edge --from-file=password="$tmp/password"
secret gatehouse-redis-acl --from-file=users.acl="$tmp/users.acl"

printf '%s' "$(password nats-internal-password)" >"$tmp/internal-password"
printf '%s' "$(password nats-orders-password)" >"$tmp/orders-password"
secret gatehouse-nats-auth --from-file=internal-password="$tmp/internal-password" \
  --from-file=orders-password="$tmp/orders-password"
