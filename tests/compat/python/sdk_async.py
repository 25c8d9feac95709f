# Compatibility suite for the published Python SDK's asyncio API
# (opensandbox.Sandbox, opensandbox.SandboxManager, ConnectionConfig with an
# explicit domain and API key) against a Sandgate stack in gateway/uri mode.
# Run by scripts/compat.sh; every step asserts on what the SDK returns.
from __future__ import annotations

import asyncio
from datetime import timedelta
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
    body_is,
    check,
    eq,
    expires_in,
    fetch,
    near,
)
from opensandbox import Sandbox, SandboxManager
from opensandbox.config import ConnectionConfig
from opensandbox.models.sandboxes import SandboxFilter

stack = Stack.from_env("uri")
suite = Suite("python-async")
s = SimpleNamespace()
META = {RUN_KEY: RUN_ID, "suite": "python-async"}
loop = asyncio.new_event_loop()


def run(coroutine):
    return loop.run_until_complete(coroutine)


async def araises(awaitable, what: str) -> BaseException:
    try:
        result = await awaitable
    except Exception as error:  # noqa: BLE001 - the caller inspects it
        return error
    raise AssertionError(f"{what}: expected an error, got {result!r}")


def config(use_server_proxy: bool = False) -> ConnectionConfig:
    return ConnectionConfig(domain=stack.domain, api_key=API_KEY, use_server_proxy=use_server_proxy)


class _manager:
    """`async with _manager() as m`: a SandboxManager that is closed afterwards."""

    async def __aenter__(self) -> SandboxManager:
        self.manager = await SandboxManager.create(config())
        return self.manager

    async def __aexit__(self, *exc: object) -> None:
        await self.manager.close()


async def kill_all() -> None:
    async with _manager() as manager:
        page = await manager.list_sandbox_infos(SandboxFilter(metadata=META, page_size=200))
        for info in page.sandbox_infos:
            await manager.kill_sandbox(info.id)


async def create_two() -> None:
    # Manual cleanup: the SDK sends `"timeout": null` explicitly.
    s.app, s.plain = await asyncio.gather(
        Sandbox.create(
            IMAGE, entrypoint=APP_ENTRYPOINT, timeout=None, metadata={**META, "role": "app"}, connection_config=config()
        ),
        Sandbox.create(IMAGE, metadata={**META, "role": "plain"}, connection_config=config()),
    )
    check(s.app.id != s.plain.id, "two distinct sandboxes")
    eq([await s.app.is_healthy(), await s.plain.is_healthy()], [True, True], "is_healthy() of both")


async def get_info() -> None:
    app, plain = await asyncio.gather(s.app.get_info(), s.plain.get_info())
    eq((app.status.state, plain.status.state), ("Running", "Running"), "states")
    eq(app.expires_at, None, "manual-cleanup sandbox has no expiresAt")
    near(
        plain.expires_at, plain.created_at + timedelta(minutes=10), "default timeout: expiresAt = createdAt + 10 min", 2
    )
    eq(plain.entrypoint, ["tail", "-f", "/dev/null"], "the SDK's default entrypoint")
    eq((app.image.image, plain.image.image), (IMAGE, IMAGE), "images")
    eq(app.metadata, {**META, "role": "app"}, "metadata")


async def endpoints() -> None:
    execd = await s.app.get_endpoint(EXECD_PORT)
    eq(execd.endpoint, f"{stack.gateway}/{s.app.id}/{EXECD_PORT}", "execd endpoint")
    body_is(fetch(execd, "/ping"), 200, "pong", "execd /ping via the gateway")
    body_is(fetch(await s.app.get_endpoint(APP_PORT)), 200, APP_BODY, "app port via the gateway")


async def server_proxy() -> None:
    proxied = await Sandbox.connect(s.app.id, connection_config=config(use_server_proxy=True))
    try:
        eq(await proxied.is_healthy(), True, "is_healthy() through the server proxy")
        endpoint = await proxied.get_endpoint(APP_PORT)
        eq(endpoint.endpoint, f"{stack.domain}/sandboxes/{s.app.id}/proxy/{APP_PORT}", "server-proxy endpoint")
        body_is(fetch(endpoint), 200, APP_BODY, "app port via the server proxy")
        body_is(fetch(await proxied.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping via the server proxy")
    finally:
        await proxied.close()


async def renew() -> None:
    error = await araises(s.app.renew(timedelta(minutes=5)), "renew a manual-cleanup sandbox")
    api_error(error, 409, "DOCKER::INVALID_EXPIRATION", "renew a manual-cleanup sandbox")
    error = await araises(s.plain.renew(timedelta(minutes=-1)), "renew into the past")
    api_error(error, 400, "DOCKER::INVALID_EXPIRATION", "renew into the past")
    target = expires_in(20)
    response = await s.plain.renew(timedelta(minutes=20))
    near(response.expires_at, target, "renew response expiresAt")
    near((await s.plain.get_info()).expires_at, response.expires_at, "expiresAt after renew", 0.001)


async def patch_metadata() -> None:
    info = await s.plain.patch_metadata({"role": "patched", "extra": "1"})
    eq(info.metadata, {**META, "role": "patched", "extra": "1"}, "metadata returned by patch")


async def pause_resume() -> None:
    await s.app.pause()
    info = await _until_state(s.app, "Paused")
    eq(info.status.state, "Paused", "state after pause")
    eq(fetch(await s.app.get_endpoint(APP_PORT)).status_code, 503, "gateway while paused")
    resumed = await Sandbox.resume(s.app.id, connection_config=config())
    try:
        eq((await resumed.get_info()).status.state, "Running", "state after Sandbox.resume")
        body_is(fetch(await resumed.get_endpoint(APP_PORT)), 200, APP_BODY, "app port after resume")
    finally:
        await resumed.close()


async def _until_state(sandbox: Sandbox, state: str, timeout: float = 20.0):
    deadline = loop.time() + timeout
    while True:
        info = await sandbox.get_info()
        if info.status.state == state or loop.time() >= deadline:
            return info
        await asyncio.sleep(0.1)


async def manager_list() -> None:
    async with _manager() as manager:
        first = await manager.list_sandbox_infos(SandboxFilter(metadata=META, states=["running"], page=1, page_size=1))
        p = first.pagination
        eq((p.page, p.page_size, p.total_items, p.total_pages, p.has_next_page), (1, 1, 2, 2, True), "page 1")
        second = await manager.list_sandbox_infos(SandboxFilter(metadata=META, states=["running"], page=2, page_size=1))
        eq(second.pagination.has_next_page, False, "page 2 has no next page")
        # newest first: gather() started both, either may have been stored first
        ids = {first.sandbox_infos[0].id, second.sandbox_infos[0].id}
        eq(ids, {s.app.id, s.plain.id}, "both pages together")
        info = await manager.get_sandbox_info(s.plain.id)
        eq(info.metadata, {**META, "role": "patched", "extra": "1"}, "manager get_sandbox_info metadata")


async def kill() -> None:
    await asyncio.gather(s.app.kill(), s.plain.kill())
    for sandbox in (s.app, s.plain):
        error = await araises(sandbox.get_info(), "get after kill")
        api_error(error, 404, "DOCKER::SANDBOX_NOT_FOUND", "get after kill")
        await sandbox.close()
    async with _manager() as manager:
        left = await manager.list_sandbox_infos(SandboxFilter(metadata=META))
        eq(left.pagination.total_items, 0, "sandboxes left")


suite.on_exit(lambda: run(kill_all()))
suite.step("create two sandboxes concurrently with Sandbox.create (one with timeout=None)", lambda: run(create_two()))
suite.step("get_info: Running, no expiresAt for manual cleanup, default 10 min TTL", lambda: run(get_info()))
suite.step("endpoints in uri form, fetched through the gateway", lambda: run(endpoints()))
suite.step(
    "Sandbox.connect with use_server_proxy: endpoints fetched through the control plane", lambda: run(server_proxy())
)
suite.step("renew: 409 for manual cleanup, 400 for the past, new expiresAt otherwise", lambda: run(renew()))
suite.step("patch_metadata", lambda: run(patch_metadata()))
suite.step("pause, gateway 503, Sandbox.resume", lambda: run(pause_resume()))
suite.step("SandboxManager list: state (lower case) + metadata filter, pageSize 1", lambda: run(manager_list()))
suite.step("kill both concurrently: 404 afterwards, nothing left", lambda: run(kill()))
suite.finish()
