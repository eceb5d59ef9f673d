"""Prometheus metrics of the mechanisms: HTTP requests, outbox relay, consumers."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("mch_http_requests_total", "HTTP requests served",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("mch_http_request_seconds", "HTTP request latency", ["service", "method", "route"],
                         buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

EVENTS_PUBLISHED = Counter("mch_events_published_total", "events the relay got acknowledged by the broker",
                           ["service", "topic"])
RELAY_BACKLOG = Gauge("mch_relay_backlog", "outbox events not yet acknowledged by the broker", ["service"])
RELAY_REPUBLISH = Counter("mch_relay_broker_resets_total",
                          "times the relay found its topic recreated (broker lost its log) and republished",
                          ["service", "topic"])

EVENTS_CONSUMED = Counter("mch_events_consumed_total", "events applied by a consumer (after dedup)",
                          ["consumer", "topic"])
EVENTS_DUPLICATE = Counter("mch_events_duplicate_total", "events skipped as already applied",
                           ["consumer", "topic"])
CONSUMER_LAG = Gauge("mch_consumer_lag", "records behind the broker's high watermark",
                     ["consumer", "topic", "partition"])
APPLY_SECONDS = Histogram("mch_consumer_apply_seconds", "time to apply one batch in one transaction",
                          ["consumer"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
DEAD_LETTERS = Counter("mch_consumer_dead_letters_total", "events that could not be applied", ["consumer"])
