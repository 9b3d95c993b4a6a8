"""Numbers, times and names as people read them, for every page of the admin (DESIGN.md §8).

One module so that a figure reads the same on every page: means and intervals to three
significant digits, p-values as `< 0.001` or three decimals, percentages with one decimal,
probabilities never rounded to a certainty they are not, counts with thousands separators.
Whatever is undefined (None, NaN, infinite) reads `—`. Pure: no Django import."""

import datetime
import math
import re
from collections.abc import Sequence
from typing import Any

UNDEFINED = "—"
MINUS = "−"  # a typographic minus lines up with the plus sign

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_MINUTE = 60.0
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None when it is missing or no number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _signed(text: str, negative: bool, *, sign: bool) -> str:
    if negative:
        return f"{MINUS}{text}"
    return f"+{text}" if sign else text


def number(value: Any, *, digits: int = 3, sign: bool = False, trim: bool = True) -> str:
    """A measured figure to `digits` significant digits: 0.8000000000000002 → `0.8`,
    0.123456 → `0.123`, 12345.6 → `12,346` (never fewer than the integer digits); below a
    thousandth as a power of ten (0.0001234 → `1.23 × 10⁻⁴`). `sign` adds `+` to positive
    values (differences); `trim=False` keeps trailing zeros so that the ends of an interval
    show the same precision (`[0.430, 0.458]`)."""
    x = _finite(value)
    if x is None:
        return UNDEFINED
    if x == 0:
        return "+0" if sign else "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -3:
        mantissa = number(abs(x) / 10**magnitude, digits=digits, trim=trim)
        if mantissa.startswith("10"):  # 9.996e-5 rounds up to the next power
            mantissa, magnitude = "1", magnitude + 1
        power = str(magnitude).translate(_SUPERSCRIPT)
        return _signed(f"{mantissa} × 10{power}", x < 0, sign=sign)
    decimals = max(digits - 1 - magnitude, 0)
    rounded = round(abs(x), decimals)
    if rounded == 0:
        return "+0" if sign else "0"
    text = f"{rounded:,.{decimals}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return _signed(text, x < 0, sign=sign)


def interval(low: Any, high: Any, *, digits: int = 3, sign: bool = False) -> str:
    """`[low, high]`; undefined when either end is."""
    if _finite(low) is None or _finite(high) is None:
        return UNDEFINED
    ends = (number(end, digits=digits, sign=sign, trim=False) for end in (low, high))
    return "[{}, {}]".format(*ends)


def plus_minus(mean: Any, low: Any, high: Any, *, digits: int = 3) -> str:
    """A mean with its interval's half-width (`0.512 ± 0.031`); the bare mean when there
    is no interval."""
    centre = number(mean, digits=digits, trim=False)
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None or centre == UNDEFINED:
        return centre
    return f"{centre} ± {number((hi - lo) / 2, digits=2)}"


def p_value(value: Any) -> str:
    """`< 0.001` below a thousandth, otherwise three decimals (`0.034`); `> 0.999` just
    below one, which three decimals would round to a certainty."""
    p = _finite(value)
    if p is None:
        return UNDEFINED
    if p < 0.001:
        return "< 0.001"
    if 0.999 < p < 1:
        return "> 0.999"
    return f"{min(p, 1.0):.3f}"


def percent(value: Any, *, sign: bool = False, of_hundred: bool = False) -> str:
    """A fraction as a percentage with one decimal (0.1234 → `12.3 %`); `of_hundred` when the
    value is already in percent (effectiveness improvements). `sign` for lifts."""
    x = _finite(value)
    if x is None:
        return UNDEFINED
    pct = x if of_hundred else x * 100
    text = f"{abs(pct):,.1f}"
    if text in ("0.0", "0"):
        return "+0.0 %" if sign else "0.0 %"
    return f"{_signed(text, pct < 0, sign=sign)} %"


def percent_interval(low: Any, high: Any, *, of_hundred: bool = False) -> str:
    """A lift's interval in percent, signed: `[−1.2 %, +8.4 %]`."""
    if _finite(low) is None or _finite(high) is None:
        return UNDEFINED
    ends = (percent(v, sign=True, of_hundred=of_hundred) for v in (low, high))
    return "[{}, {}]".format(*ends)


def probability(value: Any) -> str:
    """A probability in percent with one decimal, never shown as a certainty it is not:
    0.9995 → `> 99.9 %`, 0.0004 → `< 0.1 %`; exactly 1 or 0 reads `100 %` or `0 %`."""
    p = _finite(value)
    if p is None:
        return UNDEFINED
    if p >= 1:
        return "100 %"
    if p <= 0:
        return "0 %"
    if p > 0.999:
        return "> 99.9 %"
    if p < 0.001:
        return "< 0.1 %"
    return f"{p * 100:.1f} %"


def count(value: Any) -> str:
    """A count with thousands separators: 1652 → `1,652`."""
    x = _finite(value)
    if x is None:
        return UNDEFINED
    return f"{round(x):,}".replace("-", MINUS)


def score(value: Any) -> str:
    """A 0–100 score (composite, effectiveness) with one decimal."""
    x = _finite(value)
    if x is None:
        return UNDEFINED
    return f"{x:.1f}"


def _plural(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def duration(value: datetime.timedelta | float | int | None) -> str:
    """A span of time in the largest units that say it (`2 weeks`, `3 days 4 h`, `5 h 20 min`,
    `12 s`, `350 ms`); numbers are seconds."""
    if isinstance(value, datetime.timedelta):
        seconds = _finite(value.total_seconds())
    else:
        seconds = _finite(value)
    if seconds is None or seconds < 0:
        return UNDEFINED
    if seconds < 1:
        milliseconds = seconds * 1000
        return f"{number(milliseconds, digits=2 if milliseconds >= 1 else 1)} ms"
    if seconds < _MINUTE:
        return f"{number(seconds, digits=2)} s"
    if seconds < _HOUR:
        return f"{round(seconds / _MINUTE)} min"
    if seconds < _DAY:
        hours, minutes = divmod(round(seconds / _MINUTE), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds >= 2 * _WEEK and seconds % _WEEK == 0:
        return _plural(int(seconds // _WEEK), "week")
    days, hours = divmod(round(seconds / _HOUR), 24)
    if days >= 14 or not hours:
        return _plural(round(seconds / _DAY), "day")
    return f"{_plural(days, 'day')} {hours} h"


def days(value: Any) -> str:
    """A number of days (the experiment's days running) as a duration."""
    x = _finite(value)
    if x is None or x < 0:
        return UNDEFINED
    return "under a minute" if x * _DAY < _MINUTE else duration(x * _DAY)


def milliseconds(value: Any) -> str:
    """A latency in milliseconds (`3.4 ms`, `1.2 s`)."""
    x = _finite(value)
    return UNDEFINED if x is None else duration(x / 1000)


def date(value: datetime.date | datetime.datetime | None) -> str:
    """`16 Nov 2026` (a datetime in the timezone it carries; the admin passes UTC)."""
    if value is None:
        return UNDEFINED
    return f"{value.day} {value:%b %Y}"


def moment(value: datetime.datetime | None) -> str:
    """`16 Nov 2026 14:05`."""
    if value is None:
        return UNDEFINED
    return f"{date(value)} {value:%H:%M}"


def listing(items: Sequence[str], *, empty: str = "none") -> str:
    """`a, b and c`."""
    if not items:
        return empty
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"


_P_IN_TEXT = re.compile(r"\bp = (\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def p_values_in_text(text: str) -> str:
    """A sentence written elsewhere (an analysis warning) with its `p = 0.00076` figures
    formatted as p_value formats them (`p < 0.001`)."""

    def formatted(match: re.Match[str]) -> str:
        shown = p_value(match.group(1))
        return f"p {shown}" if shown.startswith(("<", ">")) else f"p = {shown}"

    return _P_IN_TEXT.sub(formatted, text)
