#!/usr/bin/env python3
"""Assertions of scripts/docs-check.sh (standard library only).

    check.py netlog  NETLOG ORIGIN PATH...     only ORIGIN was contacted
    check.py console STDERR ORIGIN             the page logged no CSP violation
    check.py swagger DOM OPENAPI               Swagger UI rendered every operation
    check.py redoc   DOM OPENAPI               ReDoc rendered every operation
    check.py png     PNG WIDTH HEIGHT OPENAPI CSS
                                               the screenshot shows the operations list

Each prints what it established and exits 1 with the reasons when a check
fails.
"""

import json
import re
import struct
import sys
import zlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Schemes that never reach the network.
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "devtools")


def fail(problems):
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    sys.exit(1)


def operations(openapi_path):
    """(METHOD, path, operationId, first tag) of every operation."""
    with open(openapi_path, encoding="utf-8") as f:
        document = json.load(f)
    ops = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                tags = op.get("tags") or ["default"]
                ops.append((method.upper(), path, op.get("operationId"), tags[0]))
    if not ops:
        fail([f"{openapi_path} lists no operations"])
    return ops


# --- netlog -----------------------------------------------------------------


def load_netlog(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A browser that did not exit cleanly leaves the events array open.
        return json.loads(text.rstrip().rstrip(",") + "]}")


def check_netlog(netlog_path, origin, expected_paths):
    log = load_netlog(netlog_path)
    constants = log["constants"]
    name = {v: k for k, v in constants["logEventTypes"].items()}
    begin = constants["logEventPhase"]["PHASE_BEGIN"]
    allowed = urlsplit(origin)
    allowed_hostport = allowed.netloc  # "127.0.0.1:PORT"
    page_site = f"{allowed.scheme}://{allowed.hostname}"  # as in isolation keys
    events = log["events"]

    requests = {}  # source id -> begin params of URL_REQUEST_START_JOB
    failed_sources = set()
    udp_targets = {}  # source id -> address
    udp_senders = set()
    problems = []
    tcp_targets = set()
    dns_queries = set()

    for event in events:
        kind = name.get(event["type"], str(event["type"]))
        params = event.get("params") or {}
        source = event["source"]["id"]
        if isinstance(params.get("net_error"), int) and params["net_error"] < 0:
            failed_sources.add(source)
        if kind == "URL_REQUEST_START_JOB" and event.get("phase") == begin and "url" in params:
            requests.setdefault(source, []).append(params)
        elif kind == "TCP_CONNECT_ATTEMPT" and "address" in params:
            tcp_targets.add(params["address"])
        elif kind == "TCP_CONNECT" and "address_list" in params:
            tcp_targets.update(params["address_list"])
        elif kind == "UDP_CONNECT" and "address" in params:
            udp_targets[source] = params["address"]
        elif kind == "UDP_BYTES_SENT":
            udp_senders.add(source)
        elif kind.startswith("DNS_TRANSACTION") and "hostname" in params:
            dns_queries.add(params["hostname"])

    page, internal = [], []
    for source, starts in requests.items():
        for params in starts:
            # Chromium's own background requests (component updater,
            # spelling dictionaries and the like) belong to no page: no
            # initiator, not a navigation, and an isolation key whose
            # top-frame site is not the page's. Everything else counts as
            # the page's.
            own = (
                params.get("initiator") == "not an origin"
                and params.get("request_type") == "other"
                and not str(params.get("network_isolation_key", "")).startswith(page_site + " ")
            )
            (internal if own else page).append((source, params["url"]))

    seen_paths = set()
    for _, url in page:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            continue
        if parts.scheme != allowed.scheme or parts.netloc != allowed_hostport:
            problems.append(f"the page (or Chromium on its behalf) requested {url}; only {origin}/... is allowed")
        else:
            seen_paths.add(parts.path)
    for path in expected_paths:
        if path not in seen_paths:
            problems.append(
                f"the net log has no request for {origin}{path}: it did not record the page's loads"
            )
    for source, url in internal:
        if source not in failed_sources:
            problems.append(f"Chromium's own request to {url} did not fail offline")
    for address in sorted(tcp_targets):
        if address != allowed_hostport:
            problems.append(f"a TCP connection to {address} was attempted")
    for source in sorted(udp_senders):
        address = udp_targets.get(source, "?")
        host = address.rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "::1"):
            problems.append(f"UDP data was sent to {address}")
    for host in sorted(dns_queries):
        problems.append(f"a DNS query for {host} was attempted")

    if problems:
        fail(problems)
    page_urls = sorted({url for _, url in page})
    print(f"  net log: {len(page_urls)} URLs requested by the page, all on {origin}:")
    for url in page_urls:
        print(f"    {url}")
    print(f"  net log: TCP connections only to {', '.join(sorted(tcp_targets))}; no DNS query; no UDP data")
    for _, url in sorted(set(internal), key=lambda x: x[1]):
        print(f"  net log: Chromium's own background request failed offline (not from the page): {url.split('?')[0]}")


# --- console ------------------------------------------------------------------


def check_console(stderr_path, origin):
    """Chromium logs the page's console to stderr (--enable-logging=stderr)."""
    with open(stderr_path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f if "CONSOLE" in line and f"source: {origin}" in line]
    blocked = [
        line.strip()
        for line in lines
        if "Content Security Policy" in line or "Refused to" in line or "ERR_" in line
    ]
    if blocked:
        fail([f"the page's console reports a blocked or failed load: {line}" for line in blocked])
    print(f"  console: {len(lines)} message(s) from the page, none about a blocked or failed load")


# --- DOM --------------------------------------------------------------------


class SwaggerDom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.blocks = []  # (METHOD, id)
        self.paths = []  # (METHOD of the enclosing block, data-path)
        self.errors = 0
        self.title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if "opblock" in classes and (attrs.get("id") or "").startswith("operations-"):
            method = next((c[len("opblock-"):] for c in classes if c[len("opblock-"):] in METHODS), "?")
            self.blocks.append((method.upper(), attrs["id"]))
        if "opblock-summary-path" in classes and "data-path" in attrs and self.blocks:
            self.paths.append((self.blocks[-1][0], attrs["data-path"]))
        if "errors-wrapper" in classes:
            self.errors += 1
        if tag in ("h1", "h2") and "title" in classes:
            self.title = True


def check_swagger(dom_path, openapi_path):
    ops = operations(openapi_path)
    dom = SwaggerDom()
    with open(dom_path, encoding="utf-8") as f:
        dom.feed(f.read())
    problems = []
    if not dom.title:
        problems.append("Swagger UI rendered no API title (the document did not load)")
    if dom.errors:
        problems.append("Swagger UI shows errors (errors-wrapper)")
    rendered = set(dom.paths)
    expected = {(method, path) for method, path, _, _ in ops}
    for method, path in sorted(expected - rendered):
        problems.append(f"Swagger UI did not render {method} {path}")
    for method, path in sorted(rendered - expected):
        problems.append(f"Swagger UI rendered {method} {path}, which the document does not list")
    ids = {block_id for _, block_id in dom.blocks}
    for method, path, op_id, tag in ops:
        if op_id and f"operations-{tag}-{op_id}" not in ids:
            problems.append(f"Swagger UI has no block operations-{tag}-{op_id} ({method} {path})")
    if problems:
        fail(problems)
    print(f"  Swagger UI DOM: all {len(expected)} operations of /openapi.json rendered as opblocks")


def check_redoc(dom_path, openapi_path):
    ops = operations(openapi_path)
    with open(dom_path, encoding="utf-8") as f:
        html = f.read()
    sections = set(re.findall(r'data-section-id="([^"]*)"', html))
    problems = []
    if "Something went wrong" in html:
        problems.append("ReDoc shows its error page")
    for method, path, op_id, tag in ops:
        if f"tag/{tag}/operation/{op_id}" not in sections:
            problems.append(f"ReDoc did not render {method} {path} ({op_id})")
    if problems:
        fail(problems)
    print(f"  ReDoc DOM: all {len(ops)} operations rendered")


# --- PNG --------------------------------------------------------------------


def decode_png(path):
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail([f"{path} is not a PNG"])
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        fail([f"{path}: unexpected PNG format (depth {depth}, color type {color}, interlace {interlace})"])
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != height * (stride + 1):
        fail([f"{path}: image data has {len(raw)} bytes, expected {height * (stride + 1)}"])
    rows, prev = [], bytes(stride)
    lo = int.from_bytes(b"\x7f" * stride, "big")
    hi = int.from_bytes(b"\x80" * stride, "big")
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        if kind == 0:
            row = line
        elif kind == 2:  # Up: bytewise (line + prev) mod 256, without carries
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            row = (((a & lo) + (b & lo)) ^ ((a ^ b) & hi)).to_bytes(stride, "big")
        else:
            row = bytearray(line)
            if kind == 1:
                for i in range(bpp, stride):
                    row[i] = (row[i] + row[i - bpp]) & 0xFF
            elif kind == 3:
                for i in range(stride):
                    left = row[i - bpp] if i >= bpp else 0
                    row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
            elif kind == 4:
                for i in range(stride):
                    if i >= bpp:
                        a, c = row[i - bpp], prev[i - bpp]
                    else:
                        a = c = 0
                    b = prev[i]
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            else:
                fail([f"{path}: unknown PNG filter {kind} in row {y}"])
            row = bytes(row)
        rows.append(row)
        prev = row
    if bpp == 4:
        rows = [bytes(b for i, b in enumerate(row) if i % 4 != 3) for row in rows]
    return width, height, rows


def badge_colors(css_path):
    """Swagger UI's method badge colours (light theme: the first rule wins)."""
    with open(css_path, encoding="utf-8") as f:
        css = f.read()
    colors = {}
    for method, color in re.findall(
        r"\.opblock-([a-z]+) \.opblock-summary-method\{background:#([0-9a-fA-F]{6})\}", css
    ):
        colors.setdefault(method.upper(), bytes.fromhex(color))
    return colors


def check_png(png_path, width, height, openapi_path, css_path):
    w, h, rows = decode_png(png_path)
    problems = []
    if (w, h) != (width, height):
        fail([f"{png_path} is {w}x{h}, expected {width}x{height}"])
    # Not blank: a real page has many colours.
    colours = set()
    for row in rows[::8]:
        colours.update(row[i : i + 3] for i in range(0, len(row), 24))
    if len(colours) < 50:
        problems.append(f"{png_path} looks blank ({len(colours)} distinct colours sampled)")
    # The operations list: one coloured method badge per operation, in the
    # left quarter of the page. A badge is a run of >= 10 rows that each hold
    # >= 20 pixels of the method's colour (opblock borders are 1 px high).
    ops = operations(openapi_path)
    colors = badge_colors(css_path)
    expected = {}
    for method, _, _, _ in ops:
        expected[method] = expected.get(method, 0) + 1
    span = (w // 4) * 3
    for method, count in sorted(expected.items()):
        color = colors.get(method)
        if color is None:
            problems.append(f"no badge colour for {method} in swagger-ui.css")
            continue
        badges, run = 0, 0
        for row in rows + [b""]:
            hits = row[:span].count(color) if row else 0
            # count() may match across pixel boundaries; confirm alignment.
            if hits:
                hits = sum(1 for i in range(0, span, 3) if row[i : i + 3] == color)
            if hits >= 20:
                run += 1
            else:
                if run >= 10:
                    badges += 1
                run = 0
        if badges != count:
            problems.append(
                f"screenshot shows {badges} {method} badge(s) (#{color.hex()}), the document has {count} {method} operation(s)"
            )
    if problems:
        fail(problems)
    summary = ", ".join(f"{n} {m}" for m, n in sorted(expected.items()))
    print(f"  screenshot: {w}x{h} PNG, {len(colours)} colours sampled, method badges visible for all operations ({summary})")


def main(argv):
    if len(argv) < 2:
        fail([__doc__])
    command, args = argv[1], argv[2:]
    if command == "netlog":
        check_netlog(args[0], args[1], args[2:])
    elif command == "console":
        check_console(args[0], args[1])
    elif command == "swagger":
        check_swagger(args[0], args[1])
    elif command == "redoc":
        check_redoc(args[0], args[1])
    elif command == "png":
        check_png(args[0], int(args[1]), int(args[2]), args[3], args[4])
    else:
        fail([f"unknown check {command!r}"])


if __name__ == "__main__":
    main(sys.argv)
