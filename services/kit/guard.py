"""What no endpoint may receive, refused in one place before any router sees it (issue 15, "bad input never gets a
5xx"): a NUL character (PostgreSQL text cannot hold one), an unpaired surrogate (not UTF-8: the driver cannot send
it), a number beyond the int32 columns every count and version lives in (no plausible value is larger), a number
that is not finite (JSON has no NaN or Infinity, but Python's parser takes them, and 1e400 becomes inf), a body
that is not UTF-8.

Each refusal is a 422 naming the field (a JSON path like `persons.0.person_id`, a query or a path parameter).
The checks cost a byte search per request; a body is parsed a second time only when a search hits."""
from __future__ import annotations

import json
import math
import re
from email.message import Message
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope

from kit.errors import Problem, invalid

#: the widest integer any request may carry: every count, quantity and version column is a Postgres integer
INT_MAX = 2**31 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
#: a byte pattern that may mean a bad value: an escaped NUL or surrogate, NaN / Infinity, a number of 10+ digits
#: or with a positive exponent of 2+ digits; only then is the body parsed again and walked
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|NaN|Infinity|[:,\[]\s*-?\d{10}|\d[eE]\+?\d{2}")


class _NotFinite:
    """What `NaN`, `Infinity` and `-Infinity` parse to during the walk, so the walk can name their field."""


def _text_reason(s: str) -> str | None:
    m = _BAD_TEXT.search(s)
    if m is None:
        return None
    return "contains a NUL character" if m.group() == "\x00" else "contains an unpaired surrogate (not UTF-8)"


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(v: Any, path: str) -> tuple[str, str] | None:
    """The first (field, reason) of a value no endpoint accepts, depth first."""
    if isinstance(v, str):
        reason = _text_reason(v)
        return (path or "body", reason) if reason else None
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return path or "body", "must be a finite number"
    if isinstance(v, int | float):  # 1e10 is an integer to a lax int field: the same bound for both
        return None if -INT_MAX <= v <= INT_MAX else (path or "body", f"must lie within ±{INT_MAX}")
    if isinstance(v, _NotFinite):
        return (path or "body", "must be a finite number (JSON has no NaN or Infinity)")
    if isinstance(v, dict):
        for k, x in v.items():
            at = _join(path, k)
            if (reason := _text_reason(k)) is not None:
                return at, reason
            if (found := _walk(x, at)) is not None:
                return found
    if isinstance(v, list):
        for i, x in enumerate(v):
            if (found := _walk(x, _join(path, i))) is not None:
                return found
    return None


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    m = Message()
    m["content-type"] = content_type
    sub = m.get_content_subtype()
    return m.get_content_maintype() == "application" and (sub == "json" or sub.endswith("+json"))


def body_refusal(body: bytes) -> Problem | None:
    """A JSON body that is not UTF-8 or holds a value no endpoint accepts; None when it may go on (malformed JSON
    goes on too: the framework's parser names its position)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return invalid("body", f"not UTF-8 at byte {e.start}")
    if _SUSPECT.search(body) is None:
        return None
    try:
        doc = json.loads(text, parse_constant=lambda _: _NotFinite())
    except ValueError:
        return None
    found = _walk(doc, "")
    return invalid(*found) if found else None


def query_refusal(query_string: bytes) -> Problem | None:
    """A query parameter (name or value) holding a NUL character."""
    if b"%00" not in query_string:
        return None
    for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in k or "\x00" in v:
            return invalid(k.replace("\x00", "") or "query", "contains a NUL character")
    return None


def path_refusal(scope: Scope) -> Problem | None:
    """A path parameter holding a NUL character, named by the operation it would reach (404 if none)."""
    path = scope["path"]
    if "\x00" not in path:
        return None
    for template in _templates(scope.get("app")):
        m = template.fullmatch(path)
        if m is not None:
            names = [k for k, v in m.groupdict().items() if "\x00" in v]
            return invalid(names[0] if names else "path", "contains a NUL character")
    return Problem(404, "Not found", "no such resource", kind="not-found")


@lru_cache(maxsize=16)
def _templates(app: Any) -> tuple[re.Pattern[str], ...]:
    """The app's path templates (its OpenAPI paths, `/v1/persons/{person_id}`) as patterns naming each parameter."""
    paths = app.openapi().get("paths", {}) if hasattr(app, "openapi") else {}
    out = []
    for t in paths:
        parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::path)?\}", t)
        rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        out.append(re.compile(rx))
    return tuple(out)
