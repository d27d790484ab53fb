"""SVG drawn on the server: uptime bars, response-time charts and
shields-style badges. Strings joined in Python, not templates: a status page
draws 9,000 bars per render."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

GREEN, LIME, YELLOW, ORANGE, RED = "#3fb950", "#7cc95b", "#d4a72c", "#e3772b", "#f85149"
GREY, BLUE = "#6e7681", "#388bfd"


def uptime_color(percent: float | None) -> str:
    if percent is None:
        return GREY
    if percent >= 99.9:
        return GREEN
    if percent >= 99:
        return LIME
    if percent >= 95:
        return YELLOW
    if percent >= 80:
        return ORANGE
    return RED


BAR_WIDTH, BAR_GAP = 3, 1


def _day_title(date: str, percent: float | None, checks: int, down: int) -> str:
    if percent is None:
        return f"{date}: no data"
    failed = f", {down} of {checks} checks failed" if down else ""
    return f"{date}: {percent:.2f} % up{failed}"


def bar_rects(
    dates: Sequence[str],
    percents: Sequence[float | None],
    checks: Sequence[int],
    downs: Sequence[int],
) -> str:
    """The bars, one per day, oldest on the left; each bar's <title> is its
    tooltip. Terse: a page of 100 monitors draws 9,000."""
    step = BAR_WIDTH + BAR_GAP
    # Titles hold digits, dates and fixed words only: nothing to escape.
    return "".join(
        f'<rect x="{i * step}" width="{BAR_WIDTH}" height="28" fill="{uptime_color(p)}">'
        f"<title>{_day_title(d, p, c, n)}</title></rect>"
        for i, (d, p, c, n) in enumerate(zip(dates, percents, checks, downs, strict=True))
    )


def uptime_bars(days: int, label: str, rects: str) -> str:
    """An <svg> around `rects` from bar_rects."""
    width = days * (BAR_WIDTH + BAR_GAP) - BAR_GAP
    return (
        f'<svg class="bars" role="img" viewBox="0 0 {max(width, 1)} 28" '
        f'preserveAspectRatio="none" aria-label="{escape(label)}">{rects}</svg>'
    )


def latency_chart(points: Sequence[float | None], label: str) -> str:
    """A line of the hourly averages, scaled to its own maximum."""
    known = [p for p in points if p is not None]
    width, height, top = 240, 48, 4
    if not known:
        return (
            f'<svg class="latency" role="img" viewBox="0 0 {width} {height}" '
            f'aria-label="{escape(label)}: no data"><text x="0" y="28" class="muted">'
            "no data</text></svg>"
        )
    peak = max(known) or 1.0
    step = width / max(len(points) - 1, 1)
    segments: list[list[str]] = [[]]
    for i, value in enumerate(points):
        if value is None:  # a gap, not a drop to zero
            segments.append([])
            continue
        y = height - (height - top) * value / peak
        segments[-1].append(f"{i * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline fill="none" stroke="{BLUE}" stroke-width="1.5" points="{" ".join(s)}"/>'
        for s in segments
        if s
    )
    summary = f"{label}: peak {peak:.0f} ms, last {known[-1]:.0f} ms"
    return (
        f'<svg class="latency" role="img" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" aria-label="{escape(summary)}">'
        f"<title>{escape(summary)}</title>{lines}</svg>"
    )


# --- badges --------------------------------------------------------------------------

# Verdana 11px advance widths, near enough for shields-style layout.
_NARROW = set("fijlrtI.,:;|!'()[] ")
_WIDE = set("mwMW@%")


def _text_width(text: str) -> int:
    total = 0.0
    for char in text:
        if char in _NARROW:
            total += 4.0
        elif char in _WIDE:
            total += 10.0
        elif char.isupper() or char.isdigit():
            total += 7.5
        else:
            total += 6.5
    return int(total + 0.5)


def badge(label: str, message: str, color: str) -> str:
    label, message = label[:60], message[:60]
    left, right = _text_width(label) + 10, _text_width(message) + 10
    total = left + right
    label_e, message_e = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_e}: {message_e}"><title>{label_e}: {message_e}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message_e}</text></g></svg>'
    )


def change_strip(
    labels: Sequence[str], went_down: Sequence[int], recovered: Sequence[int], label: str
) -> str:
    """State changes per bucket, oldest on the left: monitors going down as
    red bars above the line, recoveries as green ones below, scaled to the
    busiest bucket. Each bucket with changes has a <title> tooltip."""
    peak = max([1, *went_down, *recovered])
    height = 20  # each half
    rects = []
    for i, (when, down, up) in enumerate(zip(labels, went_down, recovered, strict=True)):
        if not down and not up:
            continue
        title = f"<title>{escape(when)}: {down} went down, {up} recovered</title>"
        if down:
            h = max(1.5, height * down / peak)
            rects.append(
                f'<rect x="{i}" y="{height - h:.1f}" width="0.8" height="{h:.1f}" fill="{RED}">'
                f"{title}</rect>"
            )
        if up:
            h = max(1.5, height * up / peak)
            rects.append(
                f'<rect x="{i}" y="{height + 1}" width="0.8" height="{h:.1f}" fill="{GREEN}">'
                f"{title}</rect>"
            )
    width = max(len(labels), 1)
    return (
        f'<svg class="strip" role="img" viewBox="0 0 {width} {2 * height + 1}" '
        f'preserveAspectRatio="none" aria-label="{escape(label)}">'
        f'<line x1="0" x2="{width}" y1="{height + 0.5}" y2="{height + 0.5}" '
        f'stroke="{GREY}" stroke-width="0.5" vector-effect="non-scaling-stroke"/>'
        f"{''.join(rects)}</svg>"
    )
