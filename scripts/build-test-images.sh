#!/usr/bin/env bash
# Builds the two local images the runtime tests use, with no registry access:
#
#   sandgate-test/busybox:latest  the sandbox image: a busybox userland
#                                 (sh, httpd, nc, sleep, ...), CMD ["/bin/sh"],
#                                 /www/index.html = "hello from sandgate-test".
#   sandgate-test/execd:latest    a stand-in for OpenSandbox's opensandbox/execd
#                                 image: /execd and /bootstrap.sh at the root
#                                 (plus busybox so the image itself can run).
#
# Both are made with `docker import` from a rootfs assembled out of the host's
# static busybox (/bin/busybox, Debian's busybox-static). Each image carries the
# label sandgate.test.hash: the sha256 of this script and of the busybox binary.
# When an image with the current hash exists the script does nothing, so it is
# cheap to call before every test run; editing this script rebuilds both.
#
# Usage: scripts/build-test-images.sh        (BUSYBOX=/path/to/busybox to override)
# Prints the image ids on stdout at the end, one "name id" line per image.
set -euo pipefail

BUSYBOX="${BUSYBOX:-/bin/busybox}"
SANDBOX_IMAGE="sandgate-test/busybox:latest"
EXECD_IMAGE="sandgate-test/execd:latest"
HASH_LABEL="sandgate.test.hash"
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

script_path="$(readlink -f "$0")"

log() { printf '%s\n' "build-test-images: $*" >&2; }

[ -x "$BUSYBOX" ] || { log "no static busybox at $BUSYBOX (apt-get install busybox-static)"; exit 1; }
docker info >/dev/null 2>&1 || { log "cannot reach the Docker engine (docker info failed)"; exit 1; }
# (no `grep -q` on a pipe: with pipefail its early exit can fail the pipeline)
grep -qx httpd <("$BUSYBOX" --list) || { log "$BUSYBOX has no httpd applet"; exit 1; }

# Content hash: this script (which embeds /execd and /bootstrap.sh) + busybox.
hash="$(cat "$script_path" "$BUSYBOX" | sha256sum | cut -d' ' -f1)"

# Serialise concurrent callers (parallel test processes) on one lock.
exec 9>"${TMPDIR:-/tmp}/sandgate-build-test-images.lock"
flock 9

# image_current NAME: true when NAME exists and carries the current hash.
image_current() {
    local have
    have="$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null)" || return 1
    [ "$have" = "$hash" ]
}

# import_rootfs DIR NAME CMD-JSON: tar DIR up as root-owned files and import it.
# The image that NAME pointed to before is removed if nothing else uses it.
import_rootfs() {
    local dir="$1" name="$2" cmd="$3" old
    old="$(docker image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)"
    tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf - . |
        docker import \
            -c "CMD $cmd" \
            -c "ENV $PATH_ENV" \
            -c "LABEL $HASH_LABEL=$hash" \
            -m "sandgate test image (scripts/build-test-images.sh)" \
            - "$name" >/dev/null
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$name")" ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    log "built $name"
}

# make_busybox_rootfs DIR: busybox + a symlink per applet, /etc, /tmp, /www.
make_busybox_rootfs() {
    local root="$1" applet path
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,www,var/run}
    chmod 0755 "$root"
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    # Every applet in /bin (PATH always finds it) ...
    while read -r applet; do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done < <("$BUSYBOX" --list)
    # ... and also at busybox's canonical location (/usr/bin/env, /sbin/ip ...).
    while read -r path; do
        case "$path" in
            bin/* | linuxrc) ;;
            *) ln -sf /bin/busybox "$root/$path" ;;
        esac
    done < <("$BUSYBOX" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'hello from sandgate-test\n' >"$root/www/index.html"
}

# The test /execd: answers GET /ping with 200 "pong" on port 44772 using only
# busybox applets that the sandbox image has (mkdir, printf, httpd). It also
# answers /proxy/44772/ping, the path OpenSandbox 1.1.1's bridge-mode
# endpoints use (execd's own proxy), so the differential test's reference
# server passes its readiness check too.
write_execd() {
    cat >"$1" <<'EOF'
#!/bin/sh
# Test stand-in for OpenSandbox's execd (sandgate-test/execd): serves
# GET /ping (and /proxy/44772/ping) -> 200 "pong" on port 44772 with busybox
# httpd. Nothing else.
set -eu
port="${EXECD_PORT:-44772}"
www="${EXECD_WWW:-/tmp/execd-www}"
mkdir -p "$www/proxy/$port"
printf 'pong' >"$www/ping"
printf 'pong' >"$www/proxy/$port/ping"
exec httpd -f -p "$port" -h "$www"
EOF
    chmod 0755 "$1"
}

# The test /bootstrap.sh, shaped like OpenSandbox's: start execd in the
# background, run the user's entrypoint as a child, forward SIGTERM/SIGINT to
# it, and exit with its status (the container lives as long as the entrypoint).
write_bootstrap() {
    cat >"$1" <<'EOF'
#!/bin/sh
# Test stand-in for OpenSandbox's bootstrap.sh (sandgate-test/execd).
# Usage: bootstrap.sh [cmd args...] | bootstrap.sh -c "shell command"
#        (or BOOTSTRAP_CMD="shell command"); no arguments runs /bin/sh.
EXECD="${EXECD:-/opt/opensandbox/execd}"
EXECD_ENVS="${EXECD_ENVS:-/opt/opensandbox/.env}"
mkdir -p "$(dirname "$EXECD_ENVS")" 2>/dev/null || echo "warning: cannot create dir for EXECD_ENVS=$EXECD_ENVS" >&2
touch "$EXECD_ENVS" 2>/dev/null || echo "warning: cannot touch EXECD_ENVS=$EXECD_ENVS" >&2
export EXECD_ENVS

echo "starting test execd at $EXECD" >&2
"$EXECD" &

if [ -n "${BOOTSTRAP_CMD:-}" ]; then
    set -- /bin/sh -c "$BOOTSTRAP_CMD"
elif [ "$#" -ge 1 ] && [ "$1" = "-c" ]; then
    shift
    set -- /bin/sh -c "$*"
elif [ "$#" -eq 0 ]; then
    set -- /bin/sh
fi

# A non-interactive shell points a background job's stdin at /dev/null; keep
# the container's stdin for the entrypoint (as `exec "$@"` would) via fd 3.
exec 3<&0
"$@" <&3 3<&- &
child=$!
exec 3<&-

forward() { kill -"$1" "$child" 2>/dev/null; }
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP

# A trapped signal interrupts `wait` (status > 128) while the child may still
# be running: keep waiting until it is gone, then exit with its status.
wait "$child"
status=$?
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
    status=$?
done
exit "$status"
EOF
    chmod 0755 "$1"
}

ids() {
    local name
    for name in "$SANDBOX_IMAGE" "$EXECD_IMAGE"; do
        printf '%s %s\n' "$name" "$(docker image inspect --format '{{.Id}}' "$name")"
    done
}

if image_current "$SANDBOX_IMAGE" && image_current "$EXECD_IMAGE"; then
    log "images up to date (hash ${hash:0:12})"
    ids
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sandgate-test-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! image_current "$SANDBOX_IMAGE"; then
    make_busybox_rootfs "$work/sandbox"
    import_rootfs "$work/sandbox" "$SANDBOX_IMAGE" '["/bin/sh"]'
fi

if ! image_current "$EXECD_IMAGE"; then
    make_busybox_rootfs "$work/execd"
    rm -rf "$work/execd/www"
    write_execd "$work/execd/execd"
    write_bootstrap "$work/execd/bootstrap.sh"
    # Run on its own, the image serves /ping like the real execd image.
    import_rootfs "$work/execd" "$EXECD_IMAGE" '["/execd"]'
fi

ids
