# Compatibility suite for the ingress modes other than gateway/uri, driven by
# the published Python SDK (SandboxSync): gateway route mode "header" (the
# endpoint is the gateway plus an OpenSandbox-Ingress-To header the SDK must
# send with every execd call), "wildcard" (<id>-<port>.<domain>), and
# Sandgate's default ingress "direct" (container addresses, no proxy; the
# server-proxy path is then forwarded by the control plane itself). Each
# has its own control plane (scripts/compat.sh). *.sandbox.localhost does not
# resolve here, so wildcard requests connect to the proxy's address and send
# the endpoint's host name as Host, as DNS would route them.
from __future__ import annotations

import re
import time
from types import SimpleNamespace

from harness import (
    API_KEY,
    APP_BODY,
    APP_ENTRYPOINT,
    APP_PORT,
    EXECD_PORT,
    IMAGE,
    RUN_ID,
    RUN_KEY,
    Stack,
    Suite,
    api_error,
    b36,
    body_is,
    check,
    env,
    eq,
    fetch,
    get,
    raises,
)
from opensandbox.config.connection_sync import ConnectionConfigSync
from opensandbox.sync.sandbox import SandboxSync

header = Stack.from_env("header")
wildcard = Stack.from_env("wildcard")
direct = Stack(domain=env("COMPAT_DIRECT_DOMAIN"), gateway="")
WILDCARD_PORT = wildcard.gateway.rsplit(":", 1)[1]
suite = Suite("route-modes")
s = SimpleNamespace()
META = {RUN_KEY: RUN_ID, "suite": "route-modes"}


def config(stack: Stack, use_server_proxy: bool = False) -> ConnectionConfigSync:
    return ConnectionConfigSync(domain=stack.domain, api_key=API_KEY, use_server_proxy=use_server_proxy)


def via_wildcard(endpoint: str, path: str = "/"):
    """GET through the wildcard gateway: connect to the proxy, Host = endpoint."""
    return get(f"http://{wildcard.gateway}{path}", host=endpoint)


def header_create() -> None:
    # Readiness only passes if the SDK sends the endpoint's routing header.
    s.header = SandboxSync.create(IMAGE, entrypoint=APP_ENTRYPOINT, metadata=META, connection_config=config(header))
    eq(s.header.is_healthy(), True, "is_healthy() in header mode")


def header_endpoints() -> None:
    sid = s.header.id
    for port in (EXECD_PORT, APP_PORT):
        endpoint = s.header.get_endpoint(port)
        eq(endpoint.endpoint, header.gateway, f"endpoint for {port}")
        eq(endpoint.headers, {"OpenSandbox-Ingress-To": f"{sid}-{port}"}, f"headers for {port}")
    body_is(fetch(s.header.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping with the routing header")
    body_is(fetch(s.header.get_endpoint(APP_PORT)), 200, APP_BODY, "app port with the routing header")
    expires = int(time.time()) + 300
    signed = s.header.get_signed_endpoint(APP_PORT, expires)
    eq(signed.endpoint, header.gateway, "signed endpoint")
    route = signed.headers.get("OpenSandbox-Ingress-To", "")
    prefix = f"{sid}-{APP_PORT}-{b36(expires)}-"
    check(route.startswith(prefix) and len(route) == len(prefix) + 9, f"signed routing header {route!r}")
    body_is(fetch(signed), 200, APP_BODY, "app port with the signed routing header")


def header_server_proxy() -> None:
    proxied = SandboxSync.connect(s.header.id, connection_config=config(header, use_server_proxy=True))
    try:
        endpoint = proxied.get_endpoint(APP_PORT)
        eq(endpoint.endpoint, f"{header.domain}/sandboxes/{s.header.id}/proxy/{APP_PORT}", "server-proxy endpoint")
        body_is(fetch(endpoint), 200, APP_BODY, "app port via the server proxy")
    finally:
        proxied.close()


def header_kill() -> None:
    s.header.kill()
    s.header.close()


def wildcard_ready(sandbox: SandboxSync) -> bool:
    response = via_wildcard(sandbox.get_endpoint(EXECD_PORT).endpoint, "/ping")
    return response.status_code == 200 and response.text == "pong"


def wildcard_create() -> None:
    # The SDK's custom health_check hook: the same /ping, routed by Host.
    s.wild = SandboxSync.create(
        IMAGE, entrypoint=APP_ENTRYPOINT, metadata=META, connection_config=config(wildcard), health_check=wildcard_ready
    )
    eq(s.wild.is_healthy(), True, "is_healthy() in wildcard mode")


def wildcard_endpoints() -> None:
    sid = s.wild.id
    for port in (EXECD_PORT, APP_PORT):
        endpoint = s.wild.get_endpoint(port)
        eq(endpoint.endpoint, f"{sid}-{port}.sandbox.localhost:{WILDCARD_PORT}", f"endpoint for {port}")
        eq(endpoint.headers, {}, f"headers for {port}")
    body_is(via_wildcard(s.wild.get_endpoint(APP_PORT).endpoint), 200, APP_BODY, "app port by host name")
    expires = int(time.time()) + 300
    signed = s.wild.get_signed_endpoint(APP_PORT, expires).endpoint
    prefix = f"{sid}-{APP_PORT}-{b36(expires)}-"
    suffix = f".sandbox.localhost:{WILDCARD_PORT}"
    check(
        signed.startswith(prefix) and signed.endswith(suffix) and len(signed) == len(prefix) + 9 + len(suffix),
        f"signed endpoint {signed!r}",
    )
    body_is(via_wildcard(signed), 200, APP_BODY, "app port by signed host name")


def wildcard_kill() -> None:
    s.wild.kill()
    s.wild.close()


def direct_mode() -> None:
    # Readiness pings execd at the container's own address.
    sandbox = SandboxSync.create(IMAGE, entrypoint=APP_ENTRYPOINT, metadata=META, connection_config=config(direct))
    s.direct = sandbox
    for port in (EXECD_PORT, APP_PORT):
        endpoint = sandbox.get_endpoint(port)
        check(
            re.fullmatch(rf"\d+\.\d+\.\d+\.\d+:{port}", endpoint.endpoint),
            f"container address for {port}: {endpoint.endpoint!r}",
        )
        eq(endpoint.headers, {}, f"headers for {port}")
    body_is(fetch(sandbox.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping at the container address")
    body_is(fetch(sandbox.get_endpoint(APP_PORT)), 200, APP_BODY, "app port at the container address")
    error = raises(lambda: sandbox.get_signed_endpoint(APP_PORT, int(time.time()) + 300), "signed endpoint, direct")
    api_error(error, 400, "SANDBOX::INVALID_PARAMETER", "signed endpoint without a gateway")
    sandbox.kill()
    sandbox.close()


def server_proxy_alone() -> None:
    # No edge proxy behind this control plane: readiness, execd and the app
    # port all go through /sandboxes/{id}/proxy/{port}, forwarded by it.
    proxied = config(direct, use_server_proxy=True)
    meta = {**META, "role": "server-proxy-alone"}
    sandbox = SandboxSync.create(IMAGE, entrypoint=APP_ENTRYPOINT, metadata=meta, connection_config=proxied)
    s.alone = sandbox
    eq(sandbox.is_healthy(), True, "is_healthy() through the control plane")
    for port in (EXECD_PORT, APP_PORT):
        endpoint = sandbox.get_endpoint(port)
        eq(endpoint.endpoint, f"{direct.domain}/sandboxes/{sandbox.id}/proxy/{port}", f"server-proxy endpoint for {port}")
    body_is(fetch(sandbox.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping forwarded by the control plane")
    body_is(fetch(sandbox.get_endpoint(APP_PORT)), 200, APP_BODY, "app port forwarded by the control plane")
    sandbox.kill()
    sandbox.close()


def kill_leftovers() -> None:
    for name in ("header", "wild", "direct", "alone"):
        sandbox = getattr(s, name, None)
        if sandbox is not None:
            try:
                sandbox.kill()
            except Exception:  # noqa: BLE001 - already killed by its step
                pass


suite.on_exit(kill_leftovers)
suite.step("header mode: SandboxSync.create, readiness with OpenSandbox-Ingress-To", header_create)
suite.step("header mode: endpoints and signed endpoint, fetched with their headers", header_endpoints)
suite.step("header mode: use_server_proxy endpoint, fetched", header_server_proxy)
suite.step("header mode: kill", header_kill)
suite.step("wildcard mode: SandboxSync.create with a Host-routed health_check", wildcard_create)
suite.step("wildcard mode: <id>-<port>.<domain> endpoints and signed endpoint, fetched", wildcard_endpoints)
suite.step("wildcard mode: kill", wildcard_kill)
suite.step("direct ingress: create, container-address endpoints fetched, no signed routes, kill", direct_mode)
suite.step("control plane alone (no edge proxy): create with use_server_proxy, endpoints fetched, kill", server_proxy_alone)
suite.finish()
