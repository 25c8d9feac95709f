#!/usr/bin/env bash
# OpenSandbox client compatibility suite: proves the *published* OpenSandbox
# clients work unchanged against Sandgate.
#
#  1. Installs the clients from their registries into throwaway environments
#     made fresh for this run (a venv and an npm project under a temp dir;
#     pip's and npm's download caches are reused): the Python SDK
#     `opensandbox` and CLI `opensandbox-cli` (tests/compat/python/
#     requirements.txt) and the JS SDK `@alibaba-group/opensandbox`
#     (tests/compat/js/package.json), all pinned to exact versions.
#  2. Starts Sandgate on free loopback ports: for each gateway route mode
#     (uri, header, wildcard) a sandgate-control (Docker runtime, SQLite store
#     in the temp dir, API key, execd injected from sandgate-test/execd,
#     signing keys) and a sandgate-proxy subscribed to its route stream; plus
#     one sandgate-control with the default "direct" ingress. Each control
#     plane has its own `[sandgate] instance`, so only this run's containers
#     are touched.
#  3. Runs the suites (tests/compat/python/*.py, tests/compat/js/sdk.mjs); each
#     prints one PASS/FAIL/SKIP line per step. Then checks that no container
#     of the run is left in Docker.
#  4. Tears everything down (trap): processes, containers, the temp dir.
#
# Needs: Docker (docker info works), python3 >= 3.10 with venv, node >=
# 20.18.1 with npm (with an older node, npm fetches node from the npm
# registry's node-linux-<arch> package into the cache below), curl, the
# debug binaries (built with `cargo build --workspace --locked` when missing),
# /bin/busybox for the test images (scripts/build-test-images.sh).
#
# Environment (all optional):
#   CARGO_TARGET_DIR   where the debug binaries are (default ./target)
#   COMPAT_SUITES      suites to run, space-separated (default: all of
#                      python-sync python-async cli js route-modes)
#   COMPAT_CACHE       cache for the fallback node (default ~/.cache/sandgate/compat)
#   COMPAT_KEEP=1      keep the temp dir (configs, logs) after the run
#
# Exit status 0 only when every step passed. The last line is the summary,
# "compat: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

suites=${COMPAT_SUITES:-python-sync python-async cli js route-modes}
cache=${COMPAT_CACHE:-$HOME/.cache/sandgate/compat}
bin_dir="${CARGO_TARGET_DIR:-$repo/target}/debug"
node_fallback_version=20.20.2
execd_image=sandgate-test/execd:latest
sandbox_image=sandgate-test/busybox:latest
run_id="c$(date +%s)-$$"
started=$SECONDS

# npm's update check runs in a detached child that keeps our output open.
export npm_config_update_notifier=false

say() { printf '[compat] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/processes.sh
. scripts/lib/processes.sh

# ---- prerequisites -----------------------------------------------------------

known_suites=" python-sync python-async cli js route-modes "
for suite in $suites; do
    [[ $known_suites == *" $suite "* ]] || die "unknown suite $suite (known:$known_suites)"
done

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
    die "python3 >= 3.10 with the venv module is needed (apt-get install python3 python3-venv)"
command -v npm >/dev/null || die "npm is missing (apt-get install nodejs npm)"

# node_ok BINARY: true when BINARY is node >= 20.18.1 (undici 7, the JS SDK's
# HTTP client, needs it).
node_ok() {
    "$1" -e 'const [a, b, c] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1)' 2>/dev/null
}
node_bin=$(command -v node || true)
if [ -z "$node_bin" ] || ! node_ok "$node_bin"; then
    case "$(uname -m)" in
        x86_64) node_arch=x64 ;;
        aarch64) node_arch=arm64 ;;
        *) die "node >= 20.18.1 is needed and no fallback exists for $(uname -m)" ;;
    esac
    node_prefix="$cache/node-$node_fallback_version"
    node_bin="$node_prefix/node_modules/node-linux-$node_arch/bin/node"
    if ! node_ok "$node_bin"; then
        say "node on PATH is older than 20.18.1: installing node-linux-$node_arch@$node_fallback_version from the npm registry"
        mkdir -p "$node_prefix"
        npm install --prefix "$node_prefix" --no-save --no-audit --no-fund --loglevel=error \
            "node-linux-$node_arch@$node_fallback_version" >/dev/null
        node_ok "$node_bin" || die "the fallback node at $node_bin does not run"
    fi
fi

if [ ! -x "$bin_dir/sandgate-control" ] || [ ! -x "$bin_dir/sandgate-proxy" ]; then
    say "building the debug binaries"
    cargo build --workspace --locked
fi
./scripts/build-test-images.sh >/dev/null

# ---- teardown ----------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/sandgate-compat.XXXXXX")
pids=()
instances=()

# stop_stacks: SIGTERM every process this run started (SIGKILL what is left
# after 15 s), then remove any container still carrying this run's instances.
# Idempotent; quiet.
stop_stacks() {
    local pid deadline instance ids
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    for instance in "${instances[@]}"; do
        ids=$(containers_of "$instance")
        # shellcheck disable=SC2086 # one id per word
        [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    done
}

# containers_of INSTANCE: ids of the containers a control plane created.
containers_of() { docker ps -aq --filter "label=sandgate.io/instance=$1"; }

teardown() {
    local status=$?
    trap - EXIT INT TERM
    stop_stacks
    [ "${COMPAT_KEEP:-}" = 1 ] || rm -rf "$work"
    exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- stacks ------------------------------------------------------------------

api_key="compat-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
routes_token=$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)
# Signing key for OSEP-0011 signed endpoints, shared by control and proxy.
signing_key=$(head -c 32 /dev/urandom | base64 -w0)

# start_stack MODE: a control plane with gateway route mode MODE (uri, header,
# wildcard) and its proxy, or with MODE direct (Sandgate's default ingress:
# endpoints are container addresses) and no proxy. Sets COMPAT_<MODE>_DOMAIN
# (the API) and, with a proxy, COMPAT_<MODE>_GATEWAY.
start_stack() {
    local mode=$1 dir="$work/$1" control_port proxy_port admin_port address instance upper
    read -r control_port proxy_port admin_port <<<"$(free_ports 3)"
    instance="compat-$run_id-$mode"
    instances+=("$instance")
    upper=$(printf '%s' "$mode" | tr '[:lower:]' '[:upper:]')
    case "$mode" in
        wildcard) address="*.sandbox.localhost:$proxy_port" ;;
        *) address="127.0.0.1:$proxy_port" ;;
    esac
    mkdir -p "$dir"
    cat >"$dir/control.toml" <<TOML
# Generated by scripts/compat.sh for one run of the compatibility suite.
[server]
host = "127.0.0.1"
port = $control_port
api_key = "$api_key"

[runtime]
type = "docker"
execd_image = "$execd_image"

[docker]
network_mode = "bridge"

[store]
path = "$dir/sandgate.db"

[sandgate]
instance = "$instance"
docker_stop_grace_seconds = 1
shutdown_grace_seconds = 5
routes_token = "$routes_token"
TOML
    if [ "$mode" = direct ]; then
        # No edge proxy: the control plane forwards the server-proxy path itself.
        printf '\n[ingress]\nmode = "direct"\n' >>"$dir/control.toml"
    else
        cat >>"$dir/control.toml" <<TOML
edge_proxy_url = "http://127.0.0.1:$proxy_port"

[ingress]
mode = "gateway"

[ingress.gateway]
address = "$address"

[ingress.gateway.route]
mode = "$mode"

[ingress.secure_access]
active_key = "c"

[[ingress.secure_access.keys]]
key_id = "c"
key = "$signing_key"
TOML
    fi
    "$bin_dir/sandgate-control" --check-config "$dir/control.toml" >/dev/null
    "$bin_dir/sandgate-control" --config "$dir/control.toml" >"$dir/control.log" 2>&1 &
    pids+=("$!")
    wait_ready "http://127.0.0.1:$control_port/health" "sandgate-control ($mode)" "$dir/control.log"
    export "COMPAT_${upper}_DOMAIN=127.0.0.1:$control_port"
    if [ "$mode" = direct ]; then
        say "stack $mode: API 127.0.0.1:$control_port, no proxy, instance $instance"
        return
    fi

    cat >"$dir/proxy.toml" <<TOML
# Generated by scripts/compat.sh for one run of the compatibility suite.
[server]
listen = ["127.0.0.1:$proxy_port"]
grace_period_seconds = 1

[admin]
listen = "127.0.0.1:$admin_port"

[routing]
wildcard_domains = ["sandbox.localhost"]

[control]
url = "http://127.0.0.1:$control_port"
token = "$routes_token"

[secure_access]
keys = [{ key_id = "c", key = "$signing_key" }]
TOML
    "$bin_dir/sandgate-proxy" --check-config "$dir/proxy.toml" >/dev/null
    "$bin_dir/sandgate-proxy" --config "$dir/proxy.toml" >"$dir/proxy.log" 2>&1 &
    pids+=("$!")
    wait_ready "http://127.0.0.1:$admin_port/ready" "sandgate-proxy ($mode)" "$dir/proxy.log"
    export "COMPAT_${upper}_GATEWAY=127.0.0.1:$proxy_port"
    say "stack $mode: API 127.0.0.1:$control_port, proxy 127.0.0.1:$proxy_port, instance $instance"
}

# ---- clients -----------------------------------------------------------------

install_started=$SECONDS
say "installing the Python clients into a fresh venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r tests/compat/python/requirements.txt
say "installing the JS SDK into a fresh npm project"
mkdir -p "$work/js"
cp tests/compat/js/package.json tests/compat/js/*.mjs "$work/js/"
(cd "$work/js" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)

py_sdk=$("$work/venv/bin/python" -c 'from importlib.metadata import version as v; print(v("opensandbox"), v("opensandbox-cli"))')
js_sdk=$(cd "$work/js" && "$node_bin" -p 'require("./node_modules/@alibaba-group/opensandbox/package.json").version')
say "clients: opensandbox ${py_sdk% *}, opensandbox-cli ${py_sdk#* }, @alibaba-group/opensandbox $js_sdk, node $("$node_bin" --version) at $node_bin ($((SECONDS - install_started)) s)"

# ---- run ---------------------------------------------------------------------

tests_started=$SECONDS
for mode in uri header wildcard direct; do start_stack "$mode"; done
export COMPAT_API_KEY=$api_key COMPAT_IMAGE=$sandbox_image COMPAT_RUN_ID=$run_id
# The Python SDK's documented configuration, used by the sync suite.
export OPEN_SANDBOX_DOMAIN=$COMPAT_URI_DOMAIN OPEN_SANDBOX_API_KEY=$api_key

passed=0
failed=0
skipped=0
failed_suites=()

# run_suite NAME COMMAND...: runs one suite with a time limit, counts its lines.
run_suite() {
    local name=$1 log="$work/$1.log" status=0 p f k
    shift
    say "suite $name"
    timeout 300 "$@" 2>&1 | tee "$log" || status=$?
    p=$(grep -c "^\[$name\] PASS " "$log" || true)
    f=$(grep -c "^\[$name\] FAIL " "$log" || true)
    k=$(grep -c "^\[$name\] SKIP " "$log" || true)
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        printf '[%s] FAIL suite exited with status %s before reporting a failed step\n' "$name" "$status"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
    [ "$f" -eq 0 ] || failed_suites+=("$name")
}

python=("$work/venv/bin/python")
for suite in $suites; do
    case "$suite" in
        python-sync) run_suite "$suite" "${python[@]}" tests/compat/python/sdk_sync.py ;;
        python-async) run_suite "$suite" "${python[@]}" tests/compat/python/sdk_async.py ;;
        cli) run_suite "$suite" "${python[@]}" tests/compat/python/cli.py "$work/venv/bin/osb" "$work/osb.toml" ;;
        js) run_suite "$suite" "$node_bin" "$work/js/sdk.mjs" ;;
        route-modes) run_suite "$suite" "${python[@]}" tests/compat/python/route_modes.py ;;
    esac
done

# Every client killed what it created: no container of this run may be left.
leftover=""
for instance in "${instances[@]}"; do leftover+=$(containers_of "$instance"); done
if [ -z "$leftover" ]; then
    printf '[cleanup] PASS no sandbox container left in Docker after the clients killed theirs\n'
    passed=$((passed + 1))
else
    printf '[cleanup] FAIL containers left behind: %s\n' "$(echo "$leftover" | tr '\n' ' ')"
    failed=$((failed + 1))
    failed_suites+=(cleanup)
fi

stop_started=$SECONDS
stop_stacks
say "stopped the stacks in $((SECONDS - stop_started)) s"
if [ "$failed" -gt 0 ]; then
    for log in "$work"/*/control.log "$work"/*/proxy.log; do
        say "last lines of ${log#"$work/"}:"
        tail -n 15 "$log" >&2 || true
    done
    say "failed: ${failed_suites[*]}"
fi
[ "${COMPAT_KEEP:-}" != 1 ] || say "keeping $work (COMPAT_KEEP=1)"
say "tests took $((SECONDS - tests_started)) s, $((SECONDS - started)) s in all"
if [ "$skipped" -gt 0 ]; then
    echo "compat: $passed passed, $failed failed, $skipped skipped"
else
    echo "compat: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
