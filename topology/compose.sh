#!/usr/bin/env bash
# The docker-compose demo (topology/docker-compose.yml): build, start, stop, test.
#
#   topology/compose.sh up      build the static binaries and the image, start the topology
#                               (project `gatehouse`), wait until every container is ready and
#                               the edge answers, copy the CA to .gatehouse/compose/ca.pem
#   topology/compose.sh down    stop and remove the containers, networks and the PKI volume
#   topology/compose.sh test    up, the end-to-end checks (tests/python/test_compose.py), then
#                               down, always; bounded by GATEHOUSE_COMPOSE_TIMEOUT (default 20m)
#   topology/compose.sh build   only build the binaries and the image
#
# Options (environment):
#   GATEHOUSE_COMPOSE_NO_BUILD=1   use the image as it is (no cargo build, no docker build)
#   GATEHOUSE_IMAGE                image name (default gatehouse:compose)
#   GATEHOUSE_NATS_IMAGE           the broker's image (default gatehouse-nats:compose): the host's
#                                  Debian nats-server and the libraries it links, on that image
#   GATEHOUSE_REDIS_IMAGE          the store of shared limits (default gatehouse-redis:compose):
#                                  the host's redis-server and redis-cli, the same way
#   GATEHOUSE_LB_IMAGE             the balancer in front of the two edges (default
#                                  gatehouse-lb:compose): the host's haproxy, the same way
#   GATEHOUSE_BIND                 host address of the edge's published ports (default 127.0.0.1)
#   GATEHOUSE_COMPOSE_OVERRIDE     an extra compose file (-f) for local experiments
#   GATEHOUSE_COMPOSE_TIMEOUT      bound of `test` as a whole (timeout(1) syntax, default 20m)
#   GATEHOUSE_COMPOSE_READY_TIMEOUT  seconds `up` waits for readiness (default 120)
#   COMPOSE                        the compose command (default: `docker-compose` when installed,
#                                  else `docker compose`)
#
# Needs: docker (engine + docker-compose v1.29 or the compose v2 plugin), cargo with the
# x86_64-unknown-linux-gnu target, curl, nats-server, redis-server and haproxy (Debian's, copied
# into the images of the broker, the store and the balancer);
# `test` also python3, and the Python clients, which it
# installs in .gatehouse/venv as scripts/test.sh does. What is missing is named in one line before
# anything starts (exit 69; scripts/prereqs.sh).
# The static build goes to target/static (its own target dir: it does not wait on the lock of
# the usual target/), profile `compose` (release without LTO).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
GH_PROG=compose.sh
# shellcheck source=scripts/prereqs.sh
. scripts/prereqs.sh
PROJECT=gatehouse
COMPOSE_YML=topology/docker-compose.yml
TRIPLE=x86_64-unknown-linux-gnu
PROFILE=compose
TARGET_DIR=$ROOT/target/static
STATE_DIR=$ROOT/.gatehouse/compose
export GATEHOUSE_IMAGE=${GATEHOUSE_IMAGE:-gatehouse:compose}
export GATEHOUSE_NATS_IMAGE=${GATEHOUSE_NATS_IMAGE:-gatehouse-nats:compose}
export GATEHOUSE_REDIS_IMAGE=${GATEHOUSE_REDIS_IMAGE:-gatehouse-redis:compose}
export GATEHOUSE_LB_IMAGE=${GATEHOUSE_LB_IMAGE:-gatehouse-lb:compose}
EDGE=127.0.0.1:8443
# The throwaway containers test_compose.py starts on the mesh network (to take a freed IP).
IPHOLDER_LABEL=org.gatehouse.compose-test=ipholder

log() { printf '\n==> compose.sh: %s\n' "$*" >&2; }
die() { printf 'compose.sh: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

TIMINGS=()
timing() { TIMINGS+=("$(printf '%-26s %s' "$1" "$2")"); }
print_timings() {
  [ "${#TIMINGS[@]}" -gt 0 ] || return 0
  printf '\ncompose.sh timings:\n' >&2
  printf '  %s\n' "${TIMINGS[@]}" >&2
}

compose_cmd() {
  if [ -n "${COMPOSE:-}" ]; then
    read -r -a COMPOSE_ARR <<<"$COMPOSE"
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_ARR=(docker-compose)
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_ARR=(docker compose)
  else
    die "neither docker-compose nor the docker compose plugin is installed"
  fi
  COMPOSE_ARR+=(-p "$PROJECT" -f "$COMPOSE_YML")
  if [ -n "${GATEHOUSE_COMPOSE_OVERRIDE:-}" ]; then
    COMPOSE_ARR+=(-f "$GATEHOUSE_COMPOSE_OVERRIDE")
  fi
}
compose() { "${COMPOSE_ARR[@]}" "$@"; }

# Every container of the project, stopped ones included (the same for compose v1 and v2).
project_containers() {
  docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT"
}

# A FROM scratch image has no libc: every binary must be static.
is_static() {
  if command -v file >/dev/null 2>&1; then
    file -b "$1" | grep -Eq 'statically linked|static-pie linked'
  else
    ldd "$1" 2>&1 | grep -Eq 'not a dynamic executable|statically linked'
  fi
}

build() {
  local t
  log "cargo build (static, profile $PROFILE, target $TRIPLE, CARGO_TARGET_DIR=$TARGET_DIR)"
  t=$(now)
  CARGO_TARGET_DIR=$TARGET_DIR \
    RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
    cargo build --locked --profile "$PROFILE" --target "$TRIPLE" --bins \
    -p gatehouse-edge -p gatehouse-internal -p gatehouse-sidecar -p gatehouse-topology -p gatehouse-certs
  timing "static build" "$(since "$t")"

  local bin=$TARGET_DIR/$TRIPLE/$PROFILE ctx=$TARGET_DIR/image b
  rm -rf "$ctx"
  mkdir -p "$ctx"
  for b in gatehouse-edge gatehouse-internal gatehouse-sidecar gatehouse-topology gatehouse-certs; do
    is_static "$bin/$b" || die "$bin/$b is not statically linked"
    cp "$bin/$b" "$ctx/$b"
  done

  log "docker build -t $GATEHOUSE_IMAGE (FROM scratch)"
  t=$(now)
  docker_build -t "$GATEHOUSE_IMAGE" -f topology/docker/Dockerfile "$ctx"
  timing "image build" "$(since "$t")"

  t=$(now)
  host_image "$GATEHOUSE_NATS_IMAGE" gatehouse-nats "nats-server (Debian) with JetStream" \
    /usr/sbin/nats-server:nats-server
  host_image "$GATEHOUSE_REDIS_IMAGE" gatehouse-redis "redis-server and redis-cli (Debian)" \
    /usr/bin/redis-server:redis-server /usr/bin/redis-cli:redis-tools
  host_image "$GATEHOUSE_LB_IMAGE" gatehouse-lb "haproxy (Debian), TCP balancer of the edges" \
    /usr/sbin/haproxy:haproxy
  timing "server images build" "$(since "$t")"
}

# docker build, quiet; the classic builder where buildx is missing (it warns that it is
# deprecated; FROM scratch and our own base need no pull).
docker_build() {
  if docker buildx version >/dev/null 2>&1; then
    docker build -q "$@" >/dev/null
  else
    DOCKER_BUILDKIT=0 docker build -q "$@" >/dev/null
  fi
}

# IMAGE TITLE DESCRIPTION PATH:PACKAGE...: each program at PATH in the image (where Debian's
# PACKAGE installs it, and where the compose file and deploy/kubernetes/ run it), copied from
# that path on the host, else from the PATH (symlinks resolved), with every file `ldd` lists for
# it at its own path, on the Gatehouse image (topology/docker/Dockerfile.host).
host_image() {
  local image=$1 title=$2 description=$3 ctx=$TARGET_DIR/$2-image spec dest src f
  shift 3
  log "docker build -t $image on $GATEHOUSE_IMAGE"
  rm -rf "$ctx"
  for spec in "$@"; do
    dest=${spec%%:*}
    src=$dest
    [ -x "$src" ] || src=$(command -v "$(basename "$dest")" 2>/dev/null) \
      || die "$dest not found (Debian: apt-get install ${spec#*:})"
    mkdir -p "$ctx/rootfs$(dirname "$dest")"
    cp -L "$src" "$ctx/rootfs$dest"
    for f in $(ldd "$src" | grep -o '/[^ ]*' | sort -u); do
      mkdir -p "$ctx/rootfs$(dirname "$f")"
      cp -L "$f" "$ctx/rootfs$f"
    done
  done
  docker_build -t "$image" --build-arg GATEHOUSE_IMAGE="$GATEHOUSE_IMAGE" \
    --build-arg TITLE="$title" --build-arg DESCRIPTION="$description for the Gatehouse demo" \
    -f topology/docker/Dockerfile.host "$ctx"
}

# Whether every container is ready: 0 when all are, 1 while waiting, 2 when one failed (printed:
# exited non-zero, a long-running one exited, or unhealthy).
check_ready() {
  local ids line name status code health pending=0 failed=0
  ids=$(project_containers)
  [ -n "$ids" ] || return 1
  while read -r line; do
    read -r name status code health <<<"$line"
    name=${name#/}
    case "$status/$health" in
      running/healthy) ;;
      exited/none) [ "$code" = 0 ] || { echo "  $name exited with $code" >&2; failed=1; } ;;
      exited/*|dead/*) echo "  $name exited with $code" >&2; failed=1 ;;
      */unhealthy) echo "  $name is unhealthy" >&2; failed=1 ;;
      *) pending=$((pending + 1)) ;;
    esac
  done < <(docker inspect --format \
    '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \
    $ids)
  [ "$failed" = 0 ] || return 2
  [ "$pending" = 0 ] || return 1
  return 0
}

show_failures() {
  local id state
  for id in $(project_containers); do
    state=$(docker inspect --format \
      '{{.State.Status}}/{{.State.ExitCode}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
    case "$state" in running/*/healthy | exited/0/none) continue ;; esac
    printf '\n--- %s (%s): last log lines ---\n' "$(docker inspect --format '{{.Name}}' "$id")" "$state" >&2
    docker logs --tail 30 "$id" 2>&1 | cut -c1-400 >&2 || true
  done
}

up() {
  local t rc deadline certs
  [ "${GATEHOUSE_COMPOSE_NO_BUILD:-0}" = 1 ] || build
  docker image inspect "$GATEHOUSE_IMAGE" >/dev/null 2>&1 \
    || die "image $GATEHOUSE_IMAGE not found: run without GATEHOUSE_COMPOSE_NO_BUILD=1"

  log "${COMPOSE_ARR[*]} up -d"
  t=$(now)
  compose up -d --remove-orphans
  deadline=$(( $(date +%s) + ${GATEHOUSE_COMPOSE_READY_TIMEOUT:-120} ))
  while :; do
    rc=0
    check_ready 2>/dev/null || rc=$?
    [ "$rc" = 0 ] && break
    if [ "$rc" = 2 ] || [ "$(date +%s)" -ge "$deadline" ]; then
      check_ready || true
      show_failures
      die "the topology did not become ready (see the logs above; \`$0 down\` cleans up)"
    fi
    sleep 0.5
  done

  # The CA out of the volume, for clients on the host (the one-shot container keeps the mount).
  mkdir -p "$STATE_DIR"
  certs=$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=certs" | head -n1)
  [ -n "$certs" ] || die "the certs container is missing"
  docker cp "$certs:/certs/ca.pem" "$STATE_DIR/ca.pem"

  # End to end: the edge answers a public route once discovery has found the services.
  local ok=0 i
  if command -v curl >/dev/null 2>&1; then
    for i in $(seq 1 60); do
      if curl -sf -o /dev/null --max-time 2 --cacert "$STATE_DIR/ca.pem" "https://$EDGE/api/catalog/products"; then
        ok=1
        break
      fi
      sleep 0.5
    done
    [ "$ok" = 1 ] || die "every container is ready but https://$EDGE/api/catalog/products does not answer 200"
  fi
  timing "compose up to ready" "$(since "$t")"
  log "ready in $(since "$t") after \`up -d\`"
  cat >&2 <<EOF

  edge       https://$EDGE (HTTP/1.1, HTTP/2: the balancer over edge-1 and edge-2; HTTP/3 on udp 8443:
             edge-1), http://127.0.0.1:8080 (redirect)
  admin      edge-1 http://127.0.0.1:19000, edge-2 http://127.0.0.1:19002,
             internal gateway http://127.0.0.1:19001 (/upstreams, /routes, /metrics)
  CA         $STATE_DIR/ca.pem

  curl --cacert $STATE_DIR/ca.pem https://$EDGE/api/catalog/products
  TOKEN=\$(curl -s --cacert $STATE_DIR/ca.pem -u web-app:web-app-dev-secret -d grant_type=client_credentials https://$EDGE/oauth/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
  curl --cacert $STATE_DIR/ca.pem -H "authorization: Bearer \$TOKEN" https://$EDGE/api/users/me

  logs: ${COMPOSE_ARR[*]} logs -f edge-1      stop: $0 down
EOF
}

down() {
  local t
  t=$(now)
  log "${COMPOSE_ARR[*]} down -v"
  local holders
  holders=$(docker ps -a -q --filter "label=$IPHOLDER_LABEL")
  [ -z "$holders" ] || docker rm -f $holders >/dev/null
  compose down -v --remove-orphans --timeout 5
  rm -rf "$STATE_DIR"
  timing "compose down" "$(since "$t")"
}

run_checks() {
  local t
  log "end-to-end checks: .gatehouse/venv/bin/python -m pytest tests/python/test_compose.py"
  t=$(now)
  GATEHOUSE_COMPOSE_EDGE=$EDGE \
    GATEHOUSE_COMPOSE_CA=$STATE_DIR/ca.pem \
    GATEHOUSE_COMPOSE_CMD="${COMPOSE_ARR[*]}" \
    timeout --foreground -k 10s 10m "$GH_PYTHON" -m pytest -q -s -p no:cacheprovider tests/python/test_compose.py
  timing "end-to-end checks" "$(since "$t")"
}

# `test`: up, checks, and down whatever happens (failure, timeout, Ctrl-C, SIGTERM). The bounded
# part runs as a child under timeout(1), in the background so that a signal reaches our trap at
# once; `down` runs here, after it.
test_all() {
  local rc=0 bound=${GATEHOUSE_COMPOSE_TIMEOUT:-20m}
  TEST_STARTED=$(now)
  CHECK_PID=
  trap 'down || true; timing "compose.sh test (total)" "$(since "$TEST_STARTED")"; print_timings' EXIT
  trap 'echo "compose.sh: interrupted; cleaning up" >&2
        if [ -n "$CHECK_PID" ]; then kill -TERM "$CHECK_PID" 2>/dev/null || true; wait "$CHECK_PID" 2>/dev/null || true; fi
        exit 130' INT TERM
  timeout -k 30s "$bound" "$0" _up-and-check &
  CHECK_PID=$!
  wait "$CHECK_PID" || rc=$?
  CHECK_PID=
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "compose.sh: test timed out after $bound" >&2
  fi
  return "$rc"
}

# What each command runs, checked before it starts: a `test` that stops with `No module named
# pytest` after minutes of building and starting is what this avoids.
needs_build=(cargo nats redis haproxy)
[ "${GATEHOUSE_COMPOSE_NO_BUILD:-0}" != 1 ] || needs_build=()
case "${1:-}" in
  build) gh_require docker docker-engine cargo nats redis haproxy; trap print_timings EXIT; build ;;
  up) gh_require docker docker-engine compose "${needs_build[@]}"; compose_cmd; trap print_timings EXIT; up ;;
  down) gh_require docker compose; compose_cmd; down ;;
  test)
    gh_require docker docker-engine compose "${needs_build[@]}" python3 venv
    gh_venv
    compose_cmd
    test_all
    ;;
  _up-and-check) compose_cmd; trap print_timings EXIT; up; run_checks ;;
  *)
    # The comment block at the top of this file.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 64
    ;;
esac
