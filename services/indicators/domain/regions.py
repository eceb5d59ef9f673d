"""The region tree by code prefix: every count rolls up to province (2), city (4), county (6),
township (9) and village (12) — and "" for the whole platform."""
from __future__ import annotations

LEVELS = (0, 2, 4, 6, 9, 12)


def prefixes(code: str) -> tuple[str, ...]:
    return tuple(code[:n] for n in LEVELS)


def child_level(prefix: str) -> int | None:
    """The next level down from a prefix, for `breakdown=region`."""
    i = LEVELS.index(len(prefix))
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def is_prefix(s: str) -> bool:
    return len(s) in LEVELS and (s == "" or s.isdigit())
