"""The benchmark's chart: time and memory against the number of ASes.

``chart_svg(results)`` draws two log-log panels, start-to-converged time
and peak memory (PSS), one line per process model and one for BIRD (the
native reference, ``testbed.bench.native``), as plain SVG text (no
plotting library); ``python -m testbed.bench.benchmark --chart FILE``
writes it.
"""

from __future__ import annotations

import math


COLOURS = {"zygote": "#1f77b4", "exec": "#d62728", "zygote-pypy": "#9467bd", "bird": "#2ca02c"}
NAMES = {"zygote": "ours (zygote)", "exec": "baseline (exec)", "zygote-pypy": "ours on PyPy",
         "bird": "BIRD 2 (native reference)"}


def chart_svg(results: list, title: str = "") -> str:
    """Two panels, start-to-converged time and peak memory (PSS) against the
    number of ASes (log-log), one line per process model."""
    # BIRD's own clocks say when its last route was put in place; its
    # watched start → converged also holds the watch's last rounds.
    panels = [("start → converged (s; BIRD: its clocks)",
               lambda r: r.routes_placed_s if r.model == "bird" and r.routes_placed_s else r.start_s),
              ("peak memory, PSS (MiB)", lambda r: r.peak_pss_mib)]
    width, height, margin = 420, 300, 56
    legend_y = height + 58   # one row under both panels: inside a panel it covered points
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{legend_y + 14}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="{width}" y="18" text-anchor="middle" font-size="14">{_escape(title)}</text>']
    sizes = sorted({r.size for r in results})
    models = sorted({r.model for r in results}, key=lambda m: (m != "zygote", m))
    for index, (label, value) in enumerate(panels):
        x0 = index * width
        points = {m: [(r.size, value(r)) for r in sorted(results, key=lambda r: r.size)
                      if r.model == m and value(r)] for m in models}
        values = [v for line in points.values() for _, v in line]
        if not values or not sizes:
            continue
        xs = _log_range(min(sizes), max(sizes))
        ys = _log_range(min(values), max(values))

        def px(size, xs=xs, x0=x0):
            return x0 + margin + (width - 1.5 * margin) * _frac(size, *xs)

        def py(v, ys=ys):
            return 30 + (height - margin) * (1 - _frac(v, *ys))

        parts.append(f'<text x="{x0 + width / 2}" y="{height + 30}" text-anchor="middle">'
                     f'number of ASes — {_escape(label)}</text>')
        parts.append(f'<rect x="{x0 + margin}" y="30" width="{width - 1.5 * margin}" '
                     f'height="{height - margin}" fill="none" stroke="#888"/>')
        for size in sizes:
            parts.append(f'<text x="{px(size):.1f}" y="{height - margin + 46}" text-anchor="middle">{size}</text>')
        for tick in _ticks(*ys):
            parts.append(f'<text x="{x0 + margin - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
            parts.append(f'<line x1="{x0 + margin}" x2="{x0 + width - margin / 2}" y1="{py(tick):.1f}" '
                         f'y2="{py(tick):.1f}" stroke="#ddd"/>')
        for model in models:
            line = points[model]
            colour = COLOURS.get(model, "#555")
            if line:
                path = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in line)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
                for s, v in line:
                    parts.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>')
    x = margin
    for model in models:
        colour, name = COLOURS.get(model, "#555"), NAMES.get(model, model)
        parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{x + 24}" y="{legend_y}" fill="{colour}">{name}</text>')
        x += 24 + 7 * len(name) + 28   # ~7 px per character at 12 px sans-serif
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _log_range(low: float, high: float) -> tuple[float, float]:
    low, high = math.log10(low), math.log10(high)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _frac(value: float, low: float, high: float) -> float:
    return (math.log10(value) - low) / (high - low)


def _ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 × powers of ten inside the (log10) range."""
    found = []
    for exponent in range(math.floor(low) - 1, math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            if low <= math.log10(value) <= high:
                found.append(value)
    return found
