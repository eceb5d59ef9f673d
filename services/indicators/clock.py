"""China time (UTC+8): what month the engine's clock is in, and which periods have started."""
from __future__ import annotations

from datetime import date

from kit.clock import CHINA, today_cn

__all__ = ["CHINA", "china_today"]


def china_today() -> date:
    """The platform's one clock (kit.clock), under the name the engine has always used."""
    return today_cn()
