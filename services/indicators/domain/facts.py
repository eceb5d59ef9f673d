"""Facts: the current state of each source record the indicators depend on, as plain dicts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fact:
    record_key: str     # e.g. "encounter:his-01/E123", "pregnancy:P1", "person:<uuid>"
    subject_key: str    # whose record it is: "pregnancy:P1", "person:<uuid>"
    version: int
    voided: bool
    body: dict[str, Any]
