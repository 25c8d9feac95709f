"""Compares two recorded answers field by field, and the differences against the allow-list.

An answer is (status, media type, body). JSON bodies are compared by shape:
the same keys recursively, the same value types, lists of the same length,
and the same values for the keys whose value is an enum or a count (state,
code, pagination). Everything else (ids, timestamps, addresses, messages)
only has to have the same type; a string that is a timestamp on one side
must be one on the other. A difference is (case, path, detail); the
allow-list (allowed-differences.toml) names allowed ones by case and path
globs, each with its reason.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field

# Keys whose values must be equal, not just of the same type.
EXACT_KEYS = {"state", "code", "page", "pageSize", "totalItems", "totalPages", "hasNextPage"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


@dataclass
class Difference:
    case: str
    path: str
    detail: str


def kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "timestamp" if TIMESTAMP.match(value) else "string"
    if isinstance(value, list):
        return "array"
    return "object"


def compare_json(ref, sg, path: str, key: str | None = None) -> list[tuple[str, str]]:
    """(path, detail) for every place where the Sandgate value does not match the reference's."""
    if kind(ref) != kind(sg):
        return [(path, f"type: reference {kind(ref)} {short(ref)}, sandgate {kind(sg)} {short(sg)}")]
    if isinstance(ref, dict):
        out = []
        for name in sorted(set(ref) | set(sg)):
            child = f"{path}.{name}"
            if name not in sg:
                out.append((child, f"missing in sandgate (reference: {short(ref[name])})"))
            elif name not in ref:
                out.append((child, f"only in sandgate ({short(sg[name])})"))
            else:
                out += compare_json(ref[name], sg[name], child, name)
        return out
    if isinstance(ref, list):
        out = []
        if len(ref) != len(sg):
            out.append((f"{path}.length", f"reference {len(ref)} items, sandgate {len(sg)}"))
        for index, (a, b) in enumerate(zip(ref, sg)):
            out += compare_json(a, b, f"{path}[{index}]", key)
        return out
    if key in EXACT_KEYS and ref != sg:
        return [(path, f"value: reference {short(ref)}, sandgate {short(sg)}")]
    return []


def compare_answers(ref: dict, sg: dict) -> list[tuple[str, str]]:
    """Compares two answers as recorded by the runner (status, type, json, text)."""
    out = []
    if ref["status"] != sg["status"]:
        out.append(("status", f"reference {ref['status']}, sandgate {sg['status']}"))
    if ref["type"] != sg["type"]:
        out.append(("content-type", f"reference {ref['type'] or '(none)'}, sandgate {sg['type'] or '(none)'}"))
    if "json" in ref and "json" in sg:
        out += compare_json(ref["json"], sg["json"], "body")
    elif ("json" in ref) != ("json" in sg):
        out.append(("body", f"reference {describe(ref)}, sandgate {describe(sg)}"))
    elif bool(ref["text"]) != bool(sg["text"]):
        out.append(("body", f"reference {describe(ref)}, sandgate {describe(sg)}"))
    return out


def describe(answer: dict) -> str:
    if "json" in answer:
        return f"JSON {short(answer['json'])}"
    return f"text {short(answer['text'])}" if answer["text"] else "empty"


def short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Allowed:
    case: str
    path: str
    reason: str
    used: int = field(default=0)


def load_allow_list(path: str) -> list[Allowed]:
    with open(path, "rb") as file:
        data = tomllib.load(file)
    entries = []
    for number, entry in enumerate(data.get("difference", []), 1):
        missing = {"case", "path", "reason"} - set(entry)
        if missing or not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path}: entry {number} needs case, path and a non-empty reason")
        entries.append(Allowed(entry["case"], entry["path"], entry["reason"]))
    return entries


def allowed_by(diff: Difference, entries: list[Allowed]) -> list[Allowed]:
    """Every entry matching diff (each is counted as used)."""
    hits = [
        e for e in entries if fnmatch.fnmatchcase(diff.case, e.case) and fnmatch.fnmatchcase(diff.path, e.path)
    ]
    for entry in hits:
        entry.used += 1
    return hits
