"""One clock for "today": China time (UTC+8, 北京时间).

A booking dated today, posted at 07:00 in Beijing, is still "yesterday" in UTC: a service that asked the UTC date
refused it as future. Every service asks this module (or a Clock given to its unit of work) instead.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))


def now_cn() -> datetime:
    return datetime.now(CHINA)


def today_cn() -> date:
    return now_cn().date()


class Clock:
    """The clock a unit of work reads; tests may fix it (`Clock(fixed=...)`) without touching the system's."""

    def __init__(self, fixed: datetime | None = None) -> None:
        self.fixed = fixed

    def now(self) -> datetime:
        return self.fixed.astimezone(CHINA) if self.fixed else now_cn()

    def today(self) -> date:
        return self.now().date()
