// Shared helpers for the JS SDK compatibility suite (run by scripts/compat.sh):
// the stack's coordinates from the environment, a step runner that prints one
// PASS/FAIL line per step, deadline-bound polling and HTTP fetches through
// endpoints.
import assert from "node:assert/strict";

export const APP_PORT = 8000;
export const EXECD_PORT = 44772;
export const EGRESS_PORT = 18080;
export const APP_BODY = "hello from sandgate-test";
export const APP_ENTRYPOINT = ["httpd", "-f", "-p", String(APP_PORT), "-h", "/www"];
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (run the suite through scripts/compat.sh)`);
    process.exit(2);
  }
  return value;
}

export const DOMAIN = env("COMPAT_URI_DOMAIN");
export const GATEWAY = env("COMPAT_URI_GATEWAY");
// The control plane with direct ingress and no edge proxy.
export const DIRECT_DOMAIN = env("COMPAT_DIRECT_DOMAIN");
export const API_KEY = env("COMPAT_API_KEY");
export const IMAGE = process.env.COMPAT_IMAGE ?? "sandgate-test/busybox:latest";
export const RUN_ID = process.env.COMPAT_RUN_ID ?? "local";
// Every sandbox carries RUN_KEY=RUN_ID (a prefixed key: "/" in the list filter).
export const RUN_KEY = "compat.sandgate.test/run";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `probe` until it returns a truthy value; fails after `timeoutMs`. */
export async function eventually(probe, what, timeoutMs = 20_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const result = await probe();
      if (result) return result;
      last = result;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${what}: not true within ${timeoutMs / 1000}s (last: ${last})`);
    }
    await sleep(intervalMs);
  }
}

/** GET http://<endpoint><path> with the endpoint's headers (no scheme in endpoints). */
export async function fetchEndpoint(endpoint, path = "/", withHeaders = true) {
  assert.ok(!endpoint.endpoint.includes("://"), `endpoint ${endpoint.endpoint} must not carry a scheme`);
  const response = await fetch(`http://${endpoint.endpoint}${path}`, {
    headers: withHeaders ? (endpoint.headers ?? {}) : {},
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: (await response.text()).trim() };
}

export async function bodyIs(endpoint, path, status, text, what) {
  const got = await fetchEndpoint(endpoint, path);
  assert.deepEqual(got, { status, text }, what);
}

/** `promise` rejects with the SDK's SandboxApiException with this status and code. */
export async function rejectsWith(promise, status, code, what) {
  await assert.rejects(promise, (error) => {
    assert.equal(error?.constructor?.name, "SandboxApiException", `${what}: error type (${error})`);
    assert.equal(error.statusCode, status, `${what}: HTTP status`);
    assert.equal(error.error?.code, code, `${what}: error code`);
    return true;
  });
}

/** `actual` (a Date) is within `slackMs` of `expected` (a Date or epoch ms). */
export function near(actual, expected, what, slackMs = 5_000) {
  assert.ok(actual instanceof Date, `${what}: ${actual} is a Date`);
  const delta = Math.abs(actual.getTime() - new Date(expected).getTime());
  assert.ok(delta <= slackMs, `${what}: ${actual.toISOString()} is ${delta} ms from ${new Date(expected).toISOString()}`);
}

/** Runs steps in order; after a failure the rest are reported as skipped. */
export class Suite {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
    this.cleanups = [];
  }

  async step(title, action) {
    if (this.failed) {
      this.skipped++;
      console.log(`[${this.name}] SKIP ${title} (an earlier step failed)`);
      return;
    }
    const started = Date.now();
    try {
      await action();
      this.passed++;
      console.log(`[${this.name}] PASS ${title} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    } catch (error) {
      this.failed++;
      console.log(`[${this.name}] FAIL ${title} (${((Date.now() - started) / 1000).toFixed(1)}s): ${error?.message ?? error}`);
      if (!(error instanceof assert.AssertionError)) console.log(error?.stack ?? error);
    }
  }

  onExit(cleanup) {
    this.cleanups.push(cleanup);
  }

  async finish() {
    for (const cleanup of this.cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.log(`[${this.name}] cleanup: ${error?.message ?? error}`);
      }
    }
    console.log(`[${this.name}] ${this.passed} passed, ${this.failed} failed, ${this.skipped} skipped`);
    process.exitCode = this.failed ? 1 : 0;
  }
}

export function b36(value) {
  return Math.trunc(value).toString(36);
}
