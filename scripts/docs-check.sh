#!/usr/bin/env bash
# Checks that sandgate-control's API docs render with no request leaving the
# machine: /docs (Swagger UI) and /redoc (ReDoc) are loaded in headless
# Chromium (Debian's `chromium` package) and must show every operation of
# /openapi.json.
#
# How "no request leaves the machine" is established, twice over:
#  - sandgate-control and Chromium run in a fresh network namespace that
#    has nothing but loopback, so no packet can leave, whatever happens;
#  - Chromium's net log is recorded and checked: every URL the page
#    requested is on http://127.0.0.1:PORT, no TCP connection went anywhere
#    else, no DNS query and no UDP data was sent. (Chromium's own background
#    requests, which belong to no page, are listed and must have failed.)
#
# It asserts, with an API key configured (which /docs and /redoc do not
# need): the docs pages answer 200 without the key while the API answers
# 401; the rendered Swagger UI DOM has an opblock for every operation of
# /openapi.json and nothing else; the screenshot is a PNG of the window's
# size, not blank, with one coloured method badge per operation; the page
# logged no CSP violation; ReDoc's DOM has a section for every operation.
#
# Usage: scripts/docs-check.sh [--update-image]
#   --update-image  also copy the Swagger UI screenshot to docs/swagger-ui.png
#
# Needs root (or unprivileged user namespaces), util-linux (unshare),
# iproute2 (ip), curl, python3, and Debian's chromium and fonts-liberation,
# which it installs with apt-get (no recommends) when missing and root.
# Builds sandgate-control only if the binary is missing. Takes ~5-10 s.
# Environment:
#   SANDGATE_CONTROL_BIN  the binary (default $CARGO_TARGET_DIR/debug/sandgate-control)
#   SANDGATE_ARTIFACTS    where docs.png and redoc.png go (default target/artifacts)
#   DOCS_CHECK_WINDOW     browser window, WIDTHxHEIGHT (default 1280x2800)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf '==> %s\n' "$*"; }
die() { printf 'docs-check: FAIL: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" != "--in-netns" ]; then
    update_image=0
    case "${1:-}" in
    "") ;;
    --update-image) update_image=1 ;;
    *) die "unknown argument ${1} (usage: scripts/docs-check.sh [--update-image])" ;;
    esac
    started=$(date +%s)
    [[ "${DOCS_CHECK_WINDOW:-1280x2800}" =~ ^[0-9]+x[0-9]+$ ]] ||
        die "DOCS_CHECK_WINDOW must be WIDTHxHEIGHT, not $DOCS_CHECK_WINDOW"

    # Debian's chromium; its launcher script adds flags (remote extensions,
    # API keys) that this check does not want, so the binary is run directly.
    # Recommends are not needed (avahi, cups, upower, ...); the Liberation
    # fonts are, for metric-compatible text in the screenshot.
    chromium_bin=/usr/lib/chromium/chromium
    packages=()
    [ -x "$chromium_bin" ] || packages+=(chromium)
    dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null | grep -q 'ok installed' ||
        packages+=(fonts-liberation)
    if [ "${#packages[@]}" -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] ||
            die "missing packages: apt-get install --no-install-recommends ${packages[*]}"
        say "installing ${packages[*]} (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    fi
    [ -x "$chromium_bin" ] || die "$chromium_bin is missing after installing chromium"
    for tool in unshare ip curl python3 timeout; do
        command -v "$tool" >/dev/null || die "$tool is missing (packages: util-linux iproute2 curl python3 coreutils)"
    done

    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    control_bin="${SANDGATE_CONTROL_BIN:-$target_dir/debug/sandgate-control}"
    if [ ! -x "$control_bin" ]; then
        say "building sandgate-control (no binary at $control_bin)"
        cargo build -p sandgate-control --locked
    fi
    [ -x "$control_bin" ] || die "no sandgate-control binary at $control_bin"

    artifacts="${SANDGATE_ARTIFACTS:-target/artifacts}"
    mkdir -p "$artifacts"
    artifacts="$(cd "$artifacts" && pwd)"
    rm -rf "$artifacts/docs.png" "$artifacts/redoc.png" "$artifacts/docs-check-logs"

    say "$("$chromium_bin" --version 2>/dev/null | xargs), $("$control_bin" --version)"
    say "entering a network namespace with loopback only"
    unshare_flags=(--net)
    [ "$(id -u)" -eq 0 ] || unshare_flags+=(--map-root-user)
    export DOCS_CHECK_CHROMIUM="$chromium_bin" DOCS_CHECK_CONTROL="$control_bin" \
        DOCS_CHECK_ARTIFACTS="$artifacts"
    unshare "${unshare_flags[@]}" -- "${BASH_SOURCE[0]}" --in-netns ||
        die "see the messages above; logs are in $artifacts/docs-check-logs/"

    if [ "$update_image" -eq 1 ]; then
        size=$(stat -c %s "$artifacts/docs.png")
        [ "$size" -lt 409600 ] || die "docs.png is $size bytes, too large to commit (limit 400 KB)"
        mkdir -p docs
        cp "$artifacts/docs.png" docs/swagger-ui.png
        say "copied to docs/swagger-ui.png ($size bytes)"
    fi
    say "docs check passed in $(($(date +%s) - started)) s; screenshots: $artifacts/docs.png, $artifacts/redoc.png"
    exit 0
fi

# ---- inside the network namespace ------------------------------------------

check="$repo/scripts/docs-check/check.py"
window="${DOCS_CHECK_WINDOW:-1280x2800}"
width="${window%x*}"
height="${window#*x}"
[[ "$width" =~ ^[0-9]+$ && "$height" =~ ^[0-9]+$ ]] || die "DOCS_CHECK_WINDOW must be WIDTHxHEIGHT, not $window"
artifacts="$DOCS_CHECK_ARTIFACTS"

ip link set lo up
others=$(ip -o link show | awk -F': ' '$2 != "lo" {print $2}')
[ -z "$others" ] || die "the namespace has interfaces besides loopback: $others"
[ -z "$(ip route show)$(ip -6 route show | grep -v '^::1 ' || true)" ] ||
    die "the namespace has routes besides loopback"

work=$(mktemp -d -t sandgate-docs-check.XXXXXX)
control_pid=
cleanup() {
    status=$?
    if [ -n "$control_pid" ]; then
        kill "$control_pid" 2>/dev/null || true
        wait "$control_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ]; then
        mkdir -p "$artifacts/docs-check-logs"
        cp "$work"/*.log "$work"/*.json "$work"/*.html "$work"/*.png "$artifacts/docs-check-logs/" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
origin="http://127.0.0.1:$port"
key="docs-check-$RANDOM$RANDOM$RANDOM"
cat >"$work/control.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port
api_key = "$key"

[runtime]
type = "fake"

[store]
path = "$work/state.db"
TOML

say "starting sandgate-control (fake runtime, API key set) on $origin"
"$DOCS_CHECK_CONTROL" --config "$work/control.toml" >"$work/control.log" 2>&1 &
control_pid=$!
deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null "$origin/health" 2>/dev/null; do
    if ! kill -0 "$control_pid" 2>/dev/null; then
        cat "$work/control.log" >&2
        die "sandgate-control exited during startup"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "sandgate-control did not answer /health within 30 s"
    sleep 0.1
done

status_of() { curl -sS -o /dev/null -w '%{http_code}' "$@"; }
code=$(status_of "$origin/v1/sandboxes")
[ "$code" = 401 ] || die "GET /v1/sandboxes without the key answered $code, expected 401 (is the key set?)"
for path in /docs/ /redoc /openapi.json; do
    code=$(status_of "$origin$path")
    [ "$code" = 200 ] || die "GET $path without the key answered $code, expected 200"
done
say "without the key: /docs/, /redoc and /openapi.json answer 200, /v1/sandboxes 401"
curl -fsS -o "$work/openapi.json" "$origin/openapi.json"
curl -fsS -o "$work/swagger-ui.css" "$origin/docs/swagger-ui.css"

# Renders $1 into a screenshot ($2), the DOM ($3) and a net log ($4).
render() {
    local url=$1 shot=$2 dom=$3 netlog=$4 name
    name=$(basename "$dom" .html)
    # shellcheck disable=SC2054 # the commas belong to --disable-features
    local flags=(
        --headless --no-sandbox --disable-gpu --disable-dev-shm-usage
        --user-data-dir="$work/profile-$name"
        --no-first-run --no-default-browser-check --disable-default-apps
        --disable-extensions --disable-sync --disable-background-networking
        --disable-component-update --disable-domain-reliability
        --metrics-recording-only --disable-breakpad
        --disable-client-side-phishing-detection
        # Background features that would otherwise request Google hosts
        # (autofill form queries, network time, translation, media router,
        # model downloads). OptimizationHints must stay enabled: disabling
        # it is known to crash some Chromium versions.
        --disable-features=AutofillServerCommunication,NetworkTimeServiceQuerying,Translate,MediaRouter,OptimizationGuideModelDownloading,OptimizationGuideOnDeviceModel
        # No name resolves, so nothing could be fetched by name anyway.
        --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
        --log-net-log="$netlog" --net-log-capture-mode=Default
        --enable-logging=stderr --v=0
        --force-color-profile=srgb --hide-scrollbars
        --window-size="$width,$height"
        # Virtual time runs the page until it is idle (scripts, the
        # document fetch, rendering), up to 15 virtual seconds.
        --virtual-time-budget=15000 --run-all-compositor-stages-before-draw
        --screenshot="$shot" --dump-dom "$url"
    )
    timeout --kill-after=10 90 "$DOCS_CHECK_CHROMIUM" "${flags[@]}" >"$dom" 2>"$work/$name.chromium.log" ||
        { tail -20 "$work/$name.chromium.log" >&2; die "chromium failed on $url"; }
    [ -s "$shot" ] || die "chromium wrote no screenshot for $url"
}

say "rendering $origin/docs in headless Chromium"
render "$origin/docs" "$work/docs.png" "$work/docs.html" "$work/docs-netlog.json"
python3 "$check" netlog "$work/docs-netlog.json" "$origin" /docs/ /docs/swagger-ui-bundle.js /openapi.json
python3 "$check" console "$work/docs.chromium.log" "$origin"
python3 "$check" swagger "$work/docs.html" "$work/openapi.json"
python3 "$check" png "$work/docs.png" "$width" "$height" "$work/openapi.json" "$work/swagger-ui.css"
cp "$work/docs.png" "$artifacts/docs.png"

say "rendering $origin/redoc in headless Chromium"
render "$origin/redoc" "$work/redoc.png" "$work/redoc.html" "$work/redoc-netlog.json"
python3 "$check" netlog "$work/redoc-netlog.json" "$origin" /redoc /redoc/redoc.standalone.js /openapi.json
python3 "$check" console "$work/redoc.chromium.log" "$origin"
python3 "$check" redoc "$work/redoc.html" "$work/openapi.json"
cp "$work/redoc.png" "$artifacts/redoc.png"

say "screenshot: $artifacts/docs.png ($(stat -c %s "$artifacts/docs.png") bytes), ReDoc: $artifacts/redoc.png"
