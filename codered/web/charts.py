"""Small server-rendered SVG charts for the manager overview: no JavaScript, no libraries.

Why hand-written SVG: the overview needs two shapes, horizontal bars and one stacked bar,
which are a few rectangles and texts; a charting library would bring JavaScript or a
dependency for that. The result is a complete ``<svg>`` element to inline in a page.

Why every text goes through :func:`_text` or :func:`_attr`: labels are user data (CSM names,
categories), and an SVG inlined in a page is markup like any other. Characters XML forbids
outright (most control characters) are dropped, so any label still gives a parseable SVG.

Colours are presentation attributes (``fill="…"``), so a chart reads without a stylesheet;
every shape also carries a class, and any CSS rule on that class wins over the attribute.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

__all__ = ["bar_chart", "format_duration", "format_value", "stacked_bar"]

SVG_NS = "http://www.w3.org/2000/svg"
BAR_FILL = "#3b6ea5"
PALETTE = ("#2e7d32", "#f9a825", "#c62828", "#1565c0", "#6a1b9a", "#00838f")
TEXT_FILL = "#222222"
TITLE_HEIGHT = 28
ROW_GAP = 6
VALUE_WIDTH = 72
NO_DATA = "no data"

_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: str) -> str:
    return _NOT_XML.sub("", value)


def _text(value: str) -> str:
    """Element content: ``&``, ``<`` and ``>`` escaped."""
    return escape(_clean(value))


def _attr(value: str) -> str:
    """An attribute value, quotes included (``quoteattr`` picks the quote and escapes)."""
    return quoteattr(_clean(value))


def _num(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _value(value: float) -> float:
    """Bars cannot grow left: negative, NaN and infinite values are drawn as zero."""
    return value if math.isfinite(value) and value > 0 else 0.0


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "…"


def format_duration(seconds: float) -> str:
    """Seconds for people: ``45 s``, ``4 min``, ``2.5 h``, ``3 d``.

    Each unit is used while its rounded number stays below the next unit (so 3599 s is
    ``1 h``, not ``60 min``); minutes are whole, hours and days keep one decimal unless zero.
    """
    if not math.isfinite(seconds):
        return "–"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if round(seconds) < 60:
        return f"{sign}{round(seconds)} s"
    if round(seconds / 60) < 60:
        return f"{sign}{round(seconds / 60)} min"
    if round(seconds / 3600, 1) < 48:
        return f"{sign}{_one_decimal(seconds / 3600)} h"
    return f"{sign}{_one_decimal(seconds / 86400)} d"


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def format_value(value: float, unit: str = "") -> str:
    """``unit="s"`` formats a duration; otherwise the number (one decimal at most) and unit."""
    if unit == "s":
        return format_duration(value)
    if not math.isfinite(value):
        return "–"
    number = str(round(value)) if float(value).is_integer() else _one_decimal(value)
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def _open(title: str, width: int, height: int, kind: str) -> list[str]:
    return [
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={_attr(title)} '
        f'class="chart chart-{kind}" font-family="sans-serif" font-size="12">',
        f"<title>{_text(title)}</title>",
        f'<text x="0" y="18" class="chart-title" font-size="14" font-weight="bold" '
        f'fill="{TEXT_FILL}">{_text(_short(title, width // 8))}</text>',
    ]


def _no_data(title: str, width: int, kind: str) -> str:
    parts = _open(title, width, TITLE_HEIGHT + 24, kind)
    parts.append(
        f'<text x="0" y="{TITLE_HEIGHT + 14}" class="chart-empty" fill="#666666">{NO_DATA}</text>'
    )
    return "".join([*parts, "</svg>"])


def _check_width(width: int) -> None:
    if width < 160:
        raise ValueError(f"a chart needs at least 160 px of width, not {width}")


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    width: int = 480,
    bar_height: int = 22,
) -> str:
    """Horizontal bars, longest for the largest value, each with its label and value.

    Widths are proportional to the values (the largest bar fills the bar area). Empty data,
    or only zeros, gives an SVG that says "no data", so a page never shows an empty frame.
    """
    _check_width(width)
    if bar_height < 8:
        raise ValueError(f"bars need at least 8 px of height, not {bar_height}")
    rows = [(label, _value(value)) for label, value in bars]
    largest = max((value for _, value in rows), default=0.0)
    if largest <= 0:
        return _no_data(title, width, "bar")
    label_width = round(width * 0.3)
    bar_x = label_width + 8
    bar_area = max(width - bar_x - VALUE_WIDTH, 1)
    step = bar_height + ROW_GAP
    height = TITLE_HEIGHT + len(rows) * step + ROW_GAP
    parts = _open(title, width, height, "bar")
    summary = "; ".join(f"{label}: {format_value(value, unit)}" for label, value in rows)
    parts.append(f"<desc>{_text(summary)}</desc>")
    for index, (label, value) in enumerate(rows):
        y = TITLE_HEIGHT + index * step
        middle = _num(y + bar_height / 2 + 4)
        bar_width = value / largest * bar_area
        shown = format_value(value, unit)
        parts.append(
            f'<g class="chart-row"><title>{_text(f"{label}: {shown}")}</title>'
            f'<text x="{label_width}" y="{middle}" text-anchor="end" class="chart-label" '
            f'fill="{TEXT_FILL}">{_text(_short(label, max(label_width // 7, 4)))}</text>'
            f'<rect x="{bar_x}" y="{y}" width="{_num(bar_width)}" height="{bar_height}" '
            f'class="chart-bar" fill="{BAR_FILL}"/>'
            f'<text x="{_num(bar_x + bar_width + 6)}" y="{middle}" class="chart-value" '
            f'fill="{TEXT_FILL}">{_text(shown)}</text></g>'
        )
    return "".join([*parts, "</svg>"])


def stacked_bar(title: str, parts: Sequence[tuple[str, float, str]], *, width: int = 480) -> str:
    """One bar split into parts (label, value, CSS class), with a legend of values and shares.

    For outcomes that add up to a whole: approved unchanged / edited / rejected, kept /
    missed. Each segment's width is its share of the total; parts with zero get no segment
    but stay in the legend, so a manager sees that "rejected: 0" was counted, not forgotten.
    """
    _check_width(width)
    cleaned = [(label, _value(value), css) for label, value, css in parts]
    total = sum(value for _, value, _ in cleaned)
    if total <= 0:
        return _no_data(title, width, "stacked")
    bar_y, bar_height, legend_y, legend_step = TITLE_HEIGHT, 24, TITLE_HEIGHT + 40, 20
    height = legend_y + len(cleaned) * legend_step
    svg = _open(title, width, height, "stacked")
    legend = [
        (label, f"{format_value(value)} ({round(100 * value / total)}%)")
        for label, value, _ in cleaned
    ]
    svg.append(f"<desc>{_text('; '.join(f'{label}: {shown}' for label, shown in legend))}</desc>")
    x = 0.0
    for index, ((label, value, css), (_, shown)) in enumerate(zip(cleaned, legend, strict=True)):
        fill = PALETTE[index % len(PALETTE)]
        classes = _attr(f"chart-segment {css}")
        if value > 0:
            segment = value / total * width
            svg.append(
                f'<rect x="{_num(x)}" y="{bar_y}" width="{_num(segment)}" height="{bar_height}" '
                f'class={classes} fill="{fill}"><title>{_text(f"{label}: {shown}")}</title></rect>'
            )
            x += segment
        y = legend_y + index * legend_step
        svg.append(
            f'<g class="chart-legend"><rect x="0" y="{y - 10}" width="12" height="12" '
            f'class={classes} fill="{fill}"/><text x="18" y="{y}" class="chart-label" '
            f'fill="{TEXT_FILL}">{_text(_short(f"{label}: {shown}", (width - 18) // 7))}</text></g>'
        )
    return "".join([*svg, "</svg>"])
