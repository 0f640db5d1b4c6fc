"""Inline SVG charts rendered on the server (no JavaScript): a line and a +/- bar chart."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 56, 16, 16, 40


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def _frame(title: str, body: list[str], labels: list[str], x_of, y_ticks: list[tuple[float, str]]) -> str:
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             'xmlns="http://www.w3.org/2000/svg">', f"<title>{escape(title)}</title>"]
    for y, text in y_ticks:
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>')
    # At most ~8 date labels so they do not overlap.
    every = max(1, -(-len(labels) // 8))
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text class="tick" x="{x_of(i):.1f}" y="{HEIGHT - PAD_B + 16}" '
                         f'text-anchor="middle">{escape(label[5:])}</text>')
    parts += body
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: list[tuple[str, float]], title: str) -> str:
    """Size over time: `points` are (date label, value), oldest first."""
    if not points:
        return '<p class="muted">No data yet.</p>'
    labels = [p[0] for p in points]
    # Five ticks at quarters: a small (or empty) series gets a top of 4 or 8 so they are whole.
    peak = max(p[1] for p in points)
    top = 4.0 if peak <= 4 else 8.0 if peak <= 8 else _nice_max(peak)
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    n = len(points)

    def x_of(i: int) -> float:
        return PAD_L + (inner_w / 2 if n == 1 else i * inner_w / (n - 1))

    def y_of(v: float) -> float:
        return PAD_T + inner_h * (1 - v / top)

    ticks = [(y_of(top * k / 4), _fmt(top * k / 4)) for k in range(5)]
    coords = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, (_, v) in enumerate(points))
    body = [f'<polyline class="series" fill="none" points="{coords}"/>']
    for i, (label, v) in enumerate(points):
        body.append(f'<circle class="point" cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="3">'
                    f"<title>{escape(label)}: {_fmt(v)}</title></circle>")
    return _frame(title, body, labels, x_of, ticks)


def delta_chart(points: list[tuple[str, int, int]], title: str) -> str:
    """Entered (up, green) and left (down, red) per day: `points` are (date, entered, left)."""
    if not points:
        return '<p class="muted">No data yet.</p>'
    labels = [p[0] for p in points]
    top = _nice_max(max(max(p[1], p[2]) for p in points))
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    mid = PAD_T + inner_h / 2
    slot = inner_w / len(points)
    bar = max(2.0, min(24.0, slot * 0.6))

    def x_of(i: int) -> float:
        return PAD_L + slot * (i + 0.5)

    def h_of(v: float) -> float:
        return (inner_h / 2) * v / top

    ticks = [(PAD_T, "+" + _fmt(top)), (mid, "0"), (PAD_T + inner_h, "−" + _fmt(top))]
    body = []
    for i, (label, entered, left) in enumerate(points):
        x = x_of(i) - bar / 2
        body.append(f'<rect class="entered" x="{x:.1f}" y="{mid - h_of(entered):.1f}" width="{bar:.1f}" '
                    f'height="{h_of(entered):.1f}"><title>{escape(label)}: +{entered}</title></rect>')
        body.append(f'<rect class="left" x="{x:.1f}" y="{mid:.1f}" width="{bar:.1f}" '
                    f'height="{h_of(left):.1f}"><title>{escape(label)}: −{left}</title></rect>')
    return _frame(title, body, labels, x_of, ticks)
