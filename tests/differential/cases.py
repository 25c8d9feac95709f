"""The request sequence both servers receive, in order: lifecycle, errors, side routes.

Each step is a `Call` (one HTTP request, answers compared) or a `Wait` (poll a
sandbox until it reaches a state; not compared, but a timeout is reported).
Paths and bodies may use {names} a previous create saved per server
(`save=`), so each server is asked about its own sandboxes. A body given as a
callable is built at send time (for timestamps relative to now).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

IMAGE = "sandgate-test/busybox:latest"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
JSON = {"Content-Type": "application/json"}
LIMITS = {"cpu": "250m", "memory": "128Mi"}


@dataclass
class Call:
    name: str
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict = field(default_factory=dict)
    auth: str | None = "good"  # "good", "wrong", or None (no key)
    save: str | None = None  # remember body.id under this name
    body: Callable[[], Any] | None = None


@dataclass
class Wait:
    name: str
    sandbox: str
    states: tuple[str, ...]
    seconds: float = 30.0


def sandbox(role: str, **extra) -> dict:
    spec = {
        "image": {"uri": IMAGE},
        "entrypoint": ["sleep", "600"],
        "timeout": 600,
        "resourceLimits": LIMITS,
        "metadata": {"suite": "differential", "role": role},
        "env": {"DIFFERENTIAL": role},
    }
    spec.update(extra)
    return spec


def without(key: str) -> dict:
    spec = sandbox("invalid")
    del spec[key]
    return spec


def in_minutes(minutes: int) -> dict:
    moment = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return {"expiresAt": moment.isoformat().replace("+00:00", "Z")}


def basics() -> list:
    return [
        Call("health", "GET", "/health", auth=None),
        Call("health: wrong key", "GET", "/health", auth="wrong"),
        Call("version", "GET", "/version"),
        Call("auth: no key", "GET", "/v1/sandboxes", auth=None),
        Call("auth: wrong key", "GET", "/v1/sandboxes", auth="wrong"),
        Call("auth: no key, unknown sandbox", "GET", f"/v1/sandboxes/{UNKNOWN}", auth=None),
        Call("route: unknown", "GET", "/v1/no-such-route"),
        Call("route: unknown, no key", "GET", "/v1/no-such-route", auth=None),
        Call("method: PUT /v1/sandboxes", "PUT", "/v1/sandboxes", json={}),
        Call("method: DELETE /v1/sandboxes", "DELETE", "/v1/sandboxes"),
        Call("sandbox: unknown id", "GET", f"/v1/sandboxes/{UNKNOWN}"),
        Call("sandbox: unknown id, no /v1", "GET", f"/sandboxes/{UNKNOWN}"),
        Call("delete: unknown id", "DELETE", f"/v1/sandboxes/{UNKNOWN}"),
        Call("pause: unknown id", "POST", f"/v1/sandboxes/{UNKNOWN}/pause"),
        Call("resume: unknown id", "POST", f"/v1/sandboxes/{UNKNOWN}/resume"),
        Call("renew: unknown id", "POST", f"/v1/sandboxes/{UNKNOWN}/renew-expiration", body=lambda: in_minutes(30)),
        Call("metadata: unknown id", "PATCH", f"/v1/sandboxes/{UNKNOWN}/metadata", json={"a": "b"}),
        Call("endpoint: unknown id", "GET", f"/v1/sandboxes/{UNKNOWN}/endpoints/44772"),
    ]


def create_errors() -> list:
    def post(name, **kw):
        return Call(f"create: {name}", "POST", "/v1/sandboxes", **kw)

    return [
        post("bad JSON", content=b'{"image": ', headers=JSON),
        post("text/plain body", content=b'{"image": {"uri": "x"}}', headers={"Content-Type": "text/plain"}),
        post("empty body", content=b"", headers=JSON),
        post("body is an array", json=[sandbox("invalid")]),
        post("missing image", json=without("image")),
        post("missing entrypoint", json=without("entrypoint")),
        post("missing resourceLimits", json=without("resourceLimits")),
        post("empty image uri", json=sandbox("invalid", image={"uri": ""})),
        post("empty entrypoint", json=sandbox("invalid", entrypoint=[])),
        post("timeout below 60", json=sandbox("invalid", timeout=30)),
        post("timeout not a number", json=sandbox("invalid", timeout="ten")),
        post("timeout negative", json=sandbox("invalid", timeout=-1)),
        post("timeout above the maximum", json=sandbox("invalid", timeout=86401)),
        post("resourceLimits bad cpu", json=sandbox("invalid", resourceLimits={"cpu": "lots", "memory": "128Mi"})),
        post("resourceLimits bad memory", json=sandbox("invalid", resourceLimits={"cpu": "1", "memory": "-5"})),
        post("resourceLimits not an object", json=sandbox("invalid", resourceLimits="1 cpu")),
        post("metadata bad key", json=sandbox("invalid", metadata={"bad key!": "x"})),
        post("metadata reserved key", json=sandbox("invalid", metadata={"opensandbox.io/id": "x"})),
        post("env not an object", json=sandbox("invalid", env=["A=1"])),
    ]


def lifecycle_start() -> list:
    return [
        Call("create a", "POST", "/v1/sandboxes", json=sandbox("a"), save="a"),
        Wait("a running", "a", ("Running",)),
        Call("create b", "POST", "/v1/sandboxes", json=sandbox("b"), save="b"),
        Wait("b running", "b", ("Running",)),
        Call("get a", "GET", "/v1/sandboxes/{a}"),
        Call("get a, no /v1", "GET", "/sandboxes/{a}"),
        Call("list", "GET", "/v1/sandboxes"),
        Call("list: metadata suite", "GET", "/v1/sandboxes?metadata=suite%3Ddifferential"),
        Call("list: metadata role a", "GET", "/v1/sandboxes?metadata=role%3Da"),
        Call("list: metadata two keys", "GET", "/v1/sandboxes?metadata=role%3Db%26suite%3Ddifferential"),
        Call("list: metadata no match", "GET", "/v1/sandboxes?metadata=role%3Dnobody"),
        Call("list: state Running", "GET", "/v1/sandboxes?state=Running"),
        Call("list: state Paused", "GET", "/v1/sandboxes?state=Paused"),
        Call("list: state twice", "GET", "/v1/sandboxes?state=Running&state=Paused"),
        Call("list: page 1 of size 1", "GET", "/v1/sandboxes?pageSize=1&page=1"),
        Call("list: page 2 of size 1", "GET", "/v1/sandboxes?pageSize=1&page=2"),
        Call("list: page 3 of size 1", "GET", "/v1/sandboxes?pageSize=1&page=3"),
        Call("list: page 0", "GET", "/v1/sandboxes?page=0"),
        Call("list: pageSize 0", "GET", "/v1/sandboxes?pageSize=0"),
        Call("list: pageSize 1000", "GET", "/v1/sandboxes?pageSize=1000"),
        Call("list: pageSize not a number", "GET", "/v1/sandboxes?pageSize=ten"),
        Call("list: unknown state", "GET", "/v1/sandboxes?state=Bogus"),
        Call("list: metadata without =", "GET", "/v1/sandboxes?metadata=role"),
    ]


def lifecycle_middle() -> list:
    return [
        Call("metadata: patch", "PATCH", "/v1/sandboxes/{a}/metadata", json={"role": "patched", "extra": "x"}),
        Call("metadata: remove a key", "PATCH", "/v1/sandboxes/{a}/metadata", json={"extra": None}),
        Call("get a after patch", "GET", "/v1/sandboxes/{a}"),
        Call("metadata: bad JSON", "PATCH", "/v1/sandboxes/{a}/metadata", content=b"{", headers=JSON),
        Call("metadata: not an object", "PATCH", "/v1/sandboxes/{a}/metadata", json=["x"]),
        Call("metadata: reserved key", "PATCH", "/v1/sandboxes/{a}/metadata", json={"opensandbox.io/id": "x"}),
        Call("metadata: bad key", "PATCH", "/v1/sandboxes/{a}/metadata", json={"bad key!": "x"}),
        Call("endpoint 44772", "GET", "/v1/sandboxes/{a}/endpoints/44772"),
        Call("endpoint 18080", "GET", "/v1/sandboxes/{a}/endpoints/18080"),
        Call("endpoint 44772, server proxy", "GET", "/v1/sandboxes/{a}/endpoints/44772?use_server_proxy=true"),
        Call("endpoint port 0", "GET", "/v1/sandboxes/{a}/endpoints/0"),
        Call("endpoint port 70000", "GET", "/v1/sandboxes/{a}/endpoints/70000"),
        Call("endpoint port not a number", "GET", "/v1/sandboxes/{a}/endpoints/http"),
        Call("proxy: execd ping", "GET", "/v1/sandboxes/{a}/proxy/44772/ping"),
        Call("proxy: execd ping, no /v1", "GET", "/sandboxes/{a}/proxy/44772/ping"),
        Call("proxy: unknown sandbox", "GET", f"/v1/sandboxes/{UNKNOWN}/proxy/44772/ping"),
        Call("proxy: closed port", "GET", "/v1/sandboxes/{a}/proxy/18080/"),
        Call("renew: 30 minutes", "POST", "/v1/sandboxes/{a}/renew-expiration", body=lambda: in_minutes(30)),
        Call("renew: in the past", "POST", "/v1/sandboxes/{a}/renew-expiration", body=lambda: in_minutes(-5)),
        Call("renew: not a timestamp", "POST", "/v1/sandboxes/{a}/renew-expiration", json={"expiresAt": "soon"}),
        Call("renew: missing expiresAt", "POST", "/v1/sandboxes/{a}/renew-expiration", json={}),
        Call("networkpolicy: get", "GET", "/v1/sandboxes/{a}/networkpolicy"),
        Call("networkpolicy: patch", "PATCH", "/v1/sandboxes/{a}/networkpolicy",
             json=[{"action": "allow", "target": "example.com"}]),
        Call("networkpolicy: unknown sandbox", "GET", f"/v1/sandboxes/{UNKNOWN}/networkpolicy"),
        Call("diagnostics: logs", "GET", "/v1/sandboxes/{a}/diagnostics/logs"),
        Call("diagnostics: inspect", "GET", "/v1/sandboxes/{a}/diagnostics/inspect"),
        Call("diagnostics: events", "GET", "/v1/sandboxes/{a}/diagnostics/events"),
        Call("diagnostics: summary", "GET", "/v1/sandboxes/{a}/diagnostics/summary"),
        Call("diagnostics: unknown sandbox", "GET", f"/v1/sandboxes/{UNKNOWN}/diagnostics/summary"),
    ]


def pause_resume() -> list:
    return [
        Call("resume while running", "POST", "/v1/sandboxes/{a}/resume"),
        Call("pause a", "POST", "/v1/sandboxes/{a}/pause"),
        Wait("a paused", "a", ("Paused",)),
        Call("get a paused", "GET", "/v1/sandboxes/{a}"),
        Call("pause while paused", "POST", "/v1/sandboxes/{a}/pause"),
        Call("list: state Paused, one", "GET", "/v1/sandboxes?state=Paused"),
        Call("endpoint while paused", "GET", "/v1/sandboxes/{a}/endpoints/44772"),
        Call("renew while paused", "POST", "/v1/sandboxes/{a}/renew-expiration", body=lambda: in_minutes(40)),
        Call("resume a", "POST", "/v1/sandboxes/{a}/resume"),
        Wait("a running again", "a", ("Running",)),
        Call("get a resumed", "GET", "/v1/sandboxes/{a}"),
    ]


def side_routes() -> list:
    pool = {"name": "differential", "template": {}, "capacitySpec": {"bufferMax": 1, "bufferMin": 0, "poolMax": 1, "poolMin": 0}}
    event = {"eventType": "sandbox.create", "sandboxId": "x", "image": IMAGE, "createDurationMs": 12, "success": True}
    return [
        Call("snapshots: list", "GET", "/v1/snapshots"),
        Call("snapshots: unknown", "GET", "/v1/snapshots/no-such-snapshot"),
        Call("snapshots: delete unknown", "DELETE", "/v1/snapshots/no-such-snapshot"),
        Call("snapshots: create for unknown sandbox", "POST", f"/v1/sandboxes/{UNKNOWN}/snapshots", json={}),
        Call("pools: list", "GET", "/v1/pools"),
        Call("pools: create", "POST", "/v1/pools", json=pool),
        Call("pools: get", "GET", "/v1/pools/differential"),
        Call("pools: update", "PUT", "/v1/pools/differential", json={"capacitySpec": pool["capacitySpec"]}),
        Call("pools: delete", "DELETE", "/v1/pools/differential"),
        Call("templates: list", "GET", "/v1/templates"),
        Call("templates: create", "POST", "/v1/templates", json={"name": "differential", "image": IMAGE}),
        Call("templates: get", "GET", "/v1/templates/no-such-template"),
        Call("templates: delete", "DELETE", "/v1/templates/no-such-template"),
        Call("metrics: event", "POST", "/v1/metrics/events", json=event),
        Call("metrics: event without /v1", "POST", "/metrics/events", json=event),
        Call("metrics: missing fields", "POST", "/v1/metrics/events", json={"eventType": "sandbox.create"}),
        Call("metrics: unknown event type", "POST", "/v1/metrics/events", json={**event, "eventType": "x"}),
        Call("metrics: negative duration", "POST", "/v1/metrics/events", json={**event, "createDurationMs": -1}),
        Call("metrics: bad JSON", "POST", "/v1/metrics/events", content=b"{", headers=JSON),
        Call("metrics: no key", "POST", "/v1/metrics/events", json=event, auth=None),
    ]


def lifecycle_end() -> list:
    return [
        Call("delete a", "DELETE", "/v1/sandboxes/{a}"),
        Call("get a after delete", "GET", "/v1/sandboxes/{a}"),
        Call("delete a again", "DELETE", "/v1/sandboxes/{a}"),
        Call("delete b, no /v1", "DELETE", "/sandboxes/{b}"),
        Call("list after delete", "GET", "/v1/sandboxes?metadata=suite%3Ddifferential"),
    ]


def all_steps() -> list:
    return basics() + create_errors() + lifecycle_start() + lifecycle_middle() + pause_resume() + side_routes() + lifecycle_end()
