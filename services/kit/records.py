"""The api.md rules every posted source record follows, shared by the services that take them (registry,
screening): idempotency on the source's id (same content → no-op, higher version → correction, otherwise 409)
and field-level errors. Pure: no web framework, no database driver, so domain code may use it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, ValidationError


def field_error(field: str, reason: str) -> dict[str, str]:
    """One entry of a problem's `errors`: which field, and why."""
    return {"field": field, "reason": reason}


def not_blank(v: str) -> str:
    """A name or a reason of whitespace only (an ideographic space U+3000 included) names nothing."""
    if not v.strip():
        raise ValueError("must not be blank")
    return v


#: a text that must say something: a person's, an institution's or a child's name, a reason
Text = Annotated[str, AfterValidator(not_blank)]


class DomainError(Exception):
    """A rule was broken; carries the fields and reasons (a 422 problem unless `status` says otherwise)."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors
        self.status = status


def fail(field_name: str, reason: str, status: int = 422) -> DomainError:
    return DomainError([field_error(field_name, reason)], status)


def pydantic_errors(e: ValidationError, prefix: str = "") -> DomainError:
    """A pydantic validation failure as field errors (`prefix` names the enclosing object, e.g. "mother.")."""
    errs = []
    for x in e.errors():
        loc = ".".join(str(p) for p in x["loc"])
        msg = x["msg"].removeprefix("Value error, ")
        errs.append(field_error(f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", msg))
    return DomainError(errs)


def content_hash(body: dict[str, Any]) -> str:
    """Hash of a posted record's content (version excluded): same hash = an idempotent retry."""
    clean = {k: v for k, v in body.items() if k != "version"}
    return hashlib.sha256(orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Decision:
    """What to do with a posted record given what is stored (idempotency, corrections)."""

    action: Literal["create", "unchanged", "correct"]
    version: int


def decide_version(stored_version: int | None, stored_hash: str | None, new_hash: str,
                   new_version: int | None) -> Decision:
    """api.md idempotency: same content → no-op; different content with a higher version → correction;
    different content with the same (or no, or an older) version → 409."""
    if stored_version is None:
        return Decision("create", new_version or 1)
    if stored_hash == new_hash and (new_version is None or new_version <= stored_version):
        return Decision("unchanged", stored_version)
    if new_version is not None and new_version > stored_version:
        return Decision("correct", new_version)
    if new_version is None or new_version == stored_version:
        raise fail("version", f"different content with the same version {stored_version}: send a higher "
                   "version to correct the record", 409)
    raise fail("version", f"version {new_version} is older than the stored version {stored_version}", 409)
