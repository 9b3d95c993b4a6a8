"""Server-rendered SVG charts for the admin (no JavaScript, no CDN). Pure: no Django.

Labels are escaped here; the returned SVG is safe to place in a page."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#417690", "#e07a1f", "#3f9d57", "#b5446e", "#6b5bab", "#8c7a3e", "#2a9bb0", "#c24c3a")
WIDTH = 640


@dataclass(frozen=True)
class Interval:
    label: str
    mean: float
    low: float
    high: float
    highlight: bool = False


def _scale(lo: float, hi: float, left: float, right: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda value: left + (value - lo) / span * (right - left)


def interval_chart(rows: Sequence[Interval], *, unit: str = "") -> str:
    """One row per variant: the mean as a dot, its 95 % interval as a bar; the first
    highlighted row (the control) also draws a vertical reference line."""
    if not rows:
        return ""
    row_height, top, left, right = 34, 24, 150, WIDTH - 30
    height = top + row_height * len(rows) + 30
    lo = min(r.low for r in rows)
    hi = max(r.high for r in rows)
    pad = (hi - lo) * 0.08 or 0.05
    x = _scale(lo - pad, hi + pad, left, right)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Means with 95% intervals" '
        'style="font: 12px sans-serif">'
    ]
    for tick in range(5):
        value = lo - pad + (hi - lo + 2 * pad) * tick / 4
        px = x(value)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{height - 24}" stroke="#eee"/>'
            f'<text x="{px:.1f}" y="{height - 8}" text-anchor="middle" fill="#666">'
            f"{value:.3g}{escape(unit)}</text>"
        )
    reference = next((r for r in rows if r.highlight), None)
    if reference is not None:
        px = x(reference.mean)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{height - 24}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_height + row_height / 2
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end">{escape(row.label)}</text>'
            f'<line x1="{x(row.low):.1f}" y1="{y:.1f}" x2="{x(row.high):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="4" stroke-linecap="round" opacity="0.55"/>'
            f'<circle cx="{x(row.mean):.1f}" cy="{y:.1f}" r="6" fill="{color}">'
            f"<title>{escape(row.label)}: {row.mean:.4g} [{row.low:.4g}, {row.high:.4g}]</title>"
            "</circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def allocation_chart(times: Sequence[str], series: dict[str, Sequence[float]]) -> str:
    """A bandit's weights over time as stacked areas (they sum to 1 at every snapshot)."""
    if not times or not series:
        return ""
    height, top, left, right, bottom = 240, 16, 50, WIDTH - 160, 200
    count = len(times)
    x = _scale(0, max(count - 1, 1), left, right)
    y = _scale(0.0, 1.0, bottom, top)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Allocation over time" '
        'style="font: 12px sans-serif">'
    ]
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
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<polygon points="{" ".join(points)}" fill="{color}" opacity="0.75">'
            f"<title>{escape(key)}</title></polygon>"
            f'<rect x="{right + 14}" y="{top + index * 18}" width="12" height="12" fill="{color}"/>'
            f'<text x="{right + 32}" y="{top + index * 18 + 10}">{escape(key)}</text>'
        )
        baseline = upper
    parts.append(
        f'<text x="{left}" y="{height - 14}" fill="#666">{escape(times[0])}</text>'
        f'<text x="{right}" y="{height - 14}" text-anchor="end" fill="#666">'
        f"{escape(times[-1])}</text></svg>"
    )
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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Namespace of the context" '
        'style="font: 12px sans-serif">'
        f'<rect x="{left}" y="{top}" width="{right - left}" height="28" fill="#eee"/>'
    ]
    for index, span in enumerate(spans):
        x0, x1 = x(span.start), x(span.end)
        color = PALETTE[index % len(PALETTE)]
        stroke = ' stroke="#222" stroke-width="2"' if span.highlight else ""
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="28" '
            f'fill="{color}" opacity="0.8"{stroke}><title>{escape(span.label)}: '
            f"[{span.start:g}, {span.end:g})</title></rect>"
            f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 46}" text-anchor="middle">'
            f"{escape(span.label)} ({span.end - span.start:.0%})</text>"
        )
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{height - 2}" text-anchor="middle" fill="#666">'
            f"{tick:g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
