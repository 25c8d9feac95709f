"""A Docker API proxy that confines the reference server to its own containers.

OpenSandbox 1.1.1 has no notion of an instance: at startup it adopts every
container labelled `opensandbox.io/id` on the engine (and removes the expired
ones), and its list shows them all. Sandgate labels its containers the same
way, so on a shared engine the reference would see, list and expire the
containers of every other Sandgate run. This proxy sits between the
reference and the engine (the reference gets DOCKER_HOST=unix://SOCKET) and
 - adds the label LABEL=VALUE to every container the reference creates,
 - adds the filter label=LABEL=VALUE to every container listing,
so the reference only sees, and can only touch, the containers of this run.
Every other request is relayed unchanged, one request per upstream connection.

Usage: python docker_scope.py LISTEN_SOCKET UPSTREAM_SOCKET LABEL=VALUE
"""

import asyncio
import json
import re
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CREATE = re.compile(r"^(/v[0-9.]+)?/containers/create$")
LIST = re.compile(r"^(/v[0-9.]+)?/containers/json$")


def scoped_create_body(body: bytes, label: str, value: str) -> bytes:
    spec = json.loads(body or b"{}")
    spec["Labels"] = dict(spec.get("Labels") or {}, **{label: value})
    return json.dumps(spec).encode()


def scoped_list_target(target: str, label: str, value: str) -> str:
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    filters = {}
    rest = []
    for key, item in query:
        if key == "filters":
            filters = json.loads(item or "{}")
        else:
            rest.append((key, item))
    wanted = f"{label}={value}"
    labels = filters.get("label", [])
    if isinstance(labels, dict):  # the older {"k=v": true} form
        labels = [name for name, on in labels.items() if on]
    filters["label"] = list(labels) + [wanted]
    rest.append(("filters", json.dumps(filters)))
    return urlunsplit(parts._replace(query=urlencode(rest)))


async def read_body(reader: asyncio.StreamReader, headers: dict) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += chunk[:-2]
            if size == 0:
                return bytes(body)
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def handle(client_r, client_w, upstream: str, label: str, value: str):
    try:
        head = await client_r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, field = line.partition(":")
                headers[name.strip().lower()] = field.strip()
        body = await read_body(client_r, headers)
        path = urlsplit(target).path
        if method == "POST" and CREATE.match(path):
            body = scoped_create_body(body, label, value)
        elif method == "GET" and LIST.match(path):
            target = scoped_list_target(target, label, value)
        skip = {"content-length", "transfer-encoding", "connection"}
        out = [f"{method} {target} {version}"]
        out += [f"{name}: {field}" for name, field in headers.items() if name not in skip]
        out += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
        up_r, up_w = await asyncio.open_unix_connection(upstream)
        up_w.write("\r\n".join(out).encode("latin-1") + body)
        await up_w.drain()
        while chunk := await up_r.read(65536):
            client_w.write(chunk)
            await client_w.drain()
        up_w.close()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        client_w.close()


async def main(listen: str, upstream: str, scope: str) -> None:
    label, _, value = scope.partition("=")
    server = await asyncio.start_unix_server(
        lambda r, w: handle(r, w, upstream, label, value), path=listen
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
