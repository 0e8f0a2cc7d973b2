# shellcheck shell=bash
# What the test commands need, checked before anything runs, and the virtual environment of the
# Python client tests. Sourced, not run, by scripts/test.sh, topology/compose.sh and .ci/run:
#
#   GH_PROG=scripts/test.sh; . scripts/prereqs.sh
#   gh_require cargo nextest python3 venv openssl curl kill
#       checks every name; when any is missing, prints ONE line on stderr and exits 69
#       (EX_UNAVAILABLE, sysexits.h), e.g.
#       scripts/test.sh: missing: cargo-nextest, curl (Debian: apt-get install curl; cargo install cargo-nextest --locked)
#   gh_check NAME...
#       the same checks without stopping: sets GH_MISSING (what is missing), GH_APT (the Debian
#       packages that provide it) and GH_OTHER (the other install commands); .ci/run installs GH_APT
#   gh_venv
#       .gatehouse/venv with tests/python/requirements.txt installed: created on first use
#       (`python3 -m venv`, else `virtualenv`), reinstalled when that file's sha256 differs from the
#       one stamped in the venv, under a lock (flock) so that two runs do not build it at once;
#       sets GH_PYTHON to its interpreter. `rm -rf .gatehouse/venv` starts it afresh.
#
# The names gh_check knows, and what each checks:
#   cargo          `cargo` on PATH
#   nextest        `cargo nextest --version` works (cargo-nextest)
#   python3        `python3` on PATH
#   venv           .gatehouse/venv exists, or can be made: python3 has venv and ensurepip (Debian
#                  splits those into python3-venv), or `virtualenv` is on PATH
#   openssl        /usr/bin/openssl (the Rust tests run that path, certs/tests)
#   curl           `curl` on PATH, built with HTTP/2 (tests/python/test_proxy_clients.py runs
#                  `curl --http2-prior-knowledge`)
#   nats           `nats-server` on PATH or in /usr/sbin (the event tests start their own broker;
#                  without it they skip, except under CI=true)
#   redis          `redis-server` on PATH or in /usr/bin (the shared rate-limit tests start their
#                  own; without it they skip, except under CI=true)
#   haproxy        `haproxy` on PATH or in /usr/sbin (topology/compose.sh copies it into the image
#                  of the load balancer in front of the two edge replicas)
#   kill           a `kill` program, not the shell builtin (internal/tests/signals.rs and
#                  topology/tests/demo/cli.rs run it); Debian's procps
#   docker         `docker` on PATH
#   docker-engine  `docker info` answers (the engine runs and we may talk to it)
#   compose        $COMPOSE set, `docker-compose` on PATH, or `docker compose version` works
#
# Quick when all is in place: `scripts/test.sh --prepare` then runs one `cargo nextest --version`,
# one `curl --version` and one sha256sum, and starts no Python (about 0.04s here).

GH_PROG=${GH_PROG:-$0}
GH_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
GH_VENV=$GH_ROOT/.gatehouse/venv
GH_REQUIREMENTS=$GH_ROOT/tests/python/requirements.txt
GH_PYTHON=$GH_VENV/bin/python

# Whether $1 is one of the other arguments.
_gh_in() {
  local want=$1 x
  shift
  for x in "$@"; do [ "$x" = "$want" ] && return 0; done
  return 1
}

# One missing thing: its name, the Debian package that provides it (or -), another way to
# install it (or -). Each is listed once.
_gh_missing() {
  _gh_in "$1" "${GH_MISSING[@]}" || GH_MISSING+=("$1")
  [ "$2" = - ] || _gh_in "$2" "${GH_APT[@]}" || GH_APT+=("$2")
  [ "$3" = - ] || _gh_in "$3" "${GH_OTHER[@]}" || GH_OTHER+=("$3")
}

# Whether `python3` can make a virtual environment, or `virtualenv` can.
_gh_can_make_venv() {
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || command -v virtualenv >/dev/null 2>&1
}

gh_check() {
  GH_MISSING=() GH_APT=() GH_OTHER=()
  local name
  for name in "$@"; do
    case "$name" in
      cargo)
        command -v cargo >/dev/null 2>&1 || _gh_missing cargo - "Rust: https://rustup.rs" ;;
      nextest)
        cargo nextest --version >/dev/null 2>&1 \
          || _gh_missing cargo-nextest - "cargo install cargo-nextest --locked" ;;
      python3)
        command -v python3 >/dev/null 2>&1 || _gh_missing python3 python3 - ;;
      venv)
        if [ -x "$GH_PYTHON" ]; then
          :
        elif ! command -v python3 >/dev/null 2>&1; then
          _gh_missing python3 python3 -
          _gh_missing python3-venv python3-venv -
        elif ! _gh_can_make_venv; then
          _gh_missing python3-venv python3-venv -
        fi ;;
      openssl)
        [ -x /usr/bin/openssl ] || _gh_missing /usr/bin/openssl openssl - ;;
      curl)
        if ! command -v curl >/dev/null 2>&1; then
          _gh_missing curl curl -
        elif [[ "$(curl --version 2>/dev/null)" != *HTTP2* ]]; then
          _gh_missing "curl with HTTP/2" curl -
        fi ;;
      kill)
        type -P kill >/dev/null 2>&1 || _gh_missing kill procps - ;;
      nats)
        # Debian installs it in /usr/sbin, which a user's PATH may lack.
        command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] ||
          _gh_missing nats-server nats-server - ;;
      redis)
        command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] ||
          _gh_missing redis-server redis-server - ;;
      haproxy)
        command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] ||
          _gh_missing haproxy haproxy - ;;
      docker)
        command -v docker >/dev/null 2>&1 || _gh_missing docker docker.io - ;;
      docker-engine)
        if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
          _gh_missing "a Docker engine that answers (\`docker info\` fails)" - -
        fi ;;
      compose)
        [ -n "${COMPOSE:-}" ] || command -v docker-compose >/dev/null 2>&1 \
          || docker compose version >/dev/null 2>&1 \
          || _gh_missing docker-compose docker-compose "or the docker compose plugin" ;;
      *)
        echo "$GH_PROG: gh_check: unknown name \`$name\`" >&2
        exit 70 ;;
    esac
  done
}

gh_require() {
  gh_check "$@"
  [ "${#GH_MISSING[@]}" -gt 0 ] || return 0
  local line hints=() hint sep=
  line=${GH_MISSING[0]}
  for hint in "${GH_MISSING[@]:1}"; do line+=", $hint"; done
  [ "${#GH_APT[@]}" -eq 0 ] || hints+=("Debian: apt-get install ${GH_APT[*]}")
  hints+=("${GH_OTHER[@]}")
  if [ "${#hints[@]}" -gt 0 ]; then
    line+=" ("
    for hint in "${hints[@]}"; do line+="$sep$hint"; sep="; "; done
    line+=")"
  fi
  echo "$GH_PROG: missing: $line" >&2
  exit 69
}

gh_venv() {
  local want have=''
  want=$(sha256sum "$GH_REQUIREMENTS")
  want=${want%% *}
  { read -r have <"$GH_VENV/.requirements.sha256"; } 2>/dev/null || true
  if [ -x "$GH_PYTHON" ] && [ "$have" = "$want" ]; then
    return 0
  fi
  mkdir -p "$GH_ROOT/.gatehouse"
  # Under the lock: another run may be building the venv right now; wait for it, then look again.
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    _gh_venv_build "$want"
  ) 9>"$GH_ROOT/.gatehouse/venv.lock"
}

# Makes (or repairs) the venv and installs the requirements whose sha256 is $1. Runs under the lock.
_gh_venv_build() {
  local want=$1 have='' stamp=$GH_VENV/.requirements.sha256
  { read -r have <"$stamp"; } 2>/dev/null || true
  if [ -x "$GH_PYTHON" ] && [ "$have" = "$want" ]; then
    return 0 # built by the run we waited for
  fi
  # A venv whose interpreter is gone (python3 upgraded or removed) cannot be repaired in place.
  if [ -e "$GH_VENV" ] && ! "$GH_PYTHON" -c '' >/dev/null 2>&1; then
    rm -rf "$GH_VENV"
  fi
  if [ ! -e "$GH_VENV" ]; then
    if python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      echo "$GH_PROG: creating .gatehouse/venv (python3 -m venv)" >&2
      python3 -m venv "$GH_VENV" >&2 || {
        rm -rf "$GH_VENV"
        echo "$GH_PROG: \`python3 -m venv .gatehouse/venv\` failed (above)" >&2
        exit 1
      }
    elif command -v virtualenv >/dev/null 2>&1; then
      echo "$GH_PROG: creating .gatehouse/venv (virtualenv)" >&2
      virtualenv -q -p python3 "$GH_VENV" >&2 || {
        rm -rf "$GH_VENV"
        echo "$GH_PROG: \`virtualenv -p python3 .gatehouse/venv\` failed (above)" >&2
        exit 1
      }
    else
      echo "$GH_PROG: missing: python3-venv (Debian: apt-get install python3-venv)" >&2
      exit 69
    fi
  fi
  echo "$GH_PROG: installing tests/python/requirements.txt into .gatehouse/venv" >&2
  rm -f "$stamp"
  "$GH_PYTHON" -m pip install --quiet --disable-pip-version-check -r "$GH_REQUIREMENTS" >&2 || {
    echo "$GH_PROG: \`pip install -r tests/python/requirements.txt\` into .gatehouse/venv failed (above)" >&2
    exit 1
  }
  printf '%s\n' "$want" >"$stamp.tmp"
  mv -f "$stamp.tmp" "$stamp"
}
