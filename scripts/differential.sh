#!/usr/bin/env bash
# Differential test against the reference server: the same requests to the
# published OpenSandbox server 1.1.1 and to sandgate-control, the answers
# compared field by field (tests/differential/).
#
#  1. Installs `opensandbox-server==1.1.1` and the Python SDK `opensandbox==1.1.1`
#     into a throwaway venv (tests/differential/requirements.txt pins every
#     dependency). The pinned wheels are downloaded once into a wheel cache
#     (DIFFERENTIAL_CACHE) and installed from it offline: a pinned set needs
#     no resolution, and the install takes seconds instead of a minute.
#  2. Starts both servers on the local Docker engine, each on a free loopback
#     port, with the same configuration (tests/differential/config.toml, in
#     OpenSandbox's format; only [server] port differs between the two
#     copies) and each with its own HOME (so its own default database).
#     Sandgate only touches the containers of its `[sandgate] instance`. The
#     reference has no such setting, so it talks to Docker through
#     tests/differential/docker_scope.py, which labels the containers it
#     creates and filters its listings to that label: it never sees (nor
#     expires) anyone else's containers.
#  3. Runs tests/differential/run.py: the request sequence of cases.py
#     (lifecycle, error cases, side routes) to both in lockstep, then the SDK's
#     create/get/renew/kill flow against each, recording its HTTP exchanges.
#     Every difference must be allowed by an entry of
#     tests/differential/allowed-differences.toml (each with its reason), and
#     every entry must still match something.
#  4. Checks no container of the run is left, then tears everything down (trap).
#
# Needs: Docker, python3 >= 3.10 with venv, curl, the debug sandgate-control
# (built when missing), the test images (scripts/build-test-images.sh).
#
# Environment (all optional):
#   CARGO_TARGET_DIR     where the debug binaries are (default ./target)
#   DIFFERENTIAL_CACHE   wheel cache (default ~/.cache/sandgate/differential)
#   DIFFERENTIAL_KEEP=1  keep the temp dir (configs, logs, report.json)
#   DIFFERENTIAL_SANDGATE_DROP  DEV AID ONLY, never in CI: space-separated
#       `table.key` (or `table`) entries removed from Sandgate's copy of the
#       config, to run the comparison on a tree whose Sandgate still refuses
#       some 1.1.1 keys. The run then says so.
#
# Exit status 0 only when every difference is allowed and no allow-list entry
# is stale. The last line on stdout is the summary, "differential: ...".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

bin="${CARGO_TARGET_DIR:-$repo/target}/debug/sandgate-control"
cache=${DIFFERENTIAL_CACHE:-$HOME/.cache/sandgate/differential}
run_id="d$(date +%s)-$$"
instance="differential-$run_id"
scope_label="opensandbox.io/differential-run"
started=$SECONDS

say() { printf '[differential] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/lib/processes.sh
. scripts/lib/processes.sh

docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
    die "python3 >= 3.10 with the venv module is needed (apt-get install python3 python3-venv)"
if [ ! -x "$bin" ]; then
    say "building sandgate-control"
    cargo build -p sandgate-control --locked
fi
./scripts/build-test-images.sh >/dev/null

engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
[[ $engine == unix://* ]] || die "DOCKER_HOST must be a unix socket (the reference's Docker scope proxy relays to it)"
engine_socket=${engine#unix://}

# ---- teardown ----------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/sandgate-differential.XXXXXX")
pids=()

run_containers() {
    docker ps -aq --filter "label=sandgate.io/instance=$instance"
    docker ps -aq --filter "label=$scope_label=$run_id"
}

stop_all() {
    local pid deadline ids
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 10))
    for pid in "${pids[@]}"; do
        while running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    ids=$(run_containers | sort -u)
    # shellcheck disable=SC2086 # one id per word
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}

teardown() {
    local status=$?
    trap - EXIT INT TERM
    stop_all
    if [ "${DIFFERENTIAL_KEEP:-}" = 1 ]; then say "keeping $work"; else rm -rf "$work"; fi
    exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- servers -----------------------------------------------------------------

# render PORT OUT: the shared config with this run's values.
render() {
    sed -e "s/@PORT@/$1/" -e "s/@API_KEY@/$api_key/" -e "s/@INSTANCE@/$instance/" \
        tests/differential/config.toml >"$2"
}

# drop_keys FILE ENTRIES...: removes `table.key` lines and whole `[table]`s (dev aid).
drop_keys() {
    python3 - "$@" <<'PY'
import re, sys
path, drops = sys.argv[1], set(sys.argv[2:])
table, out = "", []
for line in open(path):
    header = re.match(r"^\[([^\]]+)\]\s*$", line)
    if header:
        table = header.group(1)
    key = re.match(r"^([A-Za-z0-9_]+)\s*=", line)
    if table in drops or (key and f"{table}.{key.group(1)}" in drops):
        continue
    out.append(line)
open(path, "w").write("".join(out))
PY
}

say "installing opensandbox-server and the Python SDK into a fresh venv"
install_started=$SECONDS
requirements=tests/differential/requirements.txt
wheels="$cache/wheels-$(sha256sum "$requirements" | cut -c1-12)"
python3 -m venv "$work/venv"
if [ ! -f "$wheels/.complete" ]; then
    "$work/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$wheels" -r "$requirements"
    touch "$wheels/.complete"
fi
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps \
    --find-links "$wheels" -r "$requirements"
py="$work/venv/bin/python"
say "installed $("$py" -c 'from importlib.metadata import version as v; print("opensandbox-server", v("opensandbox-server"), "and opensandbox", v("opensandbox"))') ($((SECONDS - install_started)) s)"

api_key="differential-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
read -r ref_port sg_port <<<"$(free_ports 2)"
render "$ref_port" "$work/reference.toml"
render "$sg_port" "$work/sandgate.toml"
if [ -n "${DIFFERENTIAL_SANDGATE_DROP:-}" ]; then
    # shellcheck disable=SC2086 # one entry per word
    drop_keys "$work/sandgate.toml" $DIFFERENTIAL_SANDGATE_DROP
    say "DEV AID: removed from Sandgate's copy of the config: $DIFFERENTIAL_SANDGATE_DROP (not a valid CI run)"
fi

"$py" tests/differential/docker_scope.py "$work/docker.sock" "$engine_socket" "$scope_label=$run_id" \
    >"$work/docker-scope.log" 2>&1 &
pids+=("$!")
mkdir -p "$work/reference-home" "$work/sandgate-home"
HOME="$work/reference-home" DOCKER_HOST="unix://$work/docker.sock" \
    "$work/venv/bin/opensandbox-server" --config "$work/reference.toml" >"$work/reference.log" 2>&1 &
pids+=("$!")
ref_pid=$!
if ! HOME="$work/sandgate-home" "$bin" --check-config "$work/sandgate.toml" >"$work/check.log" 2>&1; then
    cat "$work/check.log" >&2
    die "sandgate-control refuses the OpenSandbox 1.1.1 config the reference accepts (above)"
fi
HOME="$work/sandgate-home" "$bin" --config "$work/sandgate.toml" >"$work/sandgate.log" 2>&1 &
pids+=("$!")
sg_pid=$!
wait_ready "http://127.0.0.1:$ref_port/health" "opensandbox-server" "$work/reference.log" "$ref_pid"
wait_ready "http://127.0.0.1:$sg_port/health" "sandgate-control" "$work/sandgate.log" "$sg_pid"
say "reference on 127.0.0.1:$ref_port, sandgate on 127.0.0.1:$sg_port, run $run_id"

# ---- run ---------------------------------------------------------------------

status=0
(cd tests/differential && timeout 170 "$py" run.py "127.0.0.1:$ref_port" "127.0.0.1:$sg_port" \
    "$api_key" allowed-differences.toml "$work/report.json") || status=$?

# Both servers deleted what the sequence created (deletion may finish just after the answer).
deadline=$((SECONDS + 15))
while [ -n "$(run_containers)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
leftover=$(run_containers | sort -u | tr '\n' ' ')
if [ -n "$leftover" ]; then
    say "FAIL containers left behind by the run: $leftover"
    status=1
else
    say "no container of the run is left"
fi
if [ "$status" -ne 0 ]; then
    for log in reference sandgate; do
        say "last lines of $log.log:"
        tail -n 10 "$work/$log.log" >&2 || true
    done
fi
say "took $((SECONDS - started)) s"
exit "$status"
