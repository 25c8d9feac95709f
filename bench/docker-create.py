#!/usr/bin/env python3
"""Create→Running latency: Sandgate's Docker runtime against Docker itself.

Side by side in one run, interleaved so machine noise hits every contender
alike, with the same image and entrypoint:
  * `docker run -d IMAGE CMD`           (the CLI, as users run it)
  * Engine API create + start           (the same work without the CLI process)
  * Sandgate POST /v1/sandboxes         (until GET reports Running)
Then 20 concurrent creates of each. Every container is removed afterwards;
only 127.0.0.1 and the local engine socket are used.

Usage: bench/docker-create.py [--iterations N] [--concurrency C]
Needs: a running dockerd, scripts/build-test-images.sh done, and the release
binary (cargo build --release -p sandgate-control) or SANDGATE_CONTROL_BIN.
"""

import argparse
import concurrent.futures as cf
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

IMAGE = "sandgate-test/busybox:latest"
CMD = ["sleep", "600"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def engine(method, path, body=None):
    conn = UnixHTTPConnection("/var/run/docker.sock")
    headers = {"Content-Type": "application/json"}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data) if data else None


def api(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, json.dumps(body) if body is not None else None)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else None)


def docker_cli_run(label):
    start = time.perf_counter()
    subprocess.run(["docker", "run", "-d", "--label", label, IMAGE, *CMD], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def docker_api_run(label):
    start = time.perf_counter()
    key, value = label.split("=", 1)
    created = engine("POST", "/containers/create", {"Image": IMAGE, "Cmd": CMD, "Labels": {key: value}})
    engine("POST", f"/containers/{created['Id']}/start")
    return time.perf_counter() - start


def sandgate_run(port, poll=0.002):
    body = {"image": {"uri": IMAGE}, "entrypoint": CMD, "resourceLimits": {}, "timeout": 3600}
    start = time.perf_counter()
    status, created = api(port, "POST", "/v1/sandboxes", body)
    assert status == 202, created
    sandbox_id = created["id"]
    while True:
        _, got = api(port, "GET", f"/v1/sandboxes/{sandbox_id}")
        if got["status"]["state"] == "Running":
            return time.perf_counter() - start, sandbox_id
        assert got["status"]["state"] == "Pending", got
        time.sleep(poll)


def remove_labelled(label):
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandgate(workdir, instance):
    binary = os.environ.get("SANDGATE_CONTROL_BIN", os.path.join(ROOT, "target/release/sandgate-control"))
    port = free_port()
    config = os.path.join(workdir, "control.toml")
    with open(config, "w") as f:
        f.write(f'[server]\nport = {port}\n[runtime]\ntype = "docker"\n[docker]\nnetwork_mode = "bridge"\n'
                f'[store]\npath = "{workdir}/state.db"\n[sandgate]\ninstance = "{instance}"\n')
    log = open(os.path.join(workdir, "control.log"), "w")
    process = subprocess.Popen([binary, "--config", config], stderr=log, stdout=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if api(port, "GET", "/health")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sandgate-control did not start; see " + log.name)


def stats(samples):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def concurrent(fn, count):
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(count) as pool:
        results = list(pool.map(lambda _: fn(), range(count)))
    return time.perf_counter() - start, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:12]
    instance = f"bench-{run}"
    label = f"sandgate.bench={run}"
    sandgate_label = f"sandgate.io/instance={instance}"
    with tempfile.TemporaryDirectory() as workdir:
        process, port = start_sandgate(workdir, instance)
        try:
            results = measure(args, port, label, sandgate_label)
        finally:
            process.terminate()
            process.wait(timeout=30)
            remove_labelled(label)
            remove_labelled(sandgate_label)
    report(results, args)


def measure(args, port, label, sandgate_label):
    for _ in range(3):  # warm-up: page cache, image layers, connections
        docker_cli_run(label), docker_api_run(label), sandgate_run(port)
    remove_labelled(label)
    remove_labelled(sandgate_label)
    samples = {"cli": [], "api": [], "sandgate": [], "sandgate_server": []}
    for i in range(args.iterations):
        samples["cli"].append(docker_cli_run(label))
        samples["api"].append(docker_api_run(label))
        elapsed, sandbox_id = sandgate_run(port)
        samples["sandgate"].append(elapsed)
        _, got = api(port, "GET", f"/v1/sandboxes/{sandbox_id}")
        samples["sandgate_server"].append(server_side(got))
        remove_labelled(label)
        remove_labelled(sandgate_label)
        print(f"iteration {i + 1}/{args.iterations}", file=sys.stderr)
    burst = {
        "cli": concurrent(lambda: docker_cli_run(label), args.concurrency)[0],
        "api": concurrent(lambda: docker_api_run(label), args.concurrency)[0],
        # 20 pollers at 2 ms would be ~10k requests/s competing with dockerd
        # for 2 cores; poll every 25 ms here and also report the server-side
        # span (first createdAt to last Running transition).
    }
    burst["sandgate"], runs = concurrent(lambda: sandgate_run(port, poll=0.025), args.concurrency)
    burst["sandgate_server"] = burst_server_span(port, [sandbox_id for _, sandbox_id in runs])
    return samples, burst


def burst_server_span(port, ids):
    from datetime import datetime
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    items = [api(port, "GET", f"/v1/sandboxes/{i}")[1] for i in ids]
    first = min(parse(i["createdAt"]) for i in items)
    last = max(parse(i["status"]["lastTransitionAt"]) for i in items)
    return (last - first).total_seconds()


def server_side(sandbox):
    from datetime import datetime
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(sandbox["status"]["lastTransitionAt"]) - parse(sandbox["createdAt"])).total_seconds()


def report(results, args):
    samples, burst = results
    cli, api_, sg, sgs = (stats(samples[k]) for k in ("cli", "api", "sandgate", "sandgate_server"))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        f"# Docker create→Running, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu}. Docker {subprocess.run(['docker', 'version', '-f', '{{.Server.Version}}'], capture_output=True, text=True).stdout.strip()}.",
        f"Image `{IMAGE}`, entrypoint `{' '.join(CMD)}`, bridge network, no execd; {args.iterations} interleaved iterations after 3 warm-ups.",
        "",
        "| contender | median ms | p95 ms | Sandgate ÷ contender (median) |",
        "| --- | ---: | ---: | ---: |",
        f"| `docker run -d` (CLI) | {cli[0]:.1f} | {cli[1]:.1f} | {sg[0] / cli[0]:.2f}× |",
        f"| Engine API create + start | {api_[0]:.1f} | {api_[1]:.1f} | {sg[0] / api_[0]:.2f}× |",
        f"| Sandgate POST → GET says Running (client, 2 ms polling) | {sg[0]:.1f} | {sg[1]:.1f} | 1.00× |",
        f"| Sandgate createdAt → Running transition (server side) | {sgs[0]:.1f} | {sgs[1]:.1f} | |",
        "",
        f"{args.concurrency} concurrent creates, wall time until all run:",
        "",
        "| contender | seconds | Sandgate ÷ contender |",
        "| --- | ---: | ---: |",
        f"| `docker run -d` (CLI) | {burst['cli']:.2f} | {burst['sandgate'] / burst['cli']:.2f}× |",
        f"| Engine API create + start | {burst['api']:.2f} | {burst['sandgate'] / burst['api']:.2f}× |",
        f"| Sandgate (client: POST → all seen Running, 25 ms polling) | {burst['sandgate']:.2f} | 1.00× |",
        f"| Sandgate (server: first createdAt → last Running) | {burst['sandgate_server']:.2f} | {burst['sandgate_server'] / burst['cli']:.2f}× of CLI |",
        "",
        "Command: `bench/docker-create.py " + f"--iterations {args.iterations} --concurrency {args.concurrency}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(ROOT, "bench/results/docker-create.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
