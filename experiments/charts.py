"""Server-rendered SVG charts for the admin (no JavaScript, no CDN). Pure: no Django.

Labels are escaped here; the returned SVG is safe to place in a page. Figures on the axes
and in the tooltips use config.admin_format, as the tables around the charts do.

One variant keeps one colour on every chart (DESIGN.md §8): `variant_colors` gives each
series its colour from its position in the experiment (control first, then the variants in
the order they were declared), and every per-variant chart takes that mapping."""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from config.admin_format import number, percent

PALETTE = ("#417690", "#e07a1f", "#3f9d57", "#b5446e", "#6b5bab", "#8c7a3e", "#2a9bb0", "#c24c3a")
WIDTH = 640
_SVG_STYLE = "font: 12px sans-serif; max-width: 100%; height: auto"


def variant_colors(keys: Sequence[str]) -> dict[str, str]:
    """Each key's colour by its position in `keys` (the experiment's stable order, never the
    alphabet), so that the same variant has the same colour on every chart."""
    return {key: PALETTE[index % len(PALETTE)] for index, key in enumerate(keys)}


def _color(colors: Mapping[str, str] | None, key: str, index: int) -> str:
    if colors and key in colors:
        return colors[key]
    return PALETTE[index % len(PALETTE)]


def _open(height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" '
        f'style="{_SVG_STYLE}">'
    )


def nice_step(span: float, *, most: int = 5) -> float:
    """The smallest step of 1, 2, 2.5 or 5 times a power of ten that covers `span` in at
    most `most` intervals (axis ticks at round numbers)."""
    if span <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(span / most))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if span / (factor * power) <= most:
            return factor * power
    return 10.0 * power


@dataclass(frozen=True)
class Interval:
    label: str
    mean: float
    low: float
    high: float
    highlight: bool = False
    color: str | None = None  # from variant_colors; the palette by row otherwise


def _scale(lo: float, hi: float, left: float, right: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda value: left + (value - lo) / span * (right - left)


def interval_chart(
    rows: Sequence[Interval],
    *,
    unit: str = "",
    as_percent: bool = False,
    reference: float | None = None,
    label: str = "Means with 95% intervals",
) -> str:
    """One row per variant: the mean as a dot, its 95 % interval as a bar. The reference line
    is drawn at `reference` when given, otherwise at the first highlighted row's mean (the
    control). `as_percent` reads the values as fractions (lifts)."""
    if not rows:
        return ""

    def tick_text(value: float) -> str:
        return percent(value, sign=True) if as_percent else f"{number(value)}{unit}"

    row_height, top, left, right = 34, 24, 170, WIDTH - 30
    height = top + row_height * len(rows) + 30
    lo = min(r.low for r in rows)
    hi = max(r.high for r in rows)
    if reference is not None:
        lo, hi = min(lo, reference), max(hi, reference)
    pad = (hi - lo) * 0.08 or 0.05
    x = _scale(lo - pad, hi + pad, left, right)
    parts = [_open(height, label)]
    step = nice_step(hi - lo + 2 * pad)
    first = math.ceil((lo - pad) / step)
    ticks = [step * i for i in range(first, math.floor((hi + pad) / step) + 1)]
    for value in ticks:
        px = x(value)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{height - 24}" stroke="#eee"/>'
            f'<text x="{px:.1f}" y="{height - 8}" text-anchor="middle" fill="#666">'
            f"{escape(tick_text(value))}</text>"
        )
    if reference is None:
        reference = next((r.mean for r in rows if r.highlight), None)
    if reference is not None:
        px = x(reference)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{height - 24}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_height + row_height / 2
        color = row.color or PALETTE[index % len(PALETTE)]
        summary = f"{tick_text(row.mean)} [{tick_text(row.low)}, {tick_text(row.high)}]"
        parts.append(
            f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end">{escape(row.label)}</text>'
            f'<line x1="{x(row.low):.1f}" y1="{y:.1f}" x2="{x(row.high):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="4" stroke-linecap="round" opacity="0.55"/>'
            f'<circle cx="{x(row.mean):.1f}" cy="{y:.1f}" r="6" fill="{color}">'
            f"<title>{escape(row.label)}: {escape(summary)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def allocation_chart(
    times: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    colors: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A bandit's weights over time as stacked areas (they sum to 1 at every snapshot), the
    series stacked in the order given, each in its colour from `colors`."""
    if not times or not series:
        return ""
    height, top, left, right, bottom = 240, 16, 50, WIDTH - 160, 200
    count = len(times)
    x = _scale(0, max(count - 1, 1), left, right)
    y = _scale(0.0, 1.0, bottom, top)
    parts = [_open(height, "Allocation over time")]
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        py = y(share)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" fill="#666">'
            f"{share:.0%}</text>"
        )
    baseline = [0.0] * count
    for index, (key, weights) in enumerate(series.items()):
        upper = [b + w for b, w in zip(baseline, weights, strict=True)]
        points = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(upper)]
        points += [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(baseline)))]
        color = _color(colors, key, index)
        name = escape((labels or {}).get(key, key))
        parts.append(
            f'<polygon points="{" ".join(points)}" fill="{color}" opacity="0.75">'
            f"<title>{name}: now {escape(percent(weights[-1]))}</title></polygon>"
            f'<rect x="{right + 14}" y="{top + index * 18}" width="12" height="12" fill="{color}"/>'
            f'<text x="{right + 32}" y="{top + index * 18 + 10}">{name}</text>'
        )
        baseline = upper
    parts.append(
        f'<text x="{left}" y="{height - 14}" fill="#666">{escape(times[0])}</text>'
        f'<text x="{right}" y="{height - 14}" text-anchor="end" fill="#666">'
        f"{escape(times[-1])}</text></svg>"
    )
    return "".join(parts)


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    colors: Mapping[str, str] | None = None,
    y_min: float | None = None,
    y_max: float | None = None,
    reference: float | None = None,
    y_format: Callable[[float], str] = number,
    label: str = "Trend",
    height: int = 220,
) -> str:
    """One line per series over the shared x labels (days, windows); a missing value (None)
    breaks the line. `reference` draws a dashed horizontal line (the baseline's level)."""
    values = [v for points in series.values() for v in points if v is not None]
    if not labels or not values:
        return ""
    top, left, right, bottom = 14, 56, WIDTH - 170, height - 36
    lo = min(values) if y_min is None else y_min
    hi = max(values) if y_max is None else y_max
    if reference is not None:
        lo, hi = min(lo, reference), max(hi, reference)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    if y_max is None:
        step = nice_step(hi - lo)
        hi = lo + step * math.ceil((hi - lo) / step)
        ticks = [lo + step * i for i in range(round((hi - lo) / step) + 1)]
    else:
        ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
    count = len(labels)
    x = _scale(0, max(count - 1, 1), left, right)
    y = _scale(lo, hi, bottom, top)
    parts = [_open(height, label)]
    for value in ticks:
        py = y(value)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" fill="#666">'
            f"{escape(y_format(value))}</text>"
        )
    if reference is not None:
        py = y(reference)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#999" '
            'stroke-dasharray="4 3"/>'
        )
    step = max(1, -(-count // 6))  # at most about six x labels
    for index in range(0, count, step):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - 16}" text-anchor="middle" fill="#666">'
            f"{escape(labels[index])}</text>"
        )
    for index, (name, points) in enumerate(series.items()):
        color = _color(colors, name, index)
        runs: list[list[str]] = [[]]
        for i, point in enumerate(points):
            if point is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(point):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(point):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)}, {escape(labels[i])}: {escape(y_format(point))}</title>"
                "</circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                    'stroke-width="2"/>'
                )
        parts.append(
            f'<rect x="{right + 14}" y="{top + index * 18}" width="12" height="12" fill="{color}"/>'
            f'<text x="{right + 32}" y="{top + index * 18 + 10}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Span:
    label: str
    start: float
    end: float
    highlight: bool = False  # the experiment the page is about


def namespace_chart(spans: Sequence[Span]) -> str:
    """A context's namespace [0, 1) as one bar: each experiment's range as a block, the
    free space grey. Every learner has one place on the bar (their namespace bucket)."""
    height, top, left, right = 74, 10, 10, WIDTH - 10
    x = _scale(0.0, 1.0, left, right)
    parts = [
        _open(height, "Namespace of the context"),
        f'<rect x="{left}" y="{top}" width="{right - left}" height="28" fill="#eee"/>',
    ]
    for index, span in enumerate(spans):
        x0, x1 = x(span.start), x(span.end)
        color = PALETTE[index % len(PALETTE)]
        stroke = ' stroke="#222" stroke-width="2"' if span.highlight else ""
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="28" '
            f'fill="{color}" opacity="0.8"{stroke}><title>{escape(span.label)}: '
            f"[{number(span.start)}, {number(span.end)})</title></rect>"
            f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 46}" text-anchor="middle">'
            f"{escape(span.label)} ({escape(percent(span.end - span.start))})</text>"
        )
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{height - 2}" text-anchor="middle" fill="#666">'
            f"{tick:g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
