#!/usr/bin/env bash
# A throwaway private registry for the runtime tests (pulls with credentials).
#
#   scripts/test-registry.sh [start] [USER [PASSWORD]]
#       Starts Debian's docker-registry (package docker-registry, distribution
#       2.8) on 127.0.0.1:<free port> with htpasswd (bcrypt) basic auth and
#       storage in a fresh temp dir, pushes sandgate-test/busybox:latest to it
#       as 127.0.0.1:<port>/sandgate/private-busybox:latest, then deletes that
#       local tag so a later pull really goes to the registry. The registry
#       keeps running in the background. On success stdout is only these lines:
#           REGISTRY_PORT=<port>
#           REGISTRY_PID=<pid>
#           REGISTRY_IMAGE=127.0.0.1:<port>/sandgate/private-busybox:latest
#           REGISTRY_USER=<user>
#           REGISTRY_PASSWORD=<password>
#           REGISTRY_DIR=<temp dir: config, htpasswd, storage, log>
#       Values are not shell-quoted: split each line at its first '='.
#       USER/PASSWORD default to $REGISTRY_USER/$REGISTRY_PASSWORD, else
#       sandgate/sandgate-test-password.
#       (The pulled image shares its layer with sandgate-test/busybox, so a
#       pull fetches the manifest, with auth, but downloads no layer.)
#
#   scripts/test-registry.sh stop <pid>
#       Stops a registry started by this script and removes its temp dir.
#
# dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP) by default,
# so no daemon configuration is needed. docker login/push run with a private
# DOCKER_CONFIG inside the temp dir: the caller's ~/.docker is never touched.
set -euo pipefail

REGISTRY_BIN="${REGISTRY_BIN:-/usr/bin/docker-registry}"
SOURCE_IMAGE="sandgate-test/busybox:latest"
REPOSITORY="sandgate/private-busybox"
DIR_PREFIX="sandgate-test-registry."

script_dir="$(cd "$(dirname "$0")" && pwd)"

log() { printf '%s\n' "test-registry: $*" >&2; }
die() { log "$*"; exit 1; }

# registry_dir_of PID: the temp dir of a registry this script started, or fail.
registry_dir_of() {
    local pid="$1" exe config dir
    [ -r "/proc/$pid/cmdline" ] || return 1
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    [ "${exe##*/}" = "${REGISTRY_BIN##*/}" ] || return 1
    # cmdline: docker-registry serve <dir>/config.yml
    config="$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n 3p)"
    dir="${config%/config.yml}"
    case "${dir##*/}" in "$DIR_PREFIX"*) ;; *) return 1 ;; esac
    printf '%s\n' "$dir"
}

# running PID: the process exists and is not a zombie (the registry is
# reparented to init, which may take a while to reap it).
running() {
    local state
    state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_registry() {
    local pid="$1" dir i
    [[ "$pid" =~ ^[0-9]+$ ]] || die "stop: not a pid: $pid"
    if ! dir="$(registry_dir_of "$pid")"; then
        die "stop: pid $pid is not a registry started by this script (already stopped?)"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
    log "stopped registry pid $pid, removed $dir"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT (or on a wildcard address).
port_free() {
    [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

start_registry() {
    local user="${1:-${REGISTRY_USER:-sandgate}}"
    local password="${2:-${REGISTRY_PASSWORD:-sandgate-test-password}}"
    local dir port pid="" code attempt i image

    [ -x "$REGISTRY_BIN" ] || die "no $REGISTRY_BIN (apt-get install docker-registry)"
    command -v htpasswd >/dev/null || die "no htpasswd (apt-get install apache2-utils)"
    docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed)"
    [[ "$user" != *:* ]] || die "user must not contain ':'"

    # The image to push; building is a no-op when it is up to date.
    "$script_dir/build-test-images.sh" >/dev/null

    # On any failure below: stop what was started, remove the temp dir.
    cleanup_failed_start() {
        if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
        if [ -s "$1/registry.log" ]; then
            log "registry log (last lines):"
            tail -n 20 "$1/registry.log" >&2
        fi
        rm -rf "$1"
    }
    dir="$(mktemp -d "${TMPDIR:-/tmp}/${DIR_PREFIX}XXXXXX")"
    # shellcheck disable=SC2064
    trap "cleanup_failed_start '$dir'" EXIT
    mkdir -p "$dir/storage" "$dir/docker-config"
    htpasswd -Bbn "$user" "$password" >"$dir/htpasswd" 2>/dev/null

    # Pick a random free port; retry if another process wins the race for it.
    for attempt in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        port_free "$port" || continue
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: sandgate-test-registry
    path: $dir/htpasswd
EOF
        # Own session so it outlives this script and the caller's job control.
        setsid "$REGISTRY_BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
        pid=$!
        # Ready when /v2/ demands credentials (401).
        code=000
        for i in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)"
            [ "$code" = 401 ] && break
            sleep 0.1
        done
        [ "$code" = 401 ] && break
        if kill -0 "$pid" 2>/dev/null; then
            die "registry on port $port answered /v2/ with $code, not 401"
        fi
        wait "$pid" 2>/dev/null || true
        pid=""
        grep -q 'address already in use' "$dir/registry.log" || die "registry failed to start"
    done
    [ -n "$pid" ] || die "no free port found for the registry"
    log "registry pid $pid listening on 127.0.0.1:$port ($dir)"

    image="127.0.0.1:$port/$REPOSITORY:latest"
    export DOCKER_CONFIG="$dir/docker-config"
    # (stderr kept aside: docker login warns about unencrypted credentials)
    if ! printf '%s' "$password" |
        docker login --username "$user" --password-stdin "127.0.0.1:$port" >/dev/null 2>"$dir/login.err"; then
        cat "$dir/login.err" >&2
        die "docker login to 127.0.0.1:$port failed"
    fi
    docker tag "$SOURCE_IMAGE" "$image"
    docker push --quiet "$image" >/dev/null
    # Untag only (sandgate-test/busybox keeps the image): a later pull of
    # $image must fetch it from the registry.
    docker image rm "$image" >/dev/null
    docker logout "127.0.0.1:$port" >/dev/null
    log "pushed $image"

    trap - EXIT
    printf 'REGISTRY_PORT=%s\n' "$port"
    printf 'REGISTRY_PID=%s\n' "$pid"
    printf 'REGISTRY_IMAGE=%s\n' "$image"
    printf 'REGISTRY_USER=%s\n' "$user"
    printf 'REGISTRY_PASSWORD=%s\n' "$password"
    printf 'REGISTRY_DIR=%s\n' "$dir"
}

case "${1:-start}" in
    stop)
        [ "$#" -eq 2 ] || die "usage: $0 stop <pid>"
        stop_registry "$2"
        ;;
    start)
        shift $(($# > 0 ? 1 : 0))
        start_registry "$@"
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        ;;
    *)
        start_registry "$@"
        ;;
esac
