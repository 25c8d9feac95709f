# Compatibility suite for the published OpenSandbox CLI (`osb`, PyPI package
# opensandbox-cli) against a Sandgate stack in gateway/uri mode: create, list,
# get, endpoint, health, diagnostics (devops logs, inspect, summary), renew,
# pause, resume and kill, asserting on the CLI's JSON output (-o json) or, for
# the devops commands, on their plain text. The CLI reads its server and key from a config file
# ([connection] domain, api_key), or from OPEN_SANDBOX_DOMAIN/_API_KEY.
# Usage (scripts/compat.sh): cli.py OSB_BINARY CONFIG_FILE_TO_WRITE
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from types import SimpleNamespace

from harness import (
    API_KEY,
    APP_BODY,
    APP_ENTRYPOINT,
    APP_PORT,
    IMAGE,
    RUN_ID,
    RUN_KEY,
    UUID,
    Stack,
    StepFailed,
    Suite,
    body_is,
    check,
    eq,
    eventually,
    expires_in,
    get,
    near,
)

osb, config_file = sys.argv[1], sys.argv[2]
stack = Stack.from_env("uri")
suite = Suite("cli")
s = SimpleNamespace()
META = {RUN_KEY: RUN_ID, "suite": "cli"}
# An env value the sandbox gets and no diagnostics output may show.
ENV_SECRET = ("COMPAT_CLI_TOKEN", f"env-value-{RUN_ID}-never-shown")

with open(config_file, "w") as handle:
    handle.write(
        "# Written by tests/compat/python/cli.py for one compatibility run.\n"
        f'[connection]\ndomain = "{stack.domain}"\napi_key = "{API_KEY}"\nprotocol = "http"\n'
        "[output]\ncolor = false\n"
    )

# Without OPEN_SANDBOX_* the CLI must take everything from the config file.
FILE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPEN_SANDBOX_")}


def osb_run(*args: str, env: dict[str, str] | None = None, config: str = config_file) -> subprocess.CompletedProcess:
    return subprocess.run(
        [osb, "--no-color", "--config", config, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or FILE_ENV,
    )


def osb_json(*args: str, **kwargs) -> object:
    done = osb_run(*args, "-o", "json", **kwargs)
    if done.returncode != 0:
        raise StepFailed(f"osb {' '.join(args)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise StepFailed(f"osb {' '.join(args)} printed no JSON ({error}): {done.stdout!r}") from error


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def kill_all() -> None:
    listed = osb_json("sandbox", "list", "-m", f"{RUN_KEY}={RUN_ID}", "-m", "suite=cli")
    ids = [item["id"] for item in listed["items"]]
    if ids:
        osb_run("sandbox", "kill", *ids)


def create() -> None:
    metadata = [arg for key, value in META.items() for arg in ("-m", f"{key}={value}")]
    entrypoint = [f"--entrypoint={part}" for part in APP_ENTRYPOINT]
    out = osb_json(
        "sandbox",
        "create",
        "-i",
        IMAGE,
        *entrypoint,
        *metadata,
        "-t",
        "10m",
        "--resource",
        "cpu=500m",
        "--resource",
        "memory=128Mi",
        "--env",
        "=".join(ENV_SECRET),
    )
    check(isinstance(out, dict) and UUID.match(str(out.get("id"))), f"create prints the new id: {out}")
    eq((out["status"], out["image"]), ("created", IMAGE), "create output")
    s.id = out["id"]


def list_() -> None:
    out = osb_json(
        "sandbox",
        "list",
        "-s",
        "running",
        "-m",
        f"{RUN_KEY}={RUN_ID}",
        "-m",
        "suite=cli",
        "--page",
        "1",
        "--page-size",
        "10",
    )
    eq([item["id"] for item in out["items"]], [s.id], "listed ids")
    eq(out["items"][0]["status"]["state"], "Running", "listed state")
    eq(out["pagination"]["total_items"], 1, "pagination.total_items")
    paused = osb_json("sandbox", "list", "-s", "paused", "-m", f"{RUN_KEY}={RUN_ID}")
    eq(paused["items"], [], "no paused sandbox")


def get_() -> None:
    out = osb_json("sandbox", "get", s.id)
    eq(out["id"], s.id, "id")
    eq(out["status"]["state"], "Running", "state")
    eq(out["image"]["image"], IMAGE, "image")
    eq(out["entrypoint"], APP_ENTRYPOINT, "entrypoint")
    eq(out["metadata"], META, "metadata")
    near(
        when(out["expires_at"]), when(out["created_at"]) + timedelta(minutes=10), "expires_at = created_at + 10 min", 2
    )


def get_with_env() -> None:
    env = {**FILE_ENV, "OPEN_SANDBOX_DOMAIN": stack.domain, "OPEN_SANDBOX_API_KEY": API_KEY}
    out = osb_json("sandbox", "get", s.id, env=env, config=config_file + ".absent")
    eq(out["id"], s.id, "id through env configuration")


def endpoint() -> None:
    out = osb_json("sandbox", "endpoint", s.id, "-p", str(APP_PORT))
    eq(out["endpoint"], f"{stack.gateway}/{s.id}/{APP_PORT}", "endpoint")
    body_is(get(f"http://{out['endpoint']}/", out.get("headers")), 200, APP_BODY, "app port through the endpoint")
    eq(osb_json("sandbox", "health", s.id), {"sandbox_id": s.id, "healthy": True}, "sandbox health")


def diagnostics() -> None:
    out = osb_json("diagnostics", "events", s.id, "--scope", "lifecycle")
    eq((out["sandbox_id"], out["kind"], out["scope"]), (s.id, "events", "lifecycle"), "events descriptor")
    check("Running" in out["content"], f"the Running transition in the events: {out['content']!r}")
    # the deprecated plain-text form (GET .../diagnostics/logs without scope)
    done = osb_run("devops", "logs", s.id)
    eq(done.returncode, 0, f"devops logs exit status ({done.stderr.strip()})")
    check("starting test execd" in done.stdout, f"container output in devops logs: {done.stdout!r}")
    check("lifecycle" not in done.stdout, f"devops logs is the container output only: {done.stdout!r}")
    done = osb_run("devops", "logs", s.id, "--tail", "1", "--since", "1h")
    lines = done.stdout.strip().splitlines()
    check(done.returncode == 0 and len(lines) == 1, f"devops logs --tail 1 gives one line: {done.stdout!r}")
    done = osb_run("devops", "events", s.id, "--limit", "2")
    lines = done.stdout.strip().splitlines()
    check(done.returncode == 0 and len(lines) == 2, f"devops events --limit 2 gives two lines: {done.stdout!r}")


def devops_inspect() -> None:
    done = osb_run("devops", "inspect", s.id)
    eq(done.returncode, 0, f"devops inspect exit status ({done.stderr.strip()})")
    text = done.stdout
    for expected in (
        f"Name:           sandbox-{s.id}\n",
        f"Image:          {IMAGE}\n",
        "Status:         running\n",
        "  CPU:          0.50 cores\n",
        "  Memory:       128.00 MiB\n",
        f"  opensandbox.io/id={s.id}\n",
        # Metadata labels live in Sandgate's namespace (issue 10: no traefik.*).
        "  sandgate.io/metadata.suite=cli\n",
    ):
        check(expected in text, f"{expected!r} in devops inspect: {text!r}")
    check(text.startswith("Container ID:   "), f"devops inspect starts with the container id: {text!r}")
    for secret in ENV_SECRET:
        check(secret not in text, f"devops inspect never shows the environment ({secret!r}): {text!r}")
    missing = osb_run("devops", "inspect", "00000000-0000-4000-8000-000000000000")
    check(
        missing.returncode != 0 and "not found" in missing.stderr + missing.stdout,
        f"devops inspect of an unknown id fails: {missing.stderr.strip()}",
    )


def devops_summary() -> None:
    done = osb_run("devops", "summary", s.id, "--tail", "20", "--event-limit", "10")
    eq(done.returncode, 0, f"devops summary exit status ({done.stderr.strip()})")
    text = done.stdout
    rule, section = "=" * 72, "-" * 40
    header = f"{rule}\nSANDBOX DIAGNOSTICS SUMMARY\nSandbox ID: {s.id}\n{rule}\n\n{section}\nINSPECT\n{section}\n"
    check(text.startswith(header), f"devops summary header: {text[:400]!r}")
    positions = [text.find(f"\n{section}\n{title}\n{section}\n") for title in ("EVENTS", "LOGS (last 20 lines)")]
    check(-1 not in positions and positions == sorted(positions), f"EVENTS then LOGS sections: {text!r}")
    events, logs = text[positions[0] : positions[1]], text[positions[1] :]
    check(f"opensandbox.io/id={s.id}" in text[: positions[0]], f"inspect section names the sandbox: {text!r}")
    check("lifecycle Running" in events, f"the Running transition in the events section: {events!r}")
    check(len([l for l in events.splitlines() if " lifecycle " in l or " runtime " in l]) <= 10, f"at most 10 events: {events!r}")
    check("starting test execd" in logs, f"container output in the logs section: {logs!r}")
    check("[error]" not in text, f"every part collected: {text!r}")
    check(ENV_SECRET[1] not in text, "devops summary never shows the environment")
    bad = osb_run("devops", "summary", s.id, "--tail", "0")
    check(
        bad.returncode != 0 and "400" in bad.stderr + bad.stdout,
        f"--tail 0 is refused with 400: {bad.stderr.strip() or bad.stdout.strip()}",
    )


def renew() -> None:
    target = expires_in(30)
    out = osb_json("sandbox", "renew", s.id, "-t", "30m")
    eq(out["sandbox_id"], s.id, "renewed id")
    near(datetime.fromisoformat(out["expires_at"]), target, "renewed expires_at")
    near(
        when(osb_json("sandbox", "get", s.id)["expires_at"]),
        datetime.fromisoformat(out["expires_at"]),
        "expires_at after renew",
        0.001,
    )


def pause_resume() -> None:
    out = osb_json("sandbox", "pause", s.id)
    eq(out, {"status": "ok", "message": f"Pause request accepted: {s.id}"}, "pause output")
    eventually(lambda: osb_json("sandbox", "get", s.id)["status"]["state"] == "Paused", "state becomes Paused")
    eq(osb_json("sandbox", "health", s.id)["healthy"], False, "health while paused")
    out = osb_json("sandbox", "resume", s.id)  # waits for readiness
    eq(out, {"status": "ok", "message": f"Sandbox resumed: {s.id}"}, "resume output")
    eq(osb_json("sandbox", "get", s.id)["status"]["state"], "Running", "state after resume")


def kill() -> None:
    out = osb_json("sandbox", "kill", s.id)
    eq(out, [{"sandbox_id": s.id, "status": "terminated"}], "kill output")
    done = osb_run("sandbox", "get", s.id, "-o", "json")
    check(done.returncode != 0, "get after kill fails")
    check(
        "DOCKER::SANDBOX_NOT_FOUND" in done.stderr + done.stdout,
        f"get after kill names the error: {done.stderr.strip()}",
    )


suite.on_exit(kill_all)
suite.step("sandbox create -o json (readiness through the gateway)", create)
suite.step("sandbox list with state, metadata and page filters", list_)
suite.step("sandbox get: state, image, entrypoint, metadata, expires_at", get_)
suite.step("configuration from OPEN_SANDBOX_DOMAIN/OPEN_SANDBOX_API_KEY", get_with_env)
suite.step("sandbox endpoint -p 8000, fetched; sandbox health", endpoint)
suite.step("diagnostics events --scope lifecycle; devops logs and events with tail, since, limit", diagnostics)
suite.step("devops inspect: container essentials, no env values; unknown id fails", devops_inspect)
suite.step("devops summary --tail 20 --event-limit 10: framing and content; --tail 0 refused", devops_summary)
suite.step("sandbox renew -t 30m", renew)
suite.step("sandbox pause, health false, sandbox resume", pause_resume)
suite.step("sandbox kill; get afterwards fails with SANDBOX_NOT_FOUND", kill)
suite.finish()
