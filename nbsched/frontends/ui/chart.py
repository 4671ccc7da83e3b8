"""The History tab's chart: runs per minute over the last hour, ok / error / skipped stacked, as inline SVG.

The runner counts the runs (``client.run_counts``); this draws the counts as a few rectangles of text, so
the chart costs one HTML widget and no plotting library, however many runs there were.
"""

from __future__ import annotations

import html
from datetime import timedelta

from ..commands import STATUS_COLOURS

#: The statuses the chart stacks, bottom up.
CHARTED = ("ok", "error", "skipped")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 130, 40, 18, 16


def runs_chart_svg(counts: dict) -> str:
    """``client.run_counts()`` as an SVG bar chart (one stacked bar a minute, a legend with the totals)."""
    minutes = counts["minutes"]
    series = {status: counts["counts"].get(status, [0] * minutes) for status in CHARTED}
    tallest = max([sum(values) for values in zip(*series.values(), strict=True)] or [0]) or 1
    step = (WIDTH - LEFT) / minutes
    plot = HEIGHT - BOTTOM - TOP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" class="nbsched-runs-chart" '
        'font-family="sans-serif" font-size="10">',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" stroke="#d0d7de"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" fill="#57606a">{tallest}</text>',
        f'<text x="{LEFT - 4}" y="{HEIGHT - BOTTOM}" text-anchor="end" fill="#57606a">0</text>',
    ]
    for index in range(minutes):
        base = HEIGHT - BOTTOM
        for status in CHARTED:
            count = series[status][index]
            if not count:
                continue
            height = plot * count / tallest
            base -= height
            x = LEFT + index * step
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{max(step - 1, 1):.1f}" height="{height:.1f}" '
                f'fill="{STATUS_COLOURS[status]}"><title>{count} {status}</title></rect>'
            )
    parts += _axis_labels(counts["start"], minutes, step)
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


def _axis_labels(start, minutes: int, step: float) -> list[str]:
    """A time under the first bar, every quarter of the window, and the last."""
    labels = []
    for index in sorted({0, *range(0, minutes, max(1, minutes // 4)), minutes - 1}):
        moment = (start + timedelta(minutes=index)).strftime("%H:%M")
        x = LEFT + index * step + step / 2
        anchor = "end" if index == minutes - 1 else "middle"  # the last one inside the picture
        x = min(x, WIDTH)
        labels.append(f'<text x="{x:.1f}" y="{HEIGHT - 4}" text-anchor="{anchor}" fill="#57606a">{moment}</text>')
    return labels


def _legend(series: dict[str, list[int]]) -> list[str]:
    items, x = [], LEFT
    for status in CHARTED:
        text = html.escape(f"{status} {sum(series[status]):,}")
        items.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{STATUS_COLOURS[status]}"/>')
        items.append(f'<text x="{x + 14}" y="11" fill="#24292f">{text}</text>')
        x += 24 + 7 * len(text)
    items.append(f'<text x="{x}" y="11" fill="#57606a">runs per minute, last hour</text>')
    return items
