#!/usr/bin/env bash
# Control-API benchmark of sandgate-control on the fake runtime.
#
# Product requirement: with 1,000 sandboxes on the fake runtime, measure
#   (a) GET /v1/sandboxes/{id}  requests/s, p50, p99   target ≥ 20,000 req/s
#   (b) a filtered GET /v1/sandboxes page, p50, p99   target p99 ≤ 10 ms
#   (c) the server's RSS                              target ≤ 60 MiB
# on the 2-core machine (wrk shares those cores with the server).
#
# What it does: builds the release binary (or uses $SANDGATE_CONTROL_BIN),
# starts it on a free 127.0.0.1 port with the default (info) logging sent
# to a file, creates the sandboxes with a bounded parallel loop, waits until
# all are Running, runs wrk (2 s warm-up, then a bounded measured run) on
# each endpoint, reads VmRSS/VmHWM from /proc, prints a markdown table and
# writes it to bench/results/control-api.md. The server is killed on exit.
#
# Knobs (environment): SANDBOXES (1000), DURATION (10s), WARMUP (2s),
# THREADS (2), CONNECTIONS (32), SANDGATE_CONTROL_BIN. DURATION and WARMUP
# are wrk durations in whole seconds ("10s").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SANDBOXES=${SANDBOXES:-1000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
RESULTS="$ROOT/bench/results/control-api.md"
LIST_QUERY='state=Running&metadata=team%3Dt3&page=2&pageSize=20'
[[ $DURATION =~ ^[0-9]+s$ && $WARMUP =~ ^[0-9]+s$ ]] || { echo "DURATION and WARMUP must look like 10s" >&2; exit 1; }

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- the binary and the load generator --------------------------------------
if [[ -n "${SANDGATE_CONTROL_BIN:-}" ]]; then
    BIN=$SANDGATE_CONTROL_BIN
else
    log "building the release binary"
    (cd "$ROOT" && cargo build --release -p sandgate-control)
    BIN="$ROOT/target/release/sandgate-control"
fi
[[ -x "$BIN" ]] || die "$BIN is not an executable"
if ! command -v wrk >/dev/null; then
    log "wrk is missing; installing the Debian package"
    apt-get install -y wrk >/dev/null
fi
command -v python3 >/dev/null || die "python3 is required"

# --- start the server --------------------------------------------------------
WORK=$(mktemp -d -t sandgate-bench.XXXXXX)
SERVER_PID=
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free port on 127.0.0.1 (bind to port 0, read it, release it).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
cat >"$WORK/control.toml" <<TOML
[server]
host = "127.0.0.1"
port = $PORT

[runtime]
type = "fake"

[store]
path = "$WORK/state.db"

[sandgate.fake]
provision_latency_ms = 50
state_file = "$WORK/fake-engine.json"
TOML

log "starting $BIN on $BASE (log: $WORK/control.log)"
env -u RUST_LOG -u OPENSANDBOX_SERVER_API_KEY -u SANDBOX_CONFIG_PATH \
    "$BIN" --config "$WORK/control.toml" >"$WORK/control.log" 2>&1 &
SERVER_PID=$!

# Polls a condition (a shell command) every 0.1 s until it holds or SECONDS pass.
wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited; log: $(tail -5 "$WORK/control.log")"
        ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
        sleep 0.1
    done
}
healthy() { curl -fsS -o /dev/null "$BASE/health"; }
wait_for "GET /health" 30 healthy

# --- create the sandboxes (bounded: exactly $SANDBOXES requests, 16 at a time)
log "creating $SANDBOXES sandboxes"
python3 - "$PORT" "$SANDBOXES" "$WORK/ids.txt" <<'PY'
import http.client, json, sys, threading
from concurrent.futures import ThreadPoolExecutor

port, count, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
local = threading.local()

def create(i):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({
        "image": {"uri": "python:3.12"},
        "entrypoint": ["sleep", "infinity"],
        "resourceLimits": {"cpu": "1", "memory": "1Gi"},
        "timeout": 86400,
        "metadata": {"team": f"t{i % 10}", "env": "prod" if i % 2 else "dev", "n": str(i)},
    })
    local.conn.request("POST", "/v1/sandboxes", body, {"Content-Type": "application/json"})
    response = local.conn.getresponse()
    data = response.read()
    if response.status != 202:
        raise SystemExit(f"create {i}: HTTP {response.status}: {data[:200]!r}")
    return json.loads(data)["id"]

with ThreadPoolExecutor(max_workers=16) as pool:
    ids = list(pool.map(create, range(count)))
with open(out, "w") as f:
    f.write("\n".join(ids) + "\n")
PY
[[ $(wc -l <"$WORK/ids.txt") -eq $SANDBOXES ]] || die "expected $SANDBOXES ids"

running_total() {
    curl -fsS "$BASE/v1/sandboxes?state=Running&pageSize=1" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["pagination"]["totalItems"])'
}
all_running() { [[ $(running_total) -eq $SANDBOXES ]]; }
wait_for "all $SANDBOXES sandboxes to be Running" 120 all_running
log "all $SANDBOXES sandboxes are Running"

# Sanity: both targets answer 200 with the expected shape before loading them.
FIRST_ID=$(head -1 "$WORK/ids.txt")
curl -fsS -o /dev/null "$BASE/v1/sandboxes/$FIRST_ID" || die "GET one sandbox failed"
PAGE_ITEMS=$(curl -fsS "$BASE/v1/sandboxes?$LIST_QUERY" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
((PAGE_ITEMS == 20)) || die "the filtered page has $PAGE_ITEMS items, expected 20"

# --- load ----------------------------------------------------------------------
# wrk Lua script: every request GETs a sandbox picked at random from the ids.
cat >"$WORK/get-random.lua" <<LUA
local ids = {}
for line in io.lines("$WORK/ids.txt") do ids[#ids + 1] = line end
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request() return wrk.format("GET", "/v1/sandboxes/" .. ids[math.random(#ids)]) end
LUA

CLK_TCK=$(getconf CLK_TCK)
# utime + stime of the server, in clock ticks.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }

# Runs wrk on one target: warm-up (discarded), then the measured run.
# Writes the wrk output to $WORK/<name>.txt and the server CPU use to <name>.cpu.
declare -A COMMANDS
run_wrk() {
    local name=$1; shift
    log "wrk: $name (warm-up $WARMUP, then $DURATION)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" >/dev/null
    local before after
    before=$(server_ticks)
    local cmd=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
    printf -v "COMMANDS[$name]" '%q ' "${cmd[@]}"
    "${cmd[@]}" >"$WORK/$name.txt"
    after=$(server_ticks)
    echo "$(( after - before ))" >"$WORK/$name.cpu"
}

LOG_BYTES_BEFORE=$(stat -c %s "$WORK/control.log")
# Other work on the machine shifts every figure: record how busy it was.
LOADAVG=$(cut -d" " -f1-3 /proc/loadavg)
run_wrk get -s "$WORK/get-random.lua" "$BASE/v1/sandboxes/"
run_wrk list "$BASE/v1/sandboxes?$LIST_QUERY"
LOG_BYTES_AFTER=$(stat -c %s "$WORK/control.log")
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died under load"
RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
SERVER_THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status")

# --- report --------------------------------------------------------------------
# Parses wrk's output: requests/s, p50/p99 in ms, non-2xx count, socket errors.
parse() {
    python3 - "$WORK/$1.txt" "$(cat "$WORK/$1.cpu")" "$CLK_TCK" "$DURATION" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, clk, duration = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
def pct(p):
    m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(m.group(1)) * unit[m.group(2)]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
seconds = float(duration.rstrip("s"))
print(f"{rps:.0f} {pct(50):.3f} {pct(99):.3f} {total} {non2xx.group(1) if non2xx else 0} "
      f"{ticks / clk / seconds:.2f} {'errors:' + errors.group(1).replace(' ', '') if errors else 'none'}")
PY
}
read -r GET_RPS GET_P50 GET_P99 GET_N GET_BAD GET_CPU GET_ERR <<<"$(parse get)"
read -r LIST_RPS LIST_P50 LIST_P99 LIST_N LIST_BAD LIST_CPU LIST_ERR <<<"$(parse list)"
RSS_MIB=$(awk -v kb="$RSS_KB" 'BEGIN { printf "%.1f", kb / 1024 }')
HWM_MIB=$(awk -v kb="$HWM_KB" 'BEGIN { printf "%.1f", kb / 1024 }')
LOG_MIB=$(awk -v b="$((LOG_BYTES_AFTER - LOG_BYTES_BEFORE))" 'BEGIN { printf "%.1f", b / 1048576 }')

verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "**MISSED**" }'; }
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain 2>/dev/null | grep -q . && echo " (uncommitted changes)" || true)

{
    echo "# sandgate-control API benchmark (fake runtime, $SANDBOXES sandboxes)"
    echo
    echo "- Date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- Machine: $(nproc) CPUs, $CPU_MODEL (wrk and the server share them);" \
         "load average $LOADAVG just before the measured runs (single run: repeat it on a busy machine)"
    echo "- Commit: $COMMIT$DIRTY; binary: \`$BIN\`"
    echo "- Server: default logging (info, one access-log line per request) to a file;" \
         "$SERVER_THREADS threads; $LOG_MIB MiB of log written during the two measured runs"
    echo
    echo "| Measure | Result | Target | Verdict |"
    echo "|---|---|---|---|"
    echo "| GET /v1/sandboxes/{id} (random of $SANDBOXES) | $GET_RPS req/s, p50 $GET_P50 ms, p99 $GET_P99 ms | ≥ 20,000 req/s | $(verdict "$GET_RPS" ">=" 20000) |"
    echo "| GET /v1/sandboxes?$LIST_QUERY | $LIST_RPS req/s, p50 $LIST_P50 ms, p99 $LIST_P99 ms | p99 ≤ 10 ms | $(verdict "$LIST_P99" "<=" 10) |"
    echo "| Server RSS after the load (VmRSS / VmHWM) | $RSS_MIB MiB / $HWM_MIB MiB | ≤ 60 MiB | $(verdict "$HWM_MIB" "<=" 60) |"
    echo
    echo "| Run | Requests | Non-2xx | Socket errors | Server CPU (cores busy) |"
    echo "|---|---|---|---|---|"
    echo "| get | $GET_N | $GET_BAD | $GET_ERR | $GET_CPU |"
    echo "| list | $LIST_N | $LIST_BAD | $LIST_ERR | $LIST_CPU |"
    echo
    echo "Commands (after a $WARMUP warm-up run of each with the same options):"
    echo
    echo '```'
    echo "bench/control-api.sh   # SANDBOXES=$SANDBOXES DURATION=$DURATION WARMUP=$WARMUP THREADS=$THREADS CONNECTIONS=$CONNECTIONS"
    echo "${COMMANDS[get]}"
    echo "${COMMANDS[list]}"
    echo '```'
} | tee "$RESULTS"
log "written to $RESULTS"
