"""The leaderboard page's SVG plots: each task's scores with their CIs (forest plots), and scores against the
training and evaluation factors the records carry (merge t, shots, ordering, method, ...), with legends and axis
labels. Plain SVG strings, every record-derived text escaped."""

from __future__ import annotations

import math
from typing import Any

from medbench.leaderboard import Cell, LeaderboardTable, Row
from medbench.svg import esc, nice_ticks
from medbench_plugins.leaderboard_text import (DEGENERATE_MARK, DEGENERATE_NOTE, DOWN, UP, ci_degenerate, ci_text,
                                               fmt_num, p_text, significance_mark)
from medbench_plugins.leaderboard_text_fit import SMALL_PX, fit_text, text_width

MAX_FACTOR_PLOTS = 12


# Factors every record can have; a trainer adds its own through its `plot_factors` (see _declared_factors).
FACTOR_PRIORITY = ["shots", "method", "step", "prompt"]


LIMIT = 1e300  # plotted values are clamped to this size: spans and ticks of larger ones (1e308) overflow


def _range(values: list[float]) -> tuple[float, float]:
    values = [min(max(v, -LIMIT), LIMIT) for v in values if math.isfinite(v)] or [0.0]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:  # one value: a small span around it (relative for a huge one, or it is lost in rounding)
        half = max(0.05, 1e-6 * max(abs(lo), abs(hi)))
        lo, hi = lo - half, hi + half
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def _scale(value: float, lo: float, hi: float) -> float:
    """Where ``value`` lies between ``lo`` and ``hi`` (a _range), 0 to 1; a value beyond is drawn at the edge."""
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


COLORS = {"better": "#1a7f37", "worse": "#cf222e", "baseline": "#0550ae", "same": "#57606a", "untested": "#8c959f",
          "unranked": "#57606a"}


PALETTE = ["#0969da", "#bc4c00", "#8250df", "#1a7f37", "#cf222e", "#4d2d00", "#bf3989", "#0a3069"]


def _state(table: LeaderboardTable, row: Row, cell: Cell) -> str:
    """How a point relates to the baseline: only a cell with a paired test is ever "same" (not different)."""
    if row.is_baseline:
        return "baseline"
    if table.baseline is None:
        return "unranked"
    if cell.comparison is None or cell.comparison.p is None:
        return "untested"
    mark = significance_mark(cell)
    return "better" if mark == UP else "worse" if mark == DOWN else "same"


STATE_TEXT = {"baseline": "baseline", "better": "significantly better than the baseline",
              "worse": "significantly worse than the baseline",
              "same": "not significantly different from the baseline",
              "untested": "not compared with the baseline (hover for why)",
              "unranked": "no baseline chosen: no significance tests"}


def _state_tip(table: LeaderboardTable, row: Row, cell: Cell, state: str) -> str:
    """The state as a point's tooltip says it: an untested point says why it was not compared."""
    if state != "untested":
        return STATE_TEXT[state]
    why = cell.comparison.note if cell.comparison and cell.comparison.note else "the baseline has no score here"
    return f"not compared with the baseline: {why}"


# What each factor's axis means, spelled out under the axis.
FACTOR_TEXT = {"method": "method (trainer plugin; base = not trained)",
               "prompt": "prompt format (raw text or the model's chat template)",
               "shots": "few-shot examples in the prompt", "step": "training step"}


def _declared_factors() -> dict[str, str]:
    """The options trainers declare worth plotting (``plot_factors = {"t": "merge t (interpolation weight)"}`` on
    the trainer), as the records name them: ``merge.t``. Plotted first, with their axis labels."""
    from medbench.training import trainer_registry

    try:
        registry = trainer_registry()
    except Exception:  # a broken trainer plugin is reported where it is used; the page still renders
        return {}
    return {f"{name}.{option}": str(text) for name, trainer in registry.items()
            for option, text in dict(getattr(trainer, "plot_factors", None) or {}).items()}


SCORING_TEXT = {"loglikelihood": "log-likelihood scoring", "generate": "generated answers"}


# Evaluation conditions: a plot never mixes them silently; they become series (or the plot's caption).
CONDITIONS = ("prompt", "shots")


SERIES_KEYS = ("method", "prompt", "shots")  # what tells points apart inside a categorical plot


def _legend_svg(entries: list[tuple[str, str]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """A legend of (swatch svg, name) entries laid out in rows under a plot; returns (svg, height used)."""
    if not entries:
        return "", 0.0
    parts = ['<g class="legend">']
    x, y, line_h = x0, y0, 16
    for swatch, name in entries:
        need = 22 + text_width(name, SMALL_PX)
        if x > x0 and x + need > x0 + width:
            x, y = x0, y + line_h
        parts.append(f'<g class="legend-item" data-series="{esc(name)}" transform="translate({x:.1f},{y:.1f})">'
                     f'{swatch}<text x="16" y="4" class="legend">{esc(name)}</text></g>')
        x += need + 14
    parts.append("</g>")
    return "".join(parts), y - y0 + line_h


def _swatch(color: str) -> str:
    return f'<circle cx="5" cy="0" r="4.5" fill="{color}"/>'


def _marker_legend(states: set[str]) -> list[tuple[str, str]]:
    entries = []
    if "baseline" in states:
        entries.append(('<circle cx="5" cy="0" r="5" fill="#fff" stroke="#1f2328" stroke-width="2"/>',
                        "ringed: the baseline checkpoint"))
    if "better" in states:
        entries.append((f'<text x="5" y="4" text-anchor="middle" style="fill:{COLORS["better"]}">{UP}</text>',
                        STATE_TEXT["better"]))
    if "worse" in states:
        entries.append((f'<text x="5" y="4" text-anchor="middle" style="fill:{COLORS["worse"]}">{DOWN}</text>',
                        STATE_TEXT["worse"]))
    return entries


FOREST_WIDTH = 640  # two side by side in the page's 1400-px column
MIN_LABEL_W, MAX_LABEL_W = 120, 300
LABEL_GAP = 8  # between a label's end and the plot area
LABEL_PAD = LABEL_GAP + 4  # a label is at most the label area less this: 4 px stay free on the left


def svg_forest(table: LeaderboardTable, col: str) -> str:
    """Each checkpoint's score on ``col`` with its CI; the baseline as a dashed line; significant ones coloured."""
    rows = [r for r in table.rows if col in r.cells and r.cells[col].score is not None]
    if not rows:
        return ""
    metric = rows[0].cells[col].metric
    pct = int(table.confidence * 100)
    values = [v for r in rows for v in (r.cells[col].score, r.cells[col].ci_low, r.cells[col].ci_high)
              if v is not None]
    lo, hi = _range(values)
    # One width for every forest plot (two fit side by side on the page); the label area grows with the longest
    # label, up to MAX_LABEL_W, and labels longer than that are cut in the middle (the full one in the tooltip).
    width, value_w, row_h, top = FOREST_WIDTH, 66, 22, 46
    label_w = round(min(MAX_LABEL_W, max(MIN_LABEL_W, max(text_width(r.label) for r in rows) + LABEL_PAD)))
    plot_w = width - label_w - value_w
    axis_y = top + row_h * len(rows) + 4
    states = {_state(table, r, r.cells[col]) for r in rows}
    entries = [(_swatch(COLORS[s]), STATE_TEXT[s]) for s in STATE_TEXT if s in states]
    has_base_line = table.baseline is not None and col in table.baseline.cells and \
        table.baseline.cells[col].score is not None
    if has_base_line:
        entries.append(('<line x1="0" y1="0" x2="10" y2="0" class="baseline-line"/>', "dashed: the baseline's score"))
    if any(ci_degenerate(r.cells[col]) for r in rows):
        entries.append((f'<text x="5" y="4" text-anchor="middle">{DEGENERATE_MARK}</text>',
                        "zero-width interval: not certainty (hover)"))
    legend, legend_h = _legend_svg(entries, 8, axis_y + 52, width - 16)
    height = int(axis_y + 52 + legend_h + 4)

    def x(v: float) -> float:
        return label_w + _scale(v, lo, hi) * plot_w

    parts = [f'<svg class="plot forest" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" data-column="{esc(col)}" data-metric="{esc(metric)}" '
             f'aria-label="{esc(col)}: {esc(metric)} with {pct}% CI per checkpoint">',
             f'<text x="4" y="18" class="plot-title">{esc(col)} — {esc(metric)} with {pct}% CI</text>']
    for tick in nice_ticks(lo, hi):
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{axis_y}" class="grid"/>'
                     f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">{tick:g}</text>')
    parts.append(f'<text x="{label_w + plot_w / 2:.0f}" y="{axis_y + 34}" text-anchor="middle" '
                 f'class="axis-label x-label">{esc(metric)} ({pct}% CI)</text>'
                 f'<text x="{label_w - 8}" y="{top - 8}" text-anchor="end" class="axis-label y-label">'
                 'checkpoint</text>')
    if has_base_line:
        bx = x(table.baseline.cells[col].score)
        parts.append(f'<line x1="{bx:.1f}" y1="{top - 6}" x2="{bx:.1f}" y2="{axis_y}" class="baseline-line"/>')
    for i, row in enumerate(rows):
        cell = row.cells[col]
        y = top + i * row_h + row_h / 2
        state = _state(table, row, cell)
        color = COLORS[state]
        tip = f"{row.label}: {fmt_num(cell.score)} {ci_text(cell)} n={cell.n}; {_state_tip(table, row, cell, state)}"
        if cell.comparison and cell.comparison.p is not None:
            tip += f" (Δ={cell.comparison.delta:+.3f} {p_text('q', cell.comparison.q)})"
        if ci_degenerate(cell):
            tip += "\n" + DEGENERATE_NOTE
        parts.append(f'<g class="point-group" data-label="{esc(row.label)}" data-state="{state}"><title>{esc(tip)}'
                     f'</title><text x="{label_w - LABEL_GAP}" y="{y + 4:.1f}" text-anchor="end" class="label">'
                     f'{esc(fit_text(row.label, label_w - LABEL_PAD))}</text>')
        if cell.ci_low is not None and cell.ci_high is not None:
            x1, x2 = x(cell.ci_low), x(cell.ci_high)
            parts.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{color}" '
                         f'stroke-width="2"/><line x1="{x1:.1f}" y1="{y - 5:.1f}" x2="{x1:.1f}" y2="{y + 5:.1f}" '
                         f'stroke="{color}" stroke-width="2"/><line x1="{x2:.1f}" y1="{y - 5:.1f}" x2="{x2:.1f}" '
                         f'y2="{y + 5:.1f}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<circle class="point" cx="{x(cell.score):.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>'
                     f'<text x="{label_w + plot_w + 8}" y="{y + 4:.1f}" class="value">{fmt_num(cell.score)}'
                     f'{DEGENERATE_MARK if ci_degenerate(cell) else ""} {significance_mark(cell)}</text></g>')
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)


def _scoring(cell: Cell) -> str:
    """How the cell was scored (log-likelihood ranking or a generated answer); '' for records that do not say."""
    task = (cell.record or {}).get("task") or {}
    scoring = task.get("scoring") if isinstance(task.get("scoring"), dict) else {}
    if scoring.get("mode"):
        return str(scoring["mode"])
    return "generate" if task.get("output_type") == "generate_until" else ""


def _priority(key: str, order: list[str]) -> tuple:
    return (order.index(key) if key in order else len(order), key)


def factor_points(table: LeaderboardTable) -> dict[tuple[str, str, str, str], list[tuple[Row, Cell]]]:
    """(task, metric, scoring, factor) -> the cells that have that factor, for factors with two or more distinct
    values. A plot holds one task, one metric and one scoring mode: an exact_match from generated answers never
    shares an axis with a log-likelihood acc."""
    panels: dict[tuple[str, str, str], list[tuple[Row, Cell]]] = {}
    for row in table.rows:
        for col, cell in row.cells.items():
            if cell.score is None:
                continue
            task = ((cell.record or {}).get("task") or {}).get("name", col)
            panels.setdefault((str(task), cell.metric, _scoring(cell)), []).append((row, cell))
    order = [*_declared_factors(), *FACTOR_PRIORITY]
    found: dict[tuple[str, str, str, str], list[tuple[Row, Cell]]] = {}
    for (task, metric, scoring), items in sorted(panels.items()):
        for factor in sorted({k for _, c in items for k in c.factors}, key=lambda key: _priority(key, order)):
            with_factor = [(r, c) for r, c in items if c.factors.get(factor) is not None]
            distinct = {str(c.factors[factor]) for _, c in with_factor}
            if 2 <= len(distinct) <= 24:
                found[(task, metric, scoring, factor)] = with_factor
    ordered = sorted(found.items(), key=lambda kv: (_priority(kv[0][3], order), kv[0][0], kv[0][2], kv[0][1]))
    return dict(ordered[:MAX_FACTOR_PLOTS])


def svg_factor(table: LeaderboardTable, task: str, factor: str, items: list[tuple[Row, Cell]]) -> str:
    """Score (with CI) against one training or evaluation factor, for one task, metric and scoring mode.

    Points that differ in anything else are separate series, each with its own colour and a legend entry: on a
    numeric axis (a merge curve, a learning curve, a shots curve) the points sharing every other factor, joined by
    a line; on a categorical axis (method, prompt) the points sharing method, prompt format and shots. Conditions
    every point shares are stated under the title. ▲/▼ mark significant differences from the baseline."""
    numeric = all(isinstance(c.factors[factor], (int, float)) and not isinstance(c.factors[factor], bool)
                  for _, c in items)
    metric = items[0][1].metric
    scoring = _scoring(items[0][1])
    pct = int(table.confidence * 100)

    def series_of(cell: Cell) -> tuple:
        if numeric:
            return tuple(sorted((k, str(v)) for k, v in cell.factors.items() if k != factor))
        return tuple((k, str(cell.factors[k])) for k in SERIES_KEYS if k != factor and k in cell.factors)

    series_keys = sorted({series_of(c) for _, c in items})
    all_keys = {k for key in series_keys for k, _ in key}
    varying = sorted((k for k in all_keys if len({dict(key).get(k) for key in series_keys}) > 1),
                     key=lambda key: _priority(key, FACTOR_PRIORITY))

    def series_name(key: tuple) -> str:
        present = dict(key)
        return ", ".join(f"{k}={present[k]}" for k in varying if k in present)[:60] or "other runs"

    names = [series_name(key) for key in series_keys]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(series_keys))]
    shared = []
    for key in CONDITIONS:
        values = {str(c.factors[key]) for _, c in items if key in c.factors}
        if key != factor and len(values) == 1 and key not in varying:
            shared.append(f"{key}: {values.pop()}")
    shared.append("hover a point for its checkpoint")

    width, left, right, top, plot_h = 560, 62, 16, 50, 210
    axis_y = top + plot_h
    states = {_state(table, r, c) for r, c in items}
    entries = [(_swatch(color), name) for color, name in zip(colors, names)] if len(series_keys) > 1 else []
    entries += _marker_legend(states)
    legend, legend_h = _legend_svg(entries[:10] + ([("", f"+{len(entries) - 10} more series")]
                                                   if len(entries) > 10 else []), 8, axis_y + 54, width - 16)
    height = int(axis_y + 54 + legend_h + 4)
    values = [v for _, c in items for v in (c.score, c.ci_low, c.ci_high) if v is not None]
    ylo, yhi = _range(values)

    def y(v: float) -> float:
        return top + (1 - _scale(v, ylo, yhi)) * plot_h

    if numeric:
        xlo, xhi = _range([float(c.factors[factor]) for _, c in items])

        def x(v: Any, j: int = 0, k: int = 1) -> float:
            return left + _scale(float(v), xlo, xhi) * (width - left - right)
    else:
        cats = sorted({str(c.factors[factor]) for _, c in items}, key=lambda s: (s != "base", s))
        band = (width - left - right) / len(cats)

        def x(v: Any, j: int = 0, k: int = 1) -> float:
            return left + band * (cats.index(str(v)) + 0.5) + (j - (k - 1) / 2) * min(14.0, band / (k + 1))

    scored = f"{task}, {SCORING_TEXT.get(scoring, scoring + ' scoring')}" if scoring else task
    title = f"{scored}: {metric} against {factor}"
    parts = [f'<svg class="plot factor" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" data-task="{esc(task)}" '
             f'data-metric="{esc(metric)}" data-scoring="{esc(scoring)}" data-factor="{esc(factor)}">',
             f'<text x="4" y="18" class="plot-title">{esc(title)}</text>',
             f'<text x="4" y="34" class="subtitle">{esc(" · ".join(shared))}</text>']
    for tick in nice_ticks(ylo, yhi):
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    ymid = top + plot_h / 2
    parts.append(f'<text x="14" y="{ymid:.0f}" transform="rotate(-90 14 {ymid:.0f})" text-anchor="middle" '
                 f'class="axis-label y-label">{esc(metric)} ({pct}% CI)</text>')
    if numeric:
        for tick in nice_ticks(xlo, xhi):
            parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">{tick:g}</text>')
    else:
        for cat in cats:
            parts.append(f'<text x="{x(cat):.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">'
                         f'<title>{esc(cat)}</title>{esc(fit_text(cat, band - 6, SMALL_PX))}</text>')
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" class="axis"/>'
                 f'<text x="{(left + width - right) / 2:.0f}" y="{axis_y + 36}" text-anchor="middle" '
                 f'class="axis-label x-label">{esc({**FACTOR_TEXT, **_declared_factors()}.get(factor, factor))}</text>')
    index = {key: i for i, key in enumerate(series_keys)}
    slots: dict[int, tuple[int, int]] = {id(c): (0, 1) for _, c in items}
    if not numeric:  # categorical x: each point's own place among the points of its category
        for cat in cats:
            at = [c for _, c in sorted(items, key=lambda rc: (index[series_of(rc[1])], rc[0].label))
                  if str(c.factors[factor]) == cat]
            slots.update({id(c): (j, len(at)) for j, c in enumerate(at)})
    for key in series_keys:
        color, name = colors[index[key]], names[index[key]]
        points = sorted([(r, c) for r, c in items if series_of(c) == key], key=lambda rc: (
            float(rc[1].factors[factor]) if numeric else str(rc[1].factors[factor])))
        parts.append(f'<g class="series" data-series="{esc(name)}">')
        if numeric and len(points) > 1:
            path = " ".join(f"{x(c.factors[factor]):.1f},{y(c.score):.1f}" for _, c in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5" opacity="0.7"/>')
        for row, cell in points:
            px, py = x(cell.factors[factor], *slots[id(cell)]), y(cell.score)
            state = _state(table, row, cell)
            tip = (f"{row.label}: {factor}={cell.factors[factor]}, {metric} {fmt_num(cell.score)} {ci_text(cell)}"
                   f" ({name + '; ' if len(series_keys) > 1 else ''}{_state_tip(table, row, cell, state)})")
            if ci_degenerate(cell):
                tip += "\n" + DEGENERATE_NOTE
            parts.append(f'<g class="point-group"><title>{esc(tip)}</title>')
            if cell.ci_low is not None and cell.ci_high is not None:
                parts.append(f'<line x1="{px:.1f}" y1="{y(cell.ci_low):.1f}" x2="{px:.1f}" y2="{y(cell.ci_high):.1f}" '
                             f'stroke="{color}" stroke-width="1.5"/>')
            ring = ' stroke="#1f2328" stroke-width="2"' if state == "baseline" else ""
            parts.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="{color}"{ring} '
                         f'data-state="{state}"/>')
            if state in ("better", "worse"):
                parts.append(f'<text x="{px + 6:.1f}" y="{py - 4:.1f}" style="fill:{COLORS[state]}" class="mark">'
                             f'{UP if state == "better" else DOWN}</text>')
            parts.append("</g>")
        parts.append("</g>")
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)
