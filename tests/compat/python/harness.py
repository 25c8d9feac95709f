# Shared helpers for the OpenSandbox client compatibility suites (run by
# scripts/compat.sh): the stack's coordinates from the environment, a step
# runner that prints one PASS/FAIL line per step, assertions with clear
# messages, deadline-bound polling, and plain HTTP fetches through endpoints.
from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

# The SDK logs a warning for every failed call, including the ones a step
# expects to fail; the exception it raises carries the same message.
logging.getLogger("opensandbox").setLevel(logging.ERROR)

APP_PORT = 8000
EXECD_PORT = 44772
EGRESS_PORT = 18080
APP_BODY = "hello from sandgate-test"
# busybox httpd on the app port: the test image serves /www/index.html.
APP_ENTRYPOINT = ["httpd", "-f", "-p", str(APP_PORT), "-h", "/www"]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (run the suite through scripts/compat.sh)")
    return value


@dataclass(frozen=True)
class Stack:
    """One control plane and its edge proxy, in one gateway route mode."""

    domain: str  # the control plane, host:port (OPEN_SANDBOX_DOMAIN)
    gateway: str  # the edge proxy's listener, host:port

    @staticmethod
    def from_env(mode: str) -> Stack:
        prefix = f"COMPAT_{mode.upper()}"
        return Stack(domain=env(f"{prefix}_DOMAIN"), gateway=env(f"{prefix}_GATEWAY"))


API_KEY = os.environ.get("COMPAT_API_KEY", "")
IMAGE = os.environ.get("COMPAT_IMAGE", "sandgate-test/busybox:latest")
RUN_ID = os.environ.get("COMPAT_RUN_ID", "local")
# Every sandbox carries RUN_KEY=RUN_ID. A prefixed key: the SDKs percent-encode
# the list filter's "/" twice, so listing by it checks the server decodes both.
RUN_KEY = "compat.sandgate.test/run"


class StepFailed(AssertionError):
    pass


def eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise StepFailed(f"{what}: expected {expected!r}, got {actual!r}")


def check(condition: Any, what: str) -> None:
    if not condition:
        raise StepFailed(what)


def near(actual: datetime | None, expected: datetime, what: str, slack: float = 5.0) -> None:
    """`actual` is a timezone-aware instant within `slack` seconds of `expected`."""
    check(actual is not None, f"{what}: missing")
    assert actual is not None
    check(actual.tzinfo is not None, f"{what}: {actual!r} has no time zone")
    delta = abs((actual - expected).total_seconds())
    check(delta <= slack, f"{what}: {actual.isoformat()} is {delta:.1f}s from {expected.isoformat()}")


def now() -> datetime:
    return datetime.now(timezone.utc)


def raises(call: Callable[[], Any], what: str) -> BaseException:
    """Runs `call`, which must raise; returns the exception."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the caller inspects it
        return error
    raise StepFailed(f"{what}: expected an error, got {result!r}")


def api_error(error: BaseException, status: int, code: str, what: str) -> None:
    """`error` is the SDK's SandboxApiException with this HTTP status and code."""
    from opensandbox.exceptions import SandboxApiException

    check(isinstance(error, SandboxApiException), f"{what}: expected SandboxApiException, got {error!r}")
    eq(getattr(error, "status_code", None), status, f"{what}: HTTP status")
    eq(error.error.code, code, f"{what}: error code")


def eventually(probe: Callable[[], Any], what: str, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Calls `probe` until it returns a truthy value or stops raising
    StepFailed; gives up after `timeout` seconds with the last observation."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except StepFailed as failure:
            last = failure
        if time.monotonic() >= deadline:
            raise StepFailed(f"{what}: not true within {timeout:.0f}s (last: {last})")
        time.sleep(interval)


def get(url: str, headers: dict[str, str] | None = None, host: str | None = None) -> httpx.Response:
    """GET without proxies from the environment; `host` overrides the Host header."""
    headers = dict(headers or {})
    if host is not None:
        headers["Host"] = host
    with httpx.Client(trust_env=False, timeout=15.0) as client:
        return client.get(url, headers=headers)


def fetch(endpoint: Any, path: str = "/", with_headers: bool = True) -> httpx.Response:
    """GET http://<endpoint><path> with the endpoint's headers, as a client
    of the SDK would (the SDK returns endpoints without a scheme)."""
    check("://" not in endpoint.endpoint, f"endpoint {endpoint.endpoint!r} must not carry a scheme")
    return get(f"http://{endpoint.endpoint}{path}", endpoint.headers if with_headers else None)


def body_is(response: httpx.Response, status: int, text: str, what: str) -> None:
    eq(response.status_code, status, f"{what}: HTTP status (body {response.text[:200]!r})")
    eq(response.text.strip(), text, f"{what}: body")


class Suite:
    """Runs steps in order; after a failure the remaining steps are reported
    as skipped (they depend on the earlier ones). `finally_` callables run at
    the end whatever happened (cleanup of what the suite created)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.cleanups: list[Callable[[], Any]] = []

    def step(self, title: str, action: Callable[[], Any]) -> None:
        if self.failed:
            self.skipped += 1
            print(f"[{self.name}] SKIP {title} (an earlier step failed)", flush=True)
            return
        started = time.monotonic()
        try:
            action()
        except Exception as error:  # noqa: BLE001 - every failure is reported
            self.failed += 1
            elapsed = time.monotonic() - started
            print(f"[{self.name}] FAIL {title} ({elapsed:.1f}s): {error}", flush=True)
            if not isinstance(error, StepFailed):
                traceback.print_exc(file=sys.stdout)
            return
        self.passed += 1
        print(f"[{self.name}] PASS {title} ({time.monotonic() - started:.1f}s)", flush=True)

    def on_exit(self, cleanup: Callable[[], Any]) -> None:
        self.cleanups.append(cleanup)

    def finish(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:  # noqa: BLE001 - cleanup is best effort
                print(f"[{self.name}] cleanup: {error}", flush=True)
        print(
            f"[{self.name}] {self.passed} passed, {self.failed} failed, {self.skipped} skipped",
            flush=True,
        )
        sys.exit(1 if self.failed else 0)


def expires_in(minutes: float) -> datetime:
    return now() + timedelta(minutes=minutes)


def b36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out
