"""Charts as inline SVG, drawn on the server: no JavaScript, no CDN, readable without colour.

Every chart has a <title> and a <desc> (for screen readers), labelled axes and its objective
drawn as a dashed line with its value written beside it; values past the objective are drawn
in the breach colour *and* marked, so colour is never the only signal.

The charts of one page share one `TimeAxis` (the same span, the same round ticks, the time zone
written on it), shade the same incident spans, and draw a stretch without data as "no data",
never as zero. They are drawn at a fixed size: their text stays 12-14 px on every screen (a
narrow screen scrolls the chart inside its box).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 520, 240
#: The width a chart is drawn at for phones (shown instead of the wide one under 600 px).
NARROW = 320
#: Approximate advance of a character of the 13 px axis font.
_AXIS_CHAR_PX = 7.2
GRAPH_WIDTH = 1100
LEFT, RIGHT, TOP, BOTTOM = 64, 14, 22, 46
OK, BAD, WARN, LINE, MUTED, NODATA = "#2e7d32", "#c62828", "#b45309", "#1f4e8c", "#6b7280", "#e5e7eb"
#: Round steps for time ticks, shortest first.
_TIME_STEPS = [timedelta(minutes=m) for m in (5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440, 2880)]
#: Round steps for duration ticks (seconds).
_DURATION_STEPS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800]


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """The one time axis of a page: from `start` to `end`, in UTC."""

    start: datetime
    end: datetime
    width: int = WIDTH

    def at(self, width: int) -> TimeAxis:
        """The same span drawn `width` pixels wide."""
        return TimeAxis(self.start, self.end, width)

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        share = (moment - self.start).total_seconds() / span
        return LEFT + (self.width - LEFT - RIGHT) * min(max(share, 0.0), 1.0)

    def ticks(self, most: int | None = None) -> list[datetime]:
        """Round moments (on whole 5, 10, 15, 30 minutes, hours...) inside the axis, at most `most`."""
        most = most or (6 if self.width >= WIDTH else 5)
        span = self.end - self.start
        step = next((s for s in _TIME_STEPS if span / s <= most - 1), _TIME_STEPS[-1])
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        first = epoch + step * math.ceil((self.start - epoch) / step)
        out = []
        moment = first
        while moment <= self.end:
            out.append(moment)
            moment += step
        return out

    def label(self, moment: datetime) -> str:
        """`14:00`; a midnight as its date (`Dec 07`); on axes longer than a day, the weekday too."""
        at = moment.astimezone(UTC)
        if at.hour == 0 and at.minute == 0:
            return at.strftime("%b %d")
        return at.strftime("%a %H:%M" if self.end - self.start > timedelta(hours=30) else "%H:%M")


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time to shade: an incident, from its start to its recovery (or now)."""

    start: datetime
    end: datetime
    label: str
    short: str  # where the label would collide with another: `#2`


@dataclass(frozen=True, slots=True)
class Series:
    """Values over time for a chart; None breaks the line (nothing known then)."""

    times: Sequence[datetime]
    values: Sequence[float | None]


def round_top(value: float, kind: str) -> tuple[float, list[float]]:
    """A round top for a y axis above `value`, and its ticks (3 to 6 of them): durations or shares."""
    value = max(value, 1e-9)
    if kind == "duration":
        step = next((s for s in _DURATION_STEPS if value / s <= 4), _DURATION_STEPS[-1])
    else:
        power = 10 ** math.floor(math.log10(value / 4))
        step = next(m * power for m in (1, 2, 2.5, 5, 10) if value / (m * power) <= 4)
    count = max(math.ceil(value / step - 1e-9), 1)
    return step * count, [step * index for index in range(count + 1)]


def line_chart(
    series: Series,
    *,
    axis: TimeAxis,
    title: str,
    describe: str,
    objective: float | None,
    objective_label: str,
    fmt: Callable[[float], str],
    kind: str = "duration",
    spans: Sequence[Span] = (),
) -> Markup:
    """A line over time with the objective as a dashed line; points past it are red and ringed."""
    known = [v for v in series.values if v is not None]
    parts = [_frame(axis, title, describe), _hatch(axis.width), *_spans(axis, spans)]
    if not known:
        parts += [_x_axis(axis), _note(axis, "no data in this window")]
        return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped
    top, ticks = round_top(max([*known, (objective or 0) * 1.2]), kind)
    y = _y_scale(top)
    parts += [_y_axis(axis, ticks, y, fmt), _x_axis(axis), *_gaps(axis, series.times, series.values)]
    if objective is not None:
        parts.append(_objective(axis, y(objective), objective_label))
    segment: list[str] = []
    for moment, value in zip(series.times, series.values, strict=True):
        if value is None:
            parts.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{axis.x(moment):.1f},{y(value):.1f}")
        if objective is not None and value > objective:
            parts.append(f'<circle cx="{axis.x(moment):.1f}" cy="{y(value):.1f}" r="3.5" fill="none" stroke="{BAD}"'
                         ' stroke-width="1.5"/>')  # fmt: skip
    parts.append(_polyline(segment))
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


def bar_chart(
    starts: Sequence[datetime],
    values: Sequence[float | None],
    *,
    axis: TimeAxis,
    title: str,
    describe: str,
    objective: float | None,
    objective_label: str,
    fmt: Callable[[float], str],
    spans: Sequence[Span] = (),
) -> Markup:
    """Bars over time (one per span) with the objective as a dashed line; bars past it are red and hatched.

    A span without records (None) is drawn as "no data", never as a zero bar.
    """
    known = [v for v in values if v is not None]
    parts = [_frame(axis, title, describe), _hatch(axis.width), *_spans(axis, spans)]
    if not known:
        parts += [_x_axis(axis), _note(axis, "no records checked in this window")]
        return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped
    top, ticks = round_top(max([*known, (objective or 0) * 1.2]), "share")
    y = _y_scale(top)
    step = (starts[1] - starts[0]) if len(starts) > 1 else (axis.end - axis.start)
    ends = [*starts[1:], starts[-1] + step]
    parts += [_y_axis(axis, ticks, y, fmt), _x_axis(axis)]
    for moment, end, value in zip(starts, ends, values, strict=True):
        left, right = axis.x(moment), axis.x(end)
        if value is None:
            parts.append(_no_data(axis, left, right))
            continue
        over = objective is not None and value > objective
        fill = f"url(#over-{axis.width})" if over else LINE
        height = max(y(0) - y(value), 0.5 if value > 0 else 0)
        parts.append(
            f'<rect x="{left + 0.5:.1f}" y="{y(value):.1f}" width="{max(right - left - 1, 0.5):.1f}" '
            f'height="{height:.1f}" fill="{fill}">'
            f"<title>{escape(moment.astimezone(UTC).strftime('%H:%M UTC'))}: {escape(fmt(value))}"
            f"{' (over the objective)' if over else ''}</title></rect>"
        )
    if objective is not None:
        parts.append(_objective(axis, y(objective), objective_label))
    return Markup("".join(parts) + "</svg>")  # noqa: S704 - every text part above is escaped


def responsive(draw: Callable[[int], Markup]) -> Markup:
    """A chart drawn twice, wide and at phone width; the stylesheet shows the one that fits (text keeps its size)."""
    return Markup('<div class="chart-wide">{}</div><div class="chart-narrow">{}</div>').format(
        draw(WIDTH), draw(NARROW)
    )


def reason_bars(
    counts: Sequence[tuple[str, int]], *, title: str, warns: frozenset[str] = frozenset(), width: int = WIDTH
) -> Markup:
    """Horizontal bars: records per reason code, most frequent first, with the count written out.

    Codes that warn (in `warns`) are amber, striped and say "warn"; codes that block are solid red and say
    "block". Narrower than the wide chart, each code is written above its bar.
    """
    rows = list(counts)[:10]
    stacked = width < WIDTH
    row_h = 40 if stacked else 26
    height = row_h * max(len(rows), 1) + 10
    most = max([count for _, count in rows] or [1])
    start = 0 if stacked else 204
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" class="chart">'
             f"<title>{escape(title)}</title>{_hatch(width)}"]  # fmt: skip
    for index, (code, count) in enumerate(rows):
        top = 6 + index * row_h
        bar_top = top + 18 if stacked else top
        bar = (width - start - 70) * count / most
        warn = code in warns
        fill = f"url(#warned-{width})" if warn else BAD
        word = "! warn" if warn else "✕ block"
        parts.append(
            f'<text x="0" y="{top + 13}" class="label">{escape(code)}</text>'
            + (f'<text x="{width - 4}" y="{top + 13}" class="axis" text-anchor="end">{word}</text>' if stacked else
               f'<text x="196" y="{top + 13}" class="axis" text-anchor="end">{word}</text>')
            + f'<rect x="{start}" y="{bar_top}" width="{max(bar, 1):.1f}" height="{16 if stacked else 18}" '
            f'fill="{fill}" stroke="{WARN if warn else BAD}"/>'
            f'<text x="{start + bar + 6:.1f}" y="{bar_top + 13}" class="label">{count:,}</text>'
        )  # fmt: skip
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
    detail: str | None = None  # a second, smaller line (the source of a group)


#: Approximate advance of a character of the graph's 14 px label font, to size boxes to their text.
_CHAR_PX = 8.0
_GAP = 48


def lineage_graph(
    nodes: Sequence[Node], edges: Sequence[tuple[str, str]], *, title: str, columns: Sequence[str]
) -> Markup:
    """Columns of boxes (source → record → run → model call) joined by arrows; each column as wide as its words.

    A blocked group's arrow stops short of the run, with a bar: what it held back never reached a model call.
    """
    per_column: dict[int, list[Node]] = {}
    for node in nodes:
        per_column.setdefault(node.column, []).append(node)
    widths = []
    for index in range(len(columns)):
        group = per_column.get(index, [])
        longest = max([len(columns[index]), *(len(n.label) for n in group), *(len(n.detail or "") for n in group)])
        widths.append(max(110.0, longest * _CHAR_PX + 20))
    lefts = [sum(widths[:index]) + _GAP * index + 4 for index in range(len(columns))]
    width = lefts[-1] + widths[-1] + 4 if columns else GRAPH_WIDTH
    row_h = 46
    rows = max([len(group) for group in per_column.values()] or [1])
    height = 34 + rows * row_h
    where: dict[str, tuple[float, float, float]] = {}
    boxes: list[str] = []
    for column, group in per_column.items():
        for row, node in enumerate(group):
            left, top = lefts[column], 28 + row * row_h
            box_h = 36 if node.detail else 26
            dashes = ' stroke-dasharray="5 3"' if node.tone == "bad" else ""
            where[node.id] = (left, top + box_h / 2, left + widths[column])
            tone = {"bad": BAD, "ok": OK, "warn": WARN}.get(node.tone, MUTED)
            box = (f'<rect x="{left:.1f}" y="{top}" width="{widths[column]:.1f}" height="{box_h}" rx="4" fill="white" '
                   f'stroke="{tone}" stroke-width="{2 if node.tone == "bad" else 1}"{dashes} class="node"/>'
                   f'<text x="{left + 8:.1f}" y="{top + 17}" class="label">{escape(node.label)}</text>')  # fmt: skip
            if node.detail:
                box += f'<text x="{left + 8:.1f}" y="{top + 31}" class="axis">{escape(node.detail)}</text>'
            if node.href:
                box = f'<a href="{escape(node.href)}">{box}</a>'
            boxes.append(f'<g class="node-box">{box}</g>')
    lines: list[str] = []
    blocked = {node.id for node in nodes if node.tone == "bad"}
    for start, end in edges:
        if start in where and end in where:
            (_, y1, x1), (x2, y2, _) = where[start], where[end]
            if start in blocked:  # held back: the line stops half-way, with a bar across
                middle = (x1 + x2) / 2
                y_mid = (y1 + y2) / 2
                lines.append(f'<line x1="{x1:.1f}" y1="{y1}" x2="{middle:.1f}" y2="{y_mid:.1f}" stroke="{BAD}" '
                             f'stroke-dasharray="4 3"/><line x1="{middle:.1f}" y1="{y_mid - 7:.1f}" x2="{middle:.1f}" '
                             f'y2="{y_mid + 7:.1f}" stroke="{BAD}" stroke-width="3"/>')  # fmt: skip
            else:
                lines.append(f'<line x1="{x1:.1f}" y1="{y1}" x2="{x2 - 2:.1f}" y2="{y2}" stroke="#9ca3af" '
                             f'marker-end="url(#arrow)"/>')  # fmt: skip
    heads = "".join(
        f'<text x="{lefts[index]:.1f}" y="16" class="axis">{escape(name)}</text>' for index, name in enumerate(columns)
    )
    arrow = ('<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#9ca3af"/></marker></defs>')  # fmt: skip
    return Markup(  # noqa: S704 - every text part is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" '
        f'height="{height}" class="chart graph"><title>{escape(title)}</title>{arrow}{heads}'
        + "".join(lines)
        + "".join(boxes)
        + "</svg>"
    )


def _y_scale(top: float) -> Callable[[float], float]:
    plot_h = HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, top) / top)

    return y


def _frame(axis: TimeAxis, title: str, describe: str) -> str:
    width = axis.width
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {HEIGHT}" width="{width}" '
            f'height="{HEIGHT}" class="chart">'
            f"<title>{escape(title)}</title><desc>{escape(describe)}</desc>"
            f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{width - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="{MUTED}"/>'
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="{MUTED}"/>')  # fmt: skip


def _y_axis(axis: TimeAxis, ticks: Sequence[float], y: Callable[[float], float], fmt: Callable[[float], str]) -> str:
    out = []
    for value in ticks:
        level = y(value)
        out.append(f'<line x1="{LEFT}" y1="{level:.1f}" x2="{axis.width - RIGHT}" y2="{level:.1f}" stroke="#eef0f3"/>'
                   f'<text x="{LEFT - 6}" y="{level + 4:.1f}" text-anchor="end" class="axis">'
                   f"{escape(fmt(value))}</text>")  # fmt: skip
    return "".join(out)


def _x_axis(axis: TimeAxis) -> str:
    out = []
    for moment in axis.ticks():
        x = axis.x(moment)
        out.append(f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM + 4}" '
                   f'stroke="{MUTED}"/><text x="{x:.1f}" y="{HEIGHT - BOTTOM + 17}" text-anchor="middle" class="axis">'
                   f"{escape(axis.label(moment))}</text>")  # fmt: skip
    out.append(f'<text x="{axis.width - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" class="axis">time (UTC)</text>')
    return "".join(out)


def _spans(axis: TimeAxis, spans: Sequence[Span]) -> list[str]:
    """Incidents shaded; each named above the plot (`incident 2`, or `#2` where the full name would run into
    another incident or its name)."""
    shown = sorted((s for s in spans if s.end >= axis.start and s.start <= axis.end), key=lambda s: s.start)
    extents = [(axis.x(s.start), axis.x(s.end)) for s in shown]
    out = []
    taken: list[tuple[float, float]] = []
    for index, (span, (left, right)) in enumerate(zip(shown, extents, strict=True)):
        out.append(f'<rect x="{left:.1f}" y="{TOP}" width="{max(right - left, 1):.1f}" '
                   f'height="{HEIGHT - TOP - BOTTOM}" fill="{BAD}" fill-opacity="0.09" class="incident-span">'
                   f"<title>{escape(span.label)}</title></rect>")  # fmt: skip
        others = taken + [extent for at, extent in enumerate(extents) if at != index]
        for text in (span.label, span.short):
            size = len(text) * _AXIS_CHAR_PX
            # the name starts at the span, or ends at its end when it would run past the plot
            begin = left if left + size <= axis.width - RIGHT else min(right, axis.width - RIGHT) - size
            if all(begin + size + 4 <= a or begin >= b + 4 for a, b in others):
                taken.append((begin, begin + size))
                out.append(f'<text x="{begin:.1f}" y="{TOP - 6}" class="axis incident-label">{escape(text)}</text>')
                break
    return out


def _gaps(axis: TimeAxis, times: Sequence[datetime], values: Sequence[float | None]) -> list[str]:
    """Stretches where nothing is known, drawn as "no data" (grey, hatched), never as zero."""
    out = []
    begin: datetime | None = None
    for index, (moment, value) in enumerate(zip(times, values, strict=True)):
        if value is None and begin is None:
            begin = times[index - 1] if index else moment
        if value is not None and begin is not None:
            out.append(_no_data(axis, axis.x(begin), axis.x(moment)))
            begin = None
    if begin is not None:
        out.append(_no_data(axis, axis.x(begin), axis.x(times[-1])))
    return out


def _no_data(axis: TimeAxis, left: float, right: float) -> str:
    width = max(right - left, 1)
    return (f'<rect x="{left:.1f}" y="{TOP}" width="{width:.1f}" height="{HEIGHT - TOP - BOTTOM}" '
            f'fill="url(#nodata-{axis.width})" '
            f'class="no-data"><title>no data</title></rect>'
            + (f'<text x="{(left + right) / 2:.1f}" y="{(HEIGHT - BOTTOM + TOP) / 2:.1f}" text-anchor="middle" '
               f'class="axis">no data</text>' if width > 50 else ""))  # fmt: skip


def _objective(axis: TimeAxis, level: float, label: str) -> str:
    return (f'<line x1="{LEFT}" y1="{level:.1f}" x2="{axis.width - RIGHT}" y2="{level:.1f}" stroke="{BAD}" '
            f'stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{axis.width - RIGHT - 4}" y="{level - 6:.1f}" text-anchor="end" class="objective">'
            f"{escape(label)}</text>")  # fmt: skip


def _polyline(points: list[str]) -> str:
    if not points:
        return ""
    if len(points) == 1:
        cx, cy = points[0].split(",")
        return f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{LINE}"/>'
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2"/>'


def _hatch(width: int) -> str:
    """Patterns for bars over the objective, warnings and no data; ids per drawn width, as a page hides one
    drawing of each chart (and a pattern inside a hidden drawing paints nothing)."""
    return (f'<defs><pattern id="over-{width}" patternUnits="userSpaceOnUse" width="6" height="6" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{BAD}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2"/></pattern>'
            f'<pattern id="warned-{width}" patternUnits="userSpaceOnUse" width="6" height="6" '
            f'patternTransform="rotate(-45)">'
            f'<rect width="6" height="6" fill="#fff4e0"/><line x1="0" y1="0" x2="0" y2="6" stroke="{WARN}" '
            f'stroke-width="2"/></pattern>'
            f'<pattern id="nodata-{width}" patternUnits="userSpaceOnUse" width="8" height="8" '
            f'patternTransform="rotate(45)">'
            f'<rect width="8" height="8" fill="#f8f9fa"/><line x1="0" y1="0" x2="0" y2="8" stroke="{NODATA}" '
            f'stroke-width="3"/></pattern></defs>')  # fmt: skip


def _note(axis: TimeAxis, text: str) -> str:
    return (f'<text x="{(axis.width + LEFT) / 2:.0f}" y="{HEIGHT / 2:.0f}" text-anchor="middle" class="label muted">'
            f"{escape(text)}</text>")  # fmt: skip
