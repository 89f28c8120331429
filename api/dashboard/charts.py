"""Charts as inline SVG, drawn on the server: no JavaScript, no CDN, readable without colour.

Every chart has a <title> and a <desc> (for screen readers), labelled axes and its objective
drawn as a dashed line with its value written beside it; values past the objective are drawn
in the breach colour *and* marked, so colour is never the only signal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 680, 220
GRAPH_WIDTH = 1100
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 20, 36
OK, BAD, LINE, MUTED = "#2e7d32", "#c62828", "#1f4e8c", "#6b7280"


@dataclass(frozen=True, slots=True)
class Series:
    """Values over time for a chart; None breaks the line (nothing known then)."""

    times: Sequence[datetime]
    values: Sequence[float | None]


def line_chart(
    series: Series,
    *,
    title: str,
    describe: str,
    objective: float | None,
    objective_label: str,
    fmt: Callable[[float], str],
) -> Markup:
    """A line over time with the objective as a dashed line; points past it are red and ringed."""
    known = [v for v in series.values if v is not None]
    top = max([*known, (objective or 0) * 1.25, 1e-9])
    x, y = _scales(series.times, top)
    parts = [_frame(title, describe), _y_axis(top, fmt), _x_axis(series.times)]
    if objective is not None:
        parts.append(_objective(y(objective), objective_label))
    segment: list[str] = []
    for moment, value in zip(series.times, series.values, strict=True):
        if value is None:
            parts.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{x(moment):.1f},{y(value):.1f}")
        if objective is not None and value > objective:
            parts.append(f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3.5" fill="none" stroke="{BAD}"'
                         ' stroke-width="1.5"/>')  # fmt: skip
    parts.append(_polyline(segment))
    if not known:
        parts.append(_note("no data in this window"))
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


def bar_chart(
    starts: Sequence[datetime],
    values: Sequence[float | None],
    *,
    title: str,
    describe: str,
    objective: float | None,
    objective_label: str,
    fmt: Callable[[float], str],
) -> Markup:
    """Bars over time (one per span) with the objective as a dashed line; bars past it are red and hatched."""
    known = [v for v in values if v is not None]
    top = max([*known, (objective or 0) * 1.25, 1e-9])
    x, y = _scales(starts, top, pad_end=True)
    width = (WIDTH - LEFT - RIGHT) / max(len(starts), 1) * 0.8
    parts = [_frame(title, describe), _hatch(), _y_axis(top, fmt), _x_axis(starts)]
    for moment, value in zip(starts, values, strict=True):
        if value is None:
            continue
        over = objective is not None and value > objective
        fill = "url(#over)" if over else LINE
        height = max(y(0) - y(value), 0.5 if value > 0 else 0)
        parts.append(
            f'<rect x="{x(moment):.1f}" y="{y(value):.1f}" width="{width:.1f}" height="{height:.1f}" fill="{fill}">'
            f"<title>{escape(moment.strftime('%H:%M'))}: {escape(fmt(value))}"
            f"{' (over the objective)' if over else ''}</title></rect>"
        )
    if objective is not None:
        parts.append(_objective(y(objective), objective_label))
    if not known:
        parts.append(_note("no records checked in this window"))
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


def reason_bars(counts: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """Horizontal bars: records per reason code, most frequent first, with the count written out."""
    rows = list(counts)[:10]
    height = 28 * max(len(rows), 1) + 8
    most = max([count for _, count in rows] or [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height}" class="chart">'
             f"<title>{escape(title)}</title>"]  # fmt: skip
    for index, (code, count) in enumerate(rows):
        top = 8 + index * 28
        bar = (WIDTH - 320) * count / most
        parts.append(
            f'<text x="0" y="{top + 14}" class="label">{escape(code)}</text>'
            f'<rect x="200" y="{top}" width="{bar:.1f}" height="18" fill="{BAD}"/>'
            f'<text x="{206 + bar:.1f}" y="{top + 14}" class="label">{count:,}</text>'
        )
    if not rows:
        parts.append(
            f'<text x="0" y="20" class="label muted">{escape("nothing blocked or warned in this window")}</text>'
        )
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


@dataclass(frozen=True, slots=True)
class Node:
    """A box in a lineage graph: its column, its words, and its tone (ok, bad, warn, plain)."""

    id: str
    column: int
    label: str
    tone: str = "plain"
    href: str | None = None


def lineage_graph(
    nodes: Sequence[Node], edges: Sequence[tuple[str, str]], *, title: str, columns: Sequence[str]
) -> Markup:
    """Columns of boxes (source → record → run → model call) joined by lines."""
    per_column: dict[int, list[Node]] = {}
    for node in nodes:
        per_column.setdefault(node.column, []).append(node)
    rows = max([len(group) for group in per_column.values()] or [1])
    height = 40 + rows * 34
    width = GRAPH_WIDTH
    column_width = width / max(len(columns), 1)
    where: dict[str, tuple[float, float]] = {}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" class="chart graph">'
             f"<title>{escape(title)}</title>"]  # fmt: skip
    for index, name in enumerate(columns):
        parts.append(f'<text x="{index * column_width + 6:.1f}" y="16" class="axis">{escape(name)}</text>')
    box_width = column_width - 18
    for column, group in per_column.items():
        for row, node in enumerate(group):
            left, top = column * column_width + 6, 28 + row * 34
            where[node.id] = (left, top + 12)
            tone = {"bad": BAD, "ok": OK, "warn": "#b45309"}.get(node.tone, MUTED)
            label = escape(_clip(node.label, 31))
            box = (f'<rect x="{left:.1f}" y="{top}" width="{box_width:.1f}" height="24" rx="4" fill="white" '
                   f'stroke="{tone}" stroke-width="{2 if node.tone == "bad" else 1}"/>'
                   f'<text x="{left + 6:.1f}" y="{top + 16}" class="label">{label}</text>')  # fmt: skip
            if node.href:
                box = f'<a href="{escape(node.href)}">{box}</a>'
            parts.append(box)
    for start, end in edges:
        if start in where and end in where:
            (x1, y1), (x2, y2) = where[start], where[end]
            parts.insert(1, f'<line x1="{x1 + box_width:.1f}" y1="{y1}" x2="{x2:.1f}" y2="{y2}" stroke="#9ca3af"/>')
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


def _scales(
    times: Sequence[datetime], top: float, *, pad_end: bool = False
) -> tuple[Callable[[datetime], float], Callable[[float], float]]:
    first, last = (times[0], times[-1]) if times else (datetime.min, datetime.min)
    span = (last - first).total_seconds() or 1.0
    if pad_end and len(times) > 1:
        span *= len(times) / (len(times) - 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: datetime) -> float:
        return LEFT + plot_w * (moment - first).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, top) / top)

    return x, y


def _frame(title: str, describe: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" class="chart">'
            f"<title>{escape(title)}</title><desc>{escape(describe)}</desc>"
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="{MUTED}"/>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="{MUTED}"/>')  # fmt: skip


def _y_axis(top: float, fmt: Callable[[float], str]) -> str:
    ticks = []
    for share in (0.0, 0.5, 1.0):
        value = top * share
        level = TOP + (HEIGHT - TOP - BOTTOM) * (1 - share)
        ticks.append(
            f'<text x="{LEFT - 6}" y="{level + 4:.1f}" text-anchor="end" class="axis">{escape(fmt(value))}</text>'
        )
    return "".join(ticks)


def _x_axis(times: Sequence[datetime]) -> str:
    if not times:
        return ""
    spans_days = (times[-1] - times[0]).total_seconds() > 12 * 3600
    picks = [times[0], times[len(times) // 2], times[-1]]
    anchors = ["start", "middle", "end"]
    out = []
    plot_w = WIDTH - LEFT - RIGHT
    for index, (moment, anchor) in enumerate(zip(picks, anchors, strict=True)):
        label = moment.strftime("%b %d %H:%M" if spans_days else "%H:%M")
        out.append(f'<text x="{LEFT + plot_w * index / 2:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}" '
                   f'class="axis">{escape(label)}</text>')  # fmt: skip
    return "".join(out)


def _objective(level: float, label: str) -> str:
    return (f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" stroke="{BAD}" '
            f'stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{LEFT + 6}" y="{level - 6:.1f}" class="objective">{escape(label)}</text>')  # fmt: skip


def _polyline(points: list[str]) -> str:
    if not points:
        return ""
    if len(points) == 1:
        cx, cy = points[0].split(",")
        return f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{LINE}"/>'
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2"/>'


def _hatch() -> str:
    return (f'<defs><pattern id="over" patternUnits="userSpaceOnUse" width="6" height="6" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{BAD}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2"/></pattern></defs>')  # fmt: skip


def _note(text: str) -> str:
    return (f'<text x="{(WIDTH + LEFT) / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" class="label muted">'
            f"{escape(text)}</text>")  # fmt: skip


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
