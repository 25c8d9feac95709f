// Compatibility suite for the published JS SDK (@alibaba-group/opensandbox:
// Sandbox, SandboxManager) against a Sandgate stack in gateway/uri mode. Run by
// scripts/compat.sh from a fresh npm project; every step asserts on what the
// SDK returns.
import assert from "node:assert/strict";
import { Sandbox, SandboxManager } from "@alibaba-group/opensandbox";
import {
  API_KEY, APP_BODY, APP_ENTRYPOINT, APP_PORT, DIRECT_DOMAIN, DOMAIN, EGRESS_PORT, EXECD_PORT, GATEWAY, IMAGE, RUN_ID, RUN_KEY, UUID,
  Suite, b36, bodyIs, eventually, fetchEndpoint, near, rejectsWith,
} from "./harness.mjs";

const suite = new Suite("js");
const connection = { domain: DOMAIN, apiKey: API_KEY };
const proxied = { ...connection, useServerProxy: true };
const META = { [RUN_KEY]: RUN_ID, suite: "js" };
const BATCH_META = { ...META, role: "batch" };
const s = {};

const manager = SandboxManager.create({ connectionConfig: connection });
suite.onExit(async () => {
  const left = await manager.listSandboxInfos({ metadata: META, pageSize: 200 });
  for (const info of left.items) await manager.killSandbox(info.id);
  await manager.close();
});

await suite.step("create with Sandbox.create (readiness /ping through the gateway)", async () => {
  const before = Date.now();
  s.sandbox = await Sandbox.create({
    connectionConfig: connection,
    image: IMAGE,
    entrypoint: APP_ENTRYPOINT,
    metadata: { ...META, role: "main" },
    env: { COMPAT: "1" },
    resource: { cpu: "500m", memory: "128Mi" },
    timeoutSeconds: 600,
  });
  s.window = [before, Date.now()];
  assert.match(s.sandbox.id, UUID, "sandbox id");
  assert.equal(await s.sandbox.isHealthy(), true, "isHealthy() after create");
});

await suite.step("getInfo: Running, image, entrypoint, metadata, createdAt, expiresAt", async () => {
  const info = await s.sandbox.getInfo();
  assert.equal(info.id, s.sandbox.id, "id");
  assert.equal(info.status.state, "Running", "status.state");
  assert.deepEqual(info.image, { uri: IMAGE }, "image");
  assert.deepEqual(info.entrypoint, APP_ENTRYPOINT, "entrypoint");
  assert.deepEqual(info.metadata, { ...META, role: "main" }, "metadata");
  assert.ok(info.createdAt instanceof Date, "createdAt is a Date");
  assert.ok(info.createdAt.getTime() >= s.window[0] - 2000 && info.createdAt.getTime() <= s.window[1] + 2000,
    `createdAt ${info.createdAt.toISOString()} within the create call`);
  near(info.expiresAt, info.createdAt.getTime() + 600_000, "expiresAt = createdAt + 600 s", 2000);
  s.expiresAt = info.expiresAt;
});

await suite.step("Sandbox.connect to the existing sandbox", async () => {
  const other = await Sandbox.connect({ sandboxId: s.sandbox.id, connectionConfig: connection });
  try {
    assert.equal(other.id, s.sandbox.id, "connected id");
    assert.equal(await other.isHealthy(), true, "isHealthy() of the connected sandbox");
  } finally {
    await other.close();
  }
});

await suite.step("endpoints 44772/18080/8000 in uri form, fetched through the gateway", async () => {
  for (const port of [EXECD_PORT, EGRESS_PORT, APP_PORT]) {
    const endpoint = await s.sandbox.getEndpoint(port);
    assert.equal(endpoint.endpoint, `${GATEWAY}/${s.sandbox.id}/${port}`, `endpoint for ${port}`);
    assert.deepEqual(endpoint.headers ?? {}, {}, `headers for ${port}`);
  }
  await bodyIs(await s.sandbox.getEndpoint(EXECD_PORT), "/ping", 200, "pong", "execd /ping via the gateway");
  await bodyIs(await s.sandbox.getEndpoint(APP_PORT), "/", 200, APP_BODY, "app port via the gateway");
  assert.equal(await s.sandbox.getEndpointUrl(APP_PORT), `http://${GATEWAY}/${s.sandbox.id}/${APP_PORT}`, "getEndpointUrl");
});

await suite.step("endpoints with useServerProxy, fetched through the control plane", async () => {
  const viaServer = await Sandbox.connect({ sandboxId: s.sandbox.id, connectionConfig: proxied });
  try {
    assert.equal(await viaServer.isHealthy(), true, "isHealthy() through the server proxy");
    for (const port of [EXECD_PORT, EGRESS_PORT, APP_PORT]) {
      const endpoint = await viaServer.getEndpoint(port);
      assert.equal(endpoint.endpoint, `${DOMAIN}/sandboxes/${s.sandbox.id}/proxy/${port}`, `server-proxy endpoint for ${port}`);
    }
    await bodyIs(await viaServer.getEndpoint(EXECD_PORT), "/ping", 200, "pong", "execd /ping via the server proxy");
    await bodyIs(await viaServer.getEndpoint(APP_PORT), "/", 200, APP_BODY, "app port via the server proxy");
  } finally {
    await viaServer.close();
  }
});

await suite.step("control plane alone (no edge proxy): Sandbox.create with useServerProxy, endpoints fetched, kill", async () => {
  const alone = { domain: DIRECT_DOMAIN, apiKey: API_KEY, useServerProxy: true };
  const sandbox = await Sandbox.create({
    connectionConfig: alone, image: IMAGE, entrypoint: APP_ENTRYPOINT,
    metadata: { ...META, role: "server-proxy-alone" }, timeoutSeconds: 600,
  });
  try {
    assert.equal(await sandbox.isHealthy(), true, "isHealthy() through the control plane");
    const endpoint = await sandbox.getEndpoint(APP_PORT);
    assert.equal(endpoint.endpoint, `${DIRECT_DOMAIN}/sandboxes/${sandbox.id}/proxy/${APP_PORT}`, "server-proxy endpoint");
    await bodyIs(endpoint, "/", 200, APP_BODY, "app port forwarded by the control plane");
    await bodyIs(await sandbox.getEndpoint(EXECD_PORT), "/ping", 200, "pong", "execd /ping forwarded by the control plane");
  } finally {
    await sandbox.kill();
    await sandbox.close();
  }
});

await suite.step("secureAccess sandbox: header endpoint, 401 without it, signed endpoint", async () => {
  const secure = await Sandbox.create({
    connectionConfig: connection, image: IMAGE, entrypoint: APP_ENTRYPOINT,
    metadata: { ...META, role: "secure" }, secureAccess: true,
  });
  try {
    const plain = await secure.getEndpoint(APP_PORT);
    assert.equal(plain.endpoint, `${GATEWAY}/${secure.id}/${APP_PORT}`, "unsigned endpoint");
    assert.ok((plain.headers?.["OpenSandbox-Secure-Access"] ?? "").length >= 32, `secure-access header: ${JSON.stringify(plain.headers)}`);
    await bodyIs(plain, "/", 200, APP_BODY, "app port with the secure-access header");
    assert.equal((await fetchEndpoint(plain, "/", false)).status, 401, "app port without the secure-access header");
    const expires = Math.floor(Date.now() / 1000) + 300;
    const signed = await secure.getSignedEndpoint(APP_PORT, expires);
    const prefix = `${GATEWAY}/${secure.id}/${APP_PORT}/${b36(expires)}/`;
    assert.ok(signed.endpoint.startsWith(prefix), `signed endpoint ${signed.endpoint} starts with ${prefix}`);
    assert.equal(signed.endpoint.length - prefix.length, 9, "signature length (8 hex + key id)");
    await bodyIs(signed, "/", 200, APP_BODY, "app port through the signed route");
  } finally {
    await secure.kill();
    await secure.close();
  }
});

await suite.step("renew(1800) returns and stores the new expiresAt", async () => {
  const target = Date.now() + 1_800_000;
  const response = await s.sandbox.renew(1800);
  near(response.expiresAt, target, "renew response expiresAt");
  assert.ok(response.expiresAt > s.expiresAt, "renewal moved expiresAt later");
  near((await s.sandbox.getInfo()).expiresAt, response.expiresAt, "expiresAt after renew", 1);
});

await suite.step("patchMetadata: delete one key, add one", async () => {
  const info = await s.sandbox.patchMetadata({ role: null, patched: "yes" });
  assert.deepEqual(info.metadata, { ...META, patched: "yes" }, "metadata returned by patch");
  assert.deepEqual((await s.sandbox.getInfo()).metadata, { ...META, patched: "yes" }, "metadata after patch");
});

await suite.step("pause: state Paused, gateway 503, isHealthy false", async () => {
  const app = await s.sandbox.getEndpoint(APP_PORT);
  await s.sandbox.pause();
  await eventually(async () => (await s.sandbox.getInfo()).status.state === "Paused", "state becomes Paused");
  const got = await eventually(async () => {
    const r = await fetchEndpoint(app);
    return r.status === 503 && r;
  }, "gateway answers 503 while paused");
  assert.match(got.text, /paused/i, "503 body says paused");
  assert.equal(await s.sandbox.isHealthy(), false, "isHealthy() while paused");
});

await suite.step("resume(): a fresh Sandbox, Running, app reachable", async () => {
  // The returned Sandbox shares the old one's connection (closing either
  // closes both), so it replaces it.
  const resumed = await s.sandbox.resume();
  assert.equal(resumed.id, s.sandbox.id, "resumed id");
  s.sandbox = resumed;
  assert.equal((await resumed.getInfo()).status.state, "Running", "state after resume");
  await bodyIs(await resumed.getEndpoint(APP_PORT), "/", 200, APP_BODY, "app port after resume");
});

await suite.step("SandboxManager list: metadata filter, page/pageSize over 2 pages", async () => {
  s.batch = [];
  for (const index of [0, 1, 2]) {
    // index 2 without a timeout: manual cleanup (the SDK omits `timeout`)
    const timeoutSeconds = index === 2 ? null : 600;
    const sandbox = await Sandbox.create({
      connectionConfig: connection, image: IMAGE, metadata: { ...BATCH_META, index: String(index) }, timeoutSeconds,
    });
    s.batch.push(sandbox.id);
    await sandbox.close();
  }
  const first = await manager.listSandboxInfos({ metadata: BATCH_META, page: 1, pageSize: 2 });
  assert.equal(first.items.length, 2, "page 1 size");
  assert.deepEqual(first.pagination, { page: 1, pageSize: 2, totalItems: 3, totalPages: 2, hasNextPage: true }, "page 1 pagination");
  const second = await manager.listSandboxInfos({ metadata: BATCH_META, page: 2, pageSize: 2 });
  assert.equal(second.items.length, 1, "page 2 size");
  assert.deepEqual(second.pagination, { page: 2, pageSize: 2, totalItems: 3, totalPages: 2, hasNextPage: false }, "page 2 pagination");
  const listed = [...first.items, ...second.items].map((info) => info.id);
  assert.deepEqual(listed, [...s.batch].reverse(), "both pages together, newest first");
  const manual = first.items.find((info) => info.id === s.batch[2]);
  assert.equal(manual.expiresAt, null, "manual-cleanup sandbox has no expiresAt");
  const one = await manager.listSandboxInfos({ metadata: { ...BATCH_META, index: "1" } });
  assert.deepEqual(one.items.map((info) => info.id), [s.batch[1]], "filter on two metadata keys");
});

await suite.step("SandboxManager: pause/resume and state filters", async () => {
  const [paused] = s.batch;
  await manager.pauseSandbox(paused);
  await eventually(async () => (await manager.getSandboxInfo(paused)).status.state === "Paused", "batch[0] becomes Paused");
  const byState = await manager.listSandboxInfos({ states: ["Paused"], metadata: BATCH_META });
  assert.deepEqual(byState.items.map((info) => info.id), [paused], "states=[Paused]");
  const running = await manager.listSandboxInfos({ states: ["running"], metadata: BATCH_META });
  assert.deepEqual(running.items.map((info) => info.id).sort(), s.batch.slice(1).sort(), "states=[running]");
  await manager.resumeSandbox(paused);
  await eventually(async () => (await manager.getSandboxInfo(paused)).status.state === "Running", "batch[0] Running again");
});

await suite.step("SandboxManager: patch, renew, 404 for an unknown id", async () => {
  const id = s.batch[1];
  const info = await manager.patchSandboxMetadata(id, { index: null, by: "manager" });
  assert.deepEqual(info.metadata, { ...BATCH_META, by: "manager" }, "manager patch metadata");
  const target = Date.now() + 2_700_000;
  await manager.renewSandbox(id, 2700);
  near((await manager.getSandboxInfo(id)).expiresAt, target, "expiresAt after manager renew");
  await rejectsWith(manager.getSandboxInfo("00000000-0000-4000-8000-000000000000"), 404, "DOCKER::SANDBOX_NOT_FOUND", "unknown id");
});

await suite.step("SandboxManager.killSandbox on the batch", async () => {
  for (const id of s.batch) await manager.killSandbox(id);
  const left = await manager.listSandboxInfos({ metadata: BATCH_META });
  assert.deepEqual([left.items, left.pagination.totalItems], [[], 0], "batch list after kill");
});

await suite.step("kill: 404 from getInfo, gateway forgets it, nothing left", async () => {
  const app = await s.sandbox.getEndpoint(APP_PORT);
  await s.sandbox.kill();
  await rejectsWith(s.sandbox.getInfo(), 404, "DOCKER::SANDBOX_NOT_FOUND", "getInfo after kill");
  await eventually(async () => [404, 410].includes((await fetchEndpoint(app)).status), "gateway answers 404/410");
  await s.sandbox.close();
  const left = await manager.listSandboxInfos({ metadata: META });
  assert.equal(left.pagination.totalItems, 0, "sandboxes left");
});

await suite.finish();
