"""Runs the published Python SDK (opensandbox 1.1.1) against one server and records its HTTP exchanges.

The flow is create (with the SDK's readiness check), get_info, renew, kill.
Every exchange with the lifecycle API is recorded through the SDK's
documented `event_hooks`; the runner compares the two servers' recordings
exchange by exchange, and the flow's outcome (which step raised what).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from opensandbox.config.connection_sync import ConnectionConfigSync
from opensandbox.sync.sandbox import SandboxSync

from cases import IMAGE, LIMITS


def answer_of(response: httpx.Response) -> dict:
    """The runner's answer record (status, media type, json or text) for one response."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    answer = {"status": response.status_code, "type": media, "text": response.text[:2000]}
    if media.endswith("json") and response.content:
        try:
            answer["json"] = response.json()
        except ValueError:
            pass
    return answer


def run(domain: str, api_key: str, ids: list[str]) -> tuple[list[dict], list[str]]:
    """(exchanges, outcome lines) of the flow against domain; ids collects created sandbox ids."""
    exchanges: list[dict] = []

    def record(response: httpx.Response) -> None:
        url = response.request.url
        if url.netloc.decode() != domain:
            return  # execd readiness probes go to the sandbox, not the API
        response.read()
        path = urlsplit(str(url)).path
        exchanges.append({"request": f"{response.request.method} {path}", "answer": answer_of(response)})

    config = ConnectionConfigSync(
        domain=domain,
        api_key=api_key,
        protocol="http",
        request_timeout=timedelta(seconds=20),
        event_hooks={"response": [record]},
    )
    outcome: list[str] = []
    sandbox = None
    try:
        sandbox = SandboxSync.create(
            IMAGE,
            entrypoint=["sleep", "600"],
            timeout=timedelta(minutes=10),
            ready_timeout=timedelta(seconds=30),
            resource=LIMITS,
            metadata={"suite": "differential-sdk"},
            connection_config=config,
        )
        outcome.append("create: ok")
        info = sandbox.get_info()
        outcome.append(f"get_info: state {info.status.state}")
        sandbox.renew(timedelta(minutes=20))
        outcome.append("renew: ok")
        sandbox.kill()
        outcome.append("kill: ok")
    except Exception as error:  # noqa: BLE001 - the outcome is what is compared
        outcome.append(f"raised {type(error).__name__}")
    finally:
        if sandbox is not None:
            sandbox.close()
    return normalised(exchanges, ids), outcome


def normalised(exchanges: list[dict], ids: list[str]) -> list[dict]:
    """Sandbox ids in paths become {id}; a run of identical requests (readiness polling) counts once."""
    for exchange in exchanges:
        created = exchange["answer"].get("json")
        if exchange["request"] == "POST /v1/sandboxes" and isinstance(created, dict) and "id" in created:
            ids.append(str(created["id"]))
    out: list[dict] = []
    for exchange in exchanges:
        for known in set(ids):
            exchange["request"] = exchange["request"].replace(known, "{id}")
        if out and out[-1]["request"] == exchange["request"]:
            out[-1] = exchange
        else:
            out.append(exchange)
    return out
