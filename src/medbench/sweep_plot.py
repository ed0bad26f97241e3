"""The study report's picture: every comparison's difference with its 95% CI against zero (a forest plot), one
panel per test family and scale of metric, so a reader sees at a glance which differences are real, which are
noise, and which lie inside an equivalence margin. Plain SVG, every text from records or recipes escaped."""

from __future__ import annotations

import math
from typing import Any

from medbench.svg import esc, nice_ticks

MAX_ROWS_PER_PANEL = 60  # the rest are in report.md; a taller picture is read by no one
ROW_HEIGHT = 18
LABEL_WIDTH = 470
PLOT_WIDTH = 340
PAD = 14
COLORS = {"better": "#1a7f37", "worse": "#cf222e", "none": "#57606a", "margin": "#ddf4ff", "axis": "#8c959f"}


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A comparison's pooled row where it has one (the answer over its seeds), else its single-seed rows; never a
    heterogeneity row (a test of spread, not a difference on this axis)."""
    pooled = {_group(r) for r in rows if r["pooled"]}
    return [r for r in rows if (r["pooled"] or _group(r) not in pooled) and not r.get("heterogeneity")]


def _group(row: dict[str, Any]) -> tuple:
    return row["factor"], str(row["level"]), str(row["baseline_level"]), row["column"], row["family"]


def _label(row: dict[str, Any], grid: set[str] | None = None) -> str:
    others = ", ".join(f"{k}={v}" for k, v in sorted((row.get("factors") or {}).items())
                       if k not in ("seed", "task", row["factor"]) and (grid is None or k in grid))
    seeds = row.get("seeds") or []
    which = f"{len(seeds)} seeds pooled" if row["pooled"] else (f"seed {seeds[0]}" if seeds and seeds[0] is not None
                                                                 else "")
    if row.get("pooled_over"):
        which = f"pooled over {' × '.join(row['pooled_over'])} and {len(seeds)} seeds"
    text = f"{row['column']} · {row['factor']}: {row['level']} vs {row['baseline_level']}"
    text += f" ({others})" if others else ""
    text += f" · {which}" if which else ""
    return text if len(text) <= 78 else text[:77] + "…"


def _margin(row: dict[str, Any]) -> float | None:
    margin = _finite(row.get("_margin", row.get("margin")))
    return margin if margin else None


def _unit(row: dict[str, Any]) -> str:
    """0-1 metrics share an axis; any other scale (a 1-5 judge, a perplexity) gets its own panel."""
    scores = [_finite(row.get("score")), _finite(row.get("baseline_score"))]
    return "0-1" if all(s is not None and 0 <= s <= 1 for s in scores) else str(row.get("metric"))


AXIS_MIN_BOUND = 0.05


def _panel(title: str, rows: list[dict[str, Any]], top: float, grid: set[str] | None) -> tuple[list[str], float]:
    hidden = max(0, len(rows) - MAX_ROWS_PER_PANEL)
    rows = rows[:MAX_ROWS_PER_PANEL]
    spans = []
    for row in rows:
        c = row["comparison"]
        values = [_finite(c.delta), _finite(c.ci_low), _finite(c.ci_high)] if c is not None else []
        margin = _margin(row)
        values += [margin, -margin] if margin else []
        spans += [v for v in values if v is not None]
    # At least ±0.05: differences that are all zero (or tiny) sit at the centre of a readable axis, not on a ±0.001
    # one that makes them look resolved; 1e308 * 1.1 would overflow the axis.
    bound = min(max([abs(v) for v in spans] + [AXIS_MIN_BOUND]), 1e300) * 1.1
    lo, hi = -bound, bound
    x = lambda v: LABEL_WIDTH + (v - lo) / (hi - lo) * PLOT_WIDTH  # noqa: E731
    out = [f'<text x="{PAD}" y="{top + 14}" font-weight="bold">{esc(title)}</text>']
    y0 = top + 26
    height = len(rows) * ROW_HEIGHT
    for i, row in enumerate(rows):
        y = y0 + i * ROW_HEIGHT + ROW_HEIGHT / 2
        if i % 2:
            out.append(f'<rect x="{PAD}" y="{y - ROW_HEIGHT / 2}" width="{LABEL_WIDTH + PLOT_WIDTH - PAD}" '
                       f'height="{ROW_HEIGHT}" fill="#f6f8fa"/>')
        margin = _margin(row)
        if margin:
            out.append(f'<rect x="{x(-margin):.1f}" y="{y - ROW_HEIGHT / 2 + 2}" width="{x(margin) - x(-margin):.1f}" '
                       f'height="{ROW_HEIGHT - 4}" fill="{COLORS["margin"]}"><title>equivalence margin '
                       f'±{margin:g}</title></rect>')
        out.append(f'<text x="{PAD}" y="{y + 4}">{esc(_label(row, grid))}</text>')
        c = row["comparison"]
        delta = _finite(c.delta) if c is not None else None
        if delta is None:
            note = c.note if c is not None and c.note else "not tested"
            out.append(f'<text x="{LABEL_WIDTH + 4}" y="{y + 4}" fill="{COLORS["none"]}">{esc(note[:60])}</text>')
            continue
        state = c.direction if c.significant and c.direction in ("better", "worse") else "none"
        color = COLORS[state]
        low, high = _finite(c.ci_low), _finite(c.ci_high)
        if low is not None and high is not None:
            out.append(f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" stroke="{color}" '
                       'stroke-width="1.6"/>')
        p = f", p {c.p:.3g}" if _finite(c.p) is not None else ""
        q = f", q {c.q:.3g}" if _finite(c.q) is not None else ""
        ci = f" [{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else ""
        fill = color if state != "none" else "white"
        out.append(f'<circle cx="{x(delta):.1f}" cy="{y}" r="4" fill="{fill}" stroke="{color}" stroke-width="1.6">'
                   f'<title>{esc(_label(row, grid))}: Δ {delta:+.3f}{ci}{p}{q}, n {row.get("n")}</title></circle>')
    axis_y = y0 + height + 4
    out.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{y0}" y2="{axis_y}" stroke="{COLORS["axis"]}" '
               'stroke-dasharray="3,3"/>')
    out.append(f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH + PLOT_WIDTH}" y1="{axis_y}" y2="{axis_y}" '
               f'stroke="{COLORS["axis"]}"/>')
    for tick in nice_ticks(lo, hi, 4):
        out.append(f'<text x="{x(tick):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#57606a">{tick:+g}</text>'
                   .replace(">+0<", ">0<"))
    bottom = axis_y + 20
    if hidden:
        out.append(f'<text x="{PAD}" y="{bottom + 10}" fill="#57606a">{hidden} more rows in report.md</text>')
        bottom += 16
    return out, bottom + 10


def svg_differences(rows: list[dict[str, Any]], alpha: float, grid: set[str] | None = None) -> str | None:
    """The forest plot of a study report's rows (as study_report builds them), or None when nothing was compared.
    ``grid``: the recipe's factor names, the only factors a row's label shows (records carry many more)."""
    shown = [r for r in _shown(rows) if r.get("comparison") is not None]
    if not shown:
        return None
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(shown, key=lambda r: (r["family"] != "primary", not r["pooled"])):
        panels.setdefault((row["family"], _unit(row)), []).append(row)
    parts, top = [], 40.0
    for (family, unit), members in panels.items():
        name = "Primary: the study's question" if family == "primary" else "Secondary and per-seed comparisons"
        scale = "difference in score (0-1 metrics)" if unit == "0-1" else f"difference in {unit}"
        drawn, top = _panel(f"{name} · {scale}", members, top, grid)
        parts += drawn
    width = LABEL_WIDTH + PLOT_WIDTH + PAD
    legend = (f'<text x="{PAD}" y="14" fill="#24292f">Each row: the cell minus its baseline on the same items, with '
              'its 95% CI.</text>'
              f'<text x="{PAD}" y="28" fill="#24292f">Filled: q ≤ {alpha:g} (green better, red worse); open: not '
              'significant; blue band: the equivalence margin.</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top:.0f}" '
            f'viewBox="0 0 {width} {top:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="11" '
            f'role="img" aria-label="differences with 95% confidence intervals">'
            f'<rect width="100%" height="100%" fill="white"/>{legend}{"".join(parts)}</svg>')
