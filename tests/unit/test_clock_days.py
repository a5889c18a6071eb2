"""core.clock's cached UTC day and ISO week (read on every mark) equal datetime's, at any instant."""
from __future__ import annotations

import random
from datetime import datetime, timezone

from core.clock import DAY_MS, iso_week, utc_day


def test_cached_day_and_week_equal_datetimes_everywhere_including_day_and_year_edges() -> None:
    rng = random.Random(7)
    instants = [rng.randrange(0, 4_102_444_800_000) for _ in range(5000)]
    instants += [d * DAY_MS + off for d in range(19_700, 19_800) for off in (0, DAY_MS - 1)]  # day edges
    for ms in instants:
        d = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        y, w, _ = d.isocalendar()
        assert utc_day(ms) == d.strftime("%Y-%m-%d"), ms
        assert iso_week(ms) == f"{y}-W{w:02d}", ms
