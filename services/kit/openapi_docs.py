"""What every service's OpenAPI says beyond its routes: the RFC 9457 problem+json errors each operation may answer.

One error vocabulary is handled once (kit.errors); it is documented once too, here: every operation lists the
problems it can answer (401/403 for operations behind a token, 404 for one naming an object in its path, 409 for a
write, 413/415/422 for one taking input, 503 while the database is unreachable), each as `application/problem+json`
of the one `Problem` schema — instead of FastAPI's default 422 body, which is not what the platform sends.
Generic: no service is imported here.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from kit.errors import PROBLEM, TYPE_BASE

#: the problem+json body (kit.errors.Problem.body)
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, as every 4xx and 5xx of the platform answers",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": f"{TYPE_BASE}<kind>, e.g. {TYPE_BASE}validation"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "description": "which fields are wrong, and why",
                   "items": {"type": "object", "required": ["field", "reason"],
                             "properties": {"field": {"type": "string", "description": "dotted path (babies.0.sex)"},
                                            "reason": {"type": "string"}}}},
        "request_id": {"type": "string", "description": "what to quote to the operators"},
    },
    "example": {"type": f"{TYPE_BASE}validation", "title": "Invalid request", "status": 422,
                "detail": "birth_date: 2031-01-01 is in the future",
                "errors": [{"field": "birth_date", "reason": "2031-01-01 is in the future"}],
                "request_id": "6bef41b1790c452fa1db2414095db7f9"},
}
WHY = {
    "401": "no token, an unknown or an expired one",
    "403": "the token lacks the operation's scopes, or names a region outside the caller's",
    "404": "no such object — or one outside the caller's region (the same answer: a refusal reveals nothing)",
    "409": "a conflict with what is stored (a different record under the same id, a newer version, a voided one)",
    "413": "the body is too large (send fewer items per request)",
    "415": "the body is not UTF-8 `application/json`",
    "422": "invalid input: `errors` names each field and why; nothing was changed",
    "503": "the database or the broker is unreachable: nothing was changed, try again",
}


def _problems_of(method: str, path: str, op: dict[str, Any]) -> list[str]:
    public = op.get("x-mch-auth") == "none"
    codes = [] if public else ["401", "403"]
    if "{" in path:
        codes.append("404")
    if method in ("post", "put", "patch", "delete") and not public:
        codes.append("409")
    if "requestBody" in op:
        codes += ["413", "415"]
    if "requestBody" in op or op.get("parameters"):
        codes.append("422")
    return [*codes, "503"]


def add_problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's problem responses, in place (idempotent)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            for code in _problems_of(method, path, op):
                responses[code] = {"description": WHY[code], "content": {PROBLEM: {"schema": ref}}}
            for code, answer in responses.items():  # a problem a route declares itself (its own description)
                if code[:1] in "45" and "content" not in answer:
                    answer["content"] = {PROBLEM: {"schema": ref}}
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):  # FastAPI's, not ours
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
    return schema


def extend_openapi(app: FastAPI, step: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Run `step` over the app's OpenAPI once, when it is first built (steps compose: a service adds its own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        app.openapi_schema = step(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

