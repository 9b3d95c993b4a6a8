"""Effectiveness windows (DESIGN.md §5.2): tumbling, EFFECTIVENESS_WINDOW_DAYS long, aligned to
2024-01-01T00:00Z. Pure: no Django. The SQL form of `window_index` is in outcomes.sql."""

import datetime

WINDOW_ORIGIN = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def window_index(moment: datetime.datetime, days: int) -> int:
    """⌊(moment − origin) / days⌋, negative before the origin."""
    return int((moment - WINDOW_ORIGIN).total_seconds() // (days * 86400))


def window_bounds(index: int, days: int) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of window `index`."""
    start = WINDOW_ORIGIN + datetime.timedelta(days=index * days)
    return start, start + datetime.timedelta(days=days)
