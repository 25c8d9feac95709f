# Compatibility suite for the published Python SDK's blocking API
# (opensandbox.sync: SandboxSync, SandboxManagerSync) against a Sandgate stack
# in gateway/uri mode. Configured the documented way: OPEN_SANDBOX_DOMAIN and
# OPEN_SANDBOX_API_KEY. Run by scripts/compat.sh; every step asserts on what
# the SDK returns.
from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

from harness import (
    APP_BODY,
    APP_ENTRYPOINT,
    APP_PORT,
    EGRESS_PORT,
    EXECD_PORT,
    IMAGE,
    RUN_ID,
    RUN_KEY,
    UUID,
    Stack,
    Suite,
    api_error,
    b36,
    body_is,
    check,
    eq,
    eventually,
    expires_in,
    fetch,
    near,
    now,
    raises,
)
from opensandbox.config.connection_sync import ConnectionConfigSync
from opensandbox.exceptions import SandboxReadyTimeoutException
from opensandbox.models.sandboxes import SandboxFilter
from opensandbox.sync.manager import SandboxManagerSync
from opensandbox.sync.sandbox import SandboxSync

stack = Stack.from_env("uri")
suite = Suite("python-sync")
s = SimpleNamespace()
META = {RUN_KEY: RUN_ID, "suite": "python-sync"}
MAIN_META = {**META, "role": "main"}
BATCH_META = {**META, "role": "batch"}
# Serves the app port and publishes $COMPAT as /env, so the env reaching the
# sandbox is checked through the gateway.
MAIN_ENV = {"COMPAT": "from-python-sdk"}
MAIN_ENTRYPOINT = ["sh", "-c", f'printf %s "$COMPAT" >/www/env && exec {" ".join(APP_ENTRYPOINT)}']


def config(use_server_proxy: bool = False) -> ConnectionConfigSync:
    # domain and api_key come from OPEN_SANDBOX_DOMAIN / OPEN_SANDBOX_API_KEY
    return ConnectionConfigSync(use_server_proxy=use_server_proxy)


def kill_all() -> None:
    manager = SandboxManagerSync.create(config())
    try:
        page = manager.list_sandbox_infos(SandboxFilter(metadata=META, page_size=200))
        for info in page.sandbox_infos:
            manager.kill_sandbox(info.id)
    finally:
        manager.close()


def create_main() -> None:
    before = now()
    s.sandbox = SandboxSync.create(
        IMAGE,
        entrypoint=MAIN_ENTRYPOINT,
        metadata=MAIN_META,
        env=MAIN_ENV,
        resource={"cpu": "500m", "memory": "128Mi"},
        timeout=timedelta(minutes=10),
        connection_config=config(),
    )
    s.created_window = (before, now())
    check(UUID.match(s.sandbox.id), f"sandbox id {s.sandbox.id!r} is a UUID")
    # create() returned, so the SDK's readiness probe (execd GET /ping through
    # the endpoint it resolved for port 44772) passed; probe once more.
    eq(s.sandbox.is_healthy(), True, "is_healthy() after create")


def get_info() -> None:
    info = s.sandbox.get_info()
    eq(info.id, s.sandbox.id, "id")
    eq(info.status.state, "Running", "status.state")
    eq(info.entrypoint, MAIN_ENTRYPOINT, "entrypoint")
    eq(info.image.image if info.image else None, IMAGE, "image")
    eq(info.metadata, MAIN_META, "metadata")
    start, end = s.created_window
    check(
        start - timedelta(seconds=2) <= info.created_at <= end + timedelta(seconds=2),
        f"createdAt {info.created_at} within the create call",
    )
    near(info.expires_at, info.created_at + timedelta(minutes=10), "expiresAt = createdAt + 10 min", 2)
    check(info.status.last_transition_at is not None, "status.lastTransitionAt is set")
    s.expires_at = info.expires_at


def connect() -> None:
    other = SandboxSync.connect(s.sandbox.id, connection_config=config())
    try:
        eq(other.id, s.sandbox.id, "connected id")
        eq(other.is_healthy(), True, "is_healthy() of the connected sandbox")
        eq(other.get_info().metadata, MAIN_META, "metadata seen through the connection")
    finally:
        other.close()


def endpoints_gateway() -> None:
    sid = s.sandbox.id
    for port in (EXECD_PORT, EGRESS_PORT, APP_PORT):
        endpoint = s.sandbox.get_endpoint(port)
        eq(endpoint.endpoint, f"{stack.gateway}/{sid}/{port}", f"endpoint for port {port}")
        eq(endpoint.headers, {}, f"headers for port {port}")
    body_is(fetch(s.sandbox.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping via the gateway")
    body_is(fetch(s.sandbox.get_endpoint(APP_PORT)), 200, APP_BODY, "app port via the gateway")
    body_is(fetch(s.sandbox.get_endpoint(APP_PORT), "/env"), 200, MAIN_ENV["COMPAT"], "the sandbox's env")
    # No egress sidecar on Docker: the endpoint exists, nothing listens there.
    egress = fetch(s.sandbox.get_endpoint(EGRESS_PORT))
    eq(egress.status_code, 502, "egress port (nothing listening) via the gateway")
    eq(egress.json().get("code"), "PROXY::PORT_NOT_LISTENING", "egress port error code")


def endpoints_server_proxy() -> None:
    sid = s.sandbox.id
    proxied = SandboxSync.connect(sid, connection_config=config(use_server_proxy=True))
    try:
        eq(proxied.is_healthy(), True, "is_healthy() through the server proxy")
        for port in (EXECD_PORT, EGRESS_PORT, APP_PORT):
            endpoint = proxied.get_endpoint(port)
            eq(endpoint.endpoint, f"{stack.domain}/sandboxes/{sid}/proxy/{port}", f"server-proxy endpoint for {port}")
        body_is(fetch(proxied.get_endpoint(EXECD_PORT), "/ping"), 200, "pong", "execd /ping via the server proxy")
        body_is(fetch(proxied.get_endpoint(APP_PORT)), 200, APP_BODY, "app port via the server proxy")
    finally:
        proxied.close()


def secure_access_and_signed() -> None:
    # secure_access=True: readiness only passes if the SDK sends the
    # endpoint's OpenSandbox-Secure-Access header to execd.
    secure = SandboxSync.create(
        IMAGE,
        entrypoint=APP_ENTRYPOINT,
        metadata={**META, "role": "secure"},
        secure_access=True,
        connection_config=config(),
    )
    try:
        sid = secure.id
        plain = secure.get_endpoint(APP_PORT)
        eq(plain.endpoint, f"{stack.gateway}/{sid}/{APP_PORT}", "unsigned endpoint")
        token = plain.headers.get("OpenSandbox-Secure-Access", "")
        check(len(token) >= 32, f"unsigned endpoint carries an OpenSandbox-Secure-Access token: {plain.headers}")
        body_is(fetch(plain), 200, APP_BODY, "app port with the secure-access header")
        eq(fetch(plain, with_headers=False).status_code, 401, "app port without the secure-access header")

        expires = int(time.time()) + 300
        signed = secure.get_signed_endpoint(APP_PORT, expires)
        prefix = f"{stack.gateway}/{sid}/{APP_PORT}/{b36(expires)}/"
        check(signed.endpoint.startswith(prefix), f"signed endpoint {signed.endpoint!r} starts with {prefix!r}")
        eq(len(signed.endpoint[len(prefix) :]), 9, "signature length (8 hex + key id)")
        eq(signed.headers, {}, "signed endpoint headers")
        body_is(fetch(signed), 200, APP_BODY, "app port through the signed route, no header")

        proxied = SandboxSync.connect(sid, connection_config=config(use_server_proxy=True))
        try:
            error = raises(lambda: proxied.get_signed_endpoint(APP_PORT, expires), "signed + use_server_proxy")
            api_error(error, 400, "SANDBOX::INVALID_PARAMETER", "signed + use_server_proxy")
        finally:
            proxied.close()
    finally:
        secure.kill()
        secure.close()


def diagnostics() -> None:
    logs = s.sandbox.get_diagnostic_logs("container")
    eq(
        (logs.sandbox_id, logs.kind, logs.scope, logs.delivery),
        (s.sandbox.id, "logs", "container", "inline"),
        "logs descriptor",
    )
    # the test bootstrap announces execd on the container's stderr
    check("starting test execd" in (logs.content or ""), f"container output in the logs: {logs.content!r}")
    events = s.sandbox.get_diagnostic_events("lifecycle")
    eq((events.kind, events.scope), ("events", "lifecycle"), "events descriptor")
    check("Running" in (events.content or ""), f"the Running transition in the events: {events.content!r}")


def renew() -> None:
    target = expires_in(30)
    response = s.sandbox.renew(timedelta(minutes=30))
    near(response.expires_at, target, "renew response expiresAt")
    check(response.expires_at > s.expires_at, "renewal moved expiresAt later")
    near(s.sandbox.get_info().expires_at, response.expires_at, "expiresAt after renew", 0.001)


def patch_metadata() -> None:
    info = s.sandbox.patch_metadata({"role": None, "patched": "yes"})
    expected = {**META, "patched": "yes"}
    eq(info.metadata, expected, "metadata returned by patch")
    eq(s.sandbox.get_info().metadata, expected, "metadata after patch")


def pause() -> None:
    app = s.sandbox.get_endpoint(APP_PORT)
    s.sandbox.pause()
    eventually(lambda: s.sandbox.get_info().status.state == "Paused", "state becomes Paused")
    response = eventually(lambda: (r := fetch(app)).status_code == 503 and r, "gateway answers 503 while paused")
    check("paused" in response.text.lower(), f"503 body says paused: {response.text!r}")
    eq(s.sandbox.is_healthy(), False, "is_healthy() while paused")


def resume() -> None:
    # SandboxSync.resume: POST resume, re-resolve endpoints, wait for /ping.
    resumed = SandboxSync.resume(s.sandbox.id, connection_config=config())
    try:
        eq(resumed.get_info().status.state, "Running", "state after resume")
        body_is(fetch(resumed.get_endpoint(APP_PORT)), 200, APP_BODY, "app port after resume")
    finally:
        resumed.close()


def manager_list() -> None:
    s.manager = SandboxManagerSync.create(config())
    s.batch = []
    for index in range(3):
        sandbox = SandboxSync.create(IMAGE, metadata={**BATCH_META, "index": str(index)}, connection_config=config())
        s.batch.append(sandbox.id)
        sandbox.close()
    first = s.manager.list_sandbox_infos(SandboxFilter(metadata=BATCH_META, page=1, page_size=2))
    eq(len(first.sandbox_infos), 2, "page 1 size")
    p = first.pagination
    eq((p.page, p.page_size, p.total_items, p.total_pages, p.has_next_page), (1, 2, 3, 2, True), "page 1 pagination")
    second = s.manager.list_sandbox_infos(SandboxFilter(metadata=BATCH_META, page=2, page_size=2))
    eq(len(second.sandbox_infos), 1, "page 2 size")
    p = second.pagination
    eq((p.page, p.total_items, p.total_pages, p.has_next_page), (2, 3, 2, False), "page 2 pagination")
    listed = [info.id for info in first.sandbox_infos + second.sandbox_infos]
    eq(listed, list(reversed(s.batch)), "both pages together, newest first")
    only = s.manager.list_sandbox_infos(SandboxFilter(metadata={**BATCH_META, "index": "1"}))
    eq([info.id for info in only.sandbox_infos], [s.batch[1]], "filter on two metadata keys")
    eq(only.sandbox_infos[0].metadata, {**BATCH_META, "index": "1"}, "listed metadata")


def manager_states() -> None:
    paused = s.batch[0]
    s.manager.pause_sandbox(paused)
    eventually(lambda: s.manager.get_sandbox_info(paused).status.state == "Paused", "batch[0] becomes Paused")
    by_state = s.manager.list_sandbox_infos(SandboxFilter(states=["Paused"], metadata=BATCH_META))
    eq([i.id for i in by_state.sandbox_infos], [paused], "states=[Paused]")
    # The SDK's docs write states in upper case; matching is case-insensitive.
    running = s.manager.list_sandbox_infos(SandboxFilter(states=["RUNNING"], metadata=BATCH_META))
    eq(sorted(i.id for i in running.sandbox_infos), sorted(s.batch[1:]), "states=[RUNNING]")
    both = s.manager.list_sandbox_infos(SandboxFilter(states=["Running", "Paused"], metadata=BATCH_META))
    eq(both.pagination.total_items, 3, "states=[Running, Paused]")
    s.manager.resume_sandbox(paused)
    eventually(lambda: s.manager.get_sandbox_info(paused).status.state == "Running", "batch[0] Running again")


def manager_mutations() -> None:
    sid = s.batch[1]
    info = s.manager.patch_sandbox_metadata(sid, {"index": None, "by": "manager"})
    eq(info.metadata, {**BATCH_META, "by": "manager"}, "manager patch metadata")
    target = expires_in(45)
    response = s.manager.renew_sandbox(sid, timedelta(minutes=45))
    near(response.expires_at, target, "manager renew expiresAt")
    near(s.manager.get_sandbox_info(sid).expires_at, response.expires_at, "expiresAt after manager renew", 0.001)
    error = raises(lambda: s.manager.get_sandbox_info("00000000-0000-4000-8000-000000000000"), "unknown id")
    api_error(error, 404, "DOCKER::SANDBOX_NOT_FOUND", "get of an unknown id")
    paused = s.batch[2]
    s.manager.pause_sandbox(paused)
    eventually(lambda: s.manager.get_sandbox_info(paused).status.state == "Paused", "batch[2] becomes Paused")
    error = raises(lambda: s.manager.pause_sandbox(paused), "pause twice")
    api_error(error, 409, "DOCKER::SANDBOX_NOT_RUNNING", "pausing a paused sandbox")


def manager_kill() -> None:
    for sid in s.batch:
        s.manager.kill_sandbox(sid)
    left = s.manager.list_sandbox_infos(SandboxFilter(metadata=BATCH_META))
    eq((left.sandbox_infos, left.pagination.total_items), ([], 0), "batch list after kill")
    s.manager.close()


def errors() -> None:
    wrong = SandboxManagerSync.create(ConnectionConfigSync(api_key="not-the-key"))
    try:
        error = raises(lambda: wrong.list_sandbox_infos(SandboxFilter()), "list with a wrong API key")
        api_error(error, 401, "INVALID_API_KEY", "list with a wrong API key")
    finally:
        wrong.close()
    # Deliberate deviation (README, Migrating): OpenSandbox answers 422, which
    # the SDK reports as a bare "HTTP 422"; Sandgate's 400 envelope reaches it.
    error = raises(
        lambda: SandboxSync.create(IMAGE, timeout=timedelta(seconds=10), connection_config=config()),
        "create with timeout=10s",
    )
    api_error(error, 400, "SANDBOX::INVALID_PARAMETER", "create with timeout=10s")
    check("timeout" in error.error.message, f"the message names the field: {error.error.message!r}")


def readiness_timeout() -> None:
    # When readiness fails, the SDK kills the sandbox it created: here while
    # Sandgate is still creating its container. (The runner's final check
    # fails if any container of the run is left in Docker.)
    meta = {**META, "role": "zombie"}
    for millis in (10, 30, 60):
        error = raises(
            lambda millis=millis: SandboxSync.create(
                IMAGE, metadata=meta, ready_timeout=timedelta(milliseconds=millis), connection_config=config()
            ),
            f"create with ready_timeout={millis}ms",
        )
        check(isinstance(error, SandboxReadyTimeoutException), f"ready_timeout={millis}ms raises {error!r}")
    manager = SandboxManagerSync.create(config())
    try:
        left = manager.list_sandbox_infos(SandboxFilter(metadata=meta))
        eq(left.pagination.total_items, 0, "sandboxes left after the SDK's own cleanup")
    finally:
        manager.close()


def kill() -> None:
    app = s.sandbox.get_endpoint(APP_PORT)
    s.sandbox.kill()
    api_error(raises(s.sandbox.get_info, "get after kill"), 404, "DOCKER::SANDBOX_NOT_FOUND", "get after kill")
    gone = eventually(lambda: (r := fetch(app)).status_code in (404, 410) and r, "gateway forgets the sandbox")
    check(gone.status_code in (404, 410), "gateway answers 404/410 after kill")
    s.sandbox.close()
    left = SandboxManagerSync.create(config())
    try:
        eq(left.list_sandbox_infos(SandboxFilter(metadata=META)).pagination.total_items, 0, "sandboxes left")
    finally:
        left.close()


suite.on_exit(kill_all)
suite.step("create with SandboxSync.create (readiness /ping through the gateway)", create_main)
suite.step("get_info: Running, image, entrypoint, metadata, createdAt, expiresAt", get_info)
suite.step("SandboxSync.connect to the existing sandbox", connect)
suite.step("endpoints 44772/18080/8000 in uri form, fetched through the gateway", endpoints_gateway)
suite.step("endpoints with use_server_proxy, fetched through the control plane", endpoints_server_proxy)
suite.step("secure_access sandbox: header endpoint, 401 without it, signed endpoint", secure_access_and_signed)
suite.step("diagnostics: get_diagnostic_logs(container), get_diagnostic_events(lifecycle)", diagnostics)
suite.step("renew(30 min) returns and stores the new expiresAt", renew)
suite.step("patch_metadata: delete one key, add one", patch_metadata)
suite.step("pause: state Paused, gateway 503, is_healthy False", pause)
suite.step("SandboxSync.resume: Running again, app reachable", resume)
suite.step("SandboxManagerSync list: metadata filter, page/pageSize over 2 pages", manager_list)
suite.step("SandboxManagerSync: pause/resume and state filters", manager_states)
suite.step("SandboxManagerSync: patch, renew, 404 and 409 errors", manager_mutations)
suite.step("SandboxManagerSync.kill_sandbox on the batch", manager_kill)
suite.step("errors: 401 INVALID_API_KEY, 400 naming the field for timeout=10s", errors)
suite.step("readiness timeout: the SDK kills the half-created sandbox, nothing is left", readiness_timeout)
suite.step("kill: 404 from get_info, gateway forgets it, nothing left", kill)
suite.finish()
