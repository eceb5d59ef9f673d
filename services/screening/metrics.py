"""Screening's own Prometheus counters (the mechanisms' are in kit.metrics)."""
from __future__ import annotations

from prometheus_client import Counter

RESULTS = Counter("mch_screening_results_total", "new screening results, by type and class",
                  ["type", "classification"])
ACTIONS = Counter("mch_followup_actions_total", "follow-up actions recorded", ["action"])
