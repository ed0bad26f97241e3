"""Leaderboard renderers: leaderboard.md (README-ready), leaderboard.json, leaderboard.csv and index.html.

Each task's trivial baselines (majority class, bag-of-words LR, lead-3) appear as reference rows in a section of
their own, badged "reference — not a model": never ranked, never in the checkpoints' table.

index.html is one self-contained static file (no server, no CDN): page/leaderboard.html.j2 rendered by Jinja2 with
autoescape, page/leaderboard.css and page/leaderboard.js inlined, SVG plots drawn here. A sortable, filterable
table with one column per task, 95 % CIs, significant differences from the baseline marked, plots of each score
with its CI and of scores against training factors, and a drill-down into each cell's per-item predictions.
Everything that comes from a record (labels, task names, prompts, predictions) is HTML-escaped; the data the page
scripts read is JSON in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, so no
string can close the block. In leaderboard.csv every text cell that a spreadsheet would read as a formula is
prefixed with a single quote (OWASP's CSV-injection advice); numbers stay numbers.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from markupsafe import Markup

from medbench import hookimpl
from medbench.leaderboard import NOTICE, Cell, LeaderboardTable, Row, data_source, per_item_values
from medbench.leaderboard.references import BADGE, DESCRIPTION, ReferenceCell, reference_notes, reference_text
from medbench.records import atomic_write_json, atomic_write_text

SAMPLES_PER_CELL = 200  # per-item predictions embedded per cell in index.html
PROMPT_CHARS = 4000  # longer prompts are cut in index.html (the samples.jsonl keeps them whole)
MAX_FACTOR_PLOTS = 12
FACTOR_PRIORITY = ["merge.t", "shots", "curriculum.ordering", "method", "step", "prompt"]
UP, DOWN = "▲", "▼"
# How each data-source kind reads on a badge; "bundled" is the project's own sample data, flagged in a warning colour.
SOURCE_TEXT = {"bundled": "bundled sample", "file": "your file", "hub": "hub", "lm-eval": "lm-eval",
               "unknown": "unknown source"}


# ------------------------------------------------------------------------------------------ formatting


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mark(cell: Cell | None) -> str:
    comparison = cell.comparison if cell else None
    if not comparison or not comparison.significant:
        return ""
    return UP if comparison.direction == "better" else DOWN


def _ci_text(cell: Cell) -> str:
    if cell.ci_low is None or cell.ci_high is None:
        return ""
    return f"[{_f(cell.ci_low)}, {_f(cell.ci_high)}]"


def _fmt(cell: Cell | None) -> str:
    """One Markdown cell: score [95% CI] (n) and ▲/▼ for a significant difference from the baseline."""
    if cell is None or cell.score is None:
        return "–"
    if cell.sd is not None or cell.runs > 1:
        return f"{_f(cell.score)} ± {_f(cell.sd)} ({cell.runs} runs)"
    text = _f(cell.score)
    ci = _ci_text(cell)
    if ci:
        text += f" {ci}"
    elif cell.stderr is not None:
        text += f" ± {_f(cell.stderr)}"
    text += f" (n={cell.n})"
    mark = _mark(cell)
    return f"{text} {mark}" if mark else text


def _coverage(row: Row) -> str:
    return f"{row.coverage}/{row.coverage_of} tasks"


def _agg(value: float | None, row: Row) -> str:
    """An aggregate (mean, weighted mean, win rate) with the row's coverage when it lacks some of the tasks."""
    if value is None or row.complete:
        return _f(value)
    return f"{_f(value)} ({_coverage(row)})"


def source_text(source: dict[str, Any]) -> str:
    """A data source as a short badge text: ``bundled sample``, ``hub: org/name@rev``, ``unknown source``."""
    kind = str(source.get("kind") or "unknown")
    text = SOURCE_TEXT.get(kind, kind)
    if kind not in ("bundled", "unknown") and source.get("name"):
        text += f": {source['name']}"
        if source.get("revision"):
            text += f"@{source['revision']}"
    return text


def source_details(source: dict[str, Any]) -> str:
    """The badge's tooltip: the description, then name, sha256 and revision."""
    parts = [str(source["description"])] if source.get("description") else []
    parts += [f"{key}: {source[key]}" for key in ("name", "sha256", "revision") if source.get(key)]
    if not parts and source.get("kind") in (None, "unknown"):
        parts.append("this record does not say where its data came from (written before medbench recorded it)")
    return "\n".join(parts)


def _escape_md(text: Any) -> str:
    return (str(text).replace("&", "&amp;").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", " "))


def _comparisons(table: LeaderboardTable) -> list[Any]:
    return [c.comparison for r in table.rows for c in r.cells.values() if c.comparison and c.comparison.p is not None]


def _method_text(table: LeaderboardTable) -> str:
    tests = _comparisons(table)
    pct = int(round(table.confidence * 100))
    text = (f"Cells: the task's primary metric with its {pct}% CI (Wilson for per-item 0/1 metrics such as acc, "
            f"a {table.bootstrap_iters}-resample percentile bootstrap over items otherwise) and n, the items scored. ")
    if table.baseline is not None:
        text += (f"{UP}/{DOWN}: significantly better/worse than the baseline "
                 f"{table.baseline.label} ({table.baseline.weights_hash[:12]}) on the items both scored "
                 f"(paired on doc_id: McNemar's exact test for 0/1 metrics, a paired permutation test otherwise), "
                 f"Benjamini-Hochberg q ≤ {table.alpha} across all {len(tests)} comparisons in the table. ")
    else:
        text += "No baseline row, so no paired comparisons (pass --baseline LABEL). "
    text += ("Win rate: HELM's mean win rate over the task columns (the share of other checkpoints each one beats; "
             "ties count half). Weighted: the mean of the scores weighted by items scored. Each aggregate is over the "
             "row's own tasks; a row scored on only k of the N tasks shows \"(k/N tasks)\" and ranks below every "
             "row scored on more tasks, since its mean is not comparable with theirs.")
    return text


def _references_markdown(table: LeaderboardTable, info: dict[str, dict[str, Any]]) -> list[str]:
    if not table.references:
        return [f"Note: {_escape_md(note)}" for note in table.reference_notes] + (
            [""] if table.reference_notes else [])
    lines = [f"**Reference baselines** ({BADGE}): {_escape_md(DESCRIPTION)}", "",
             "| reference | " + " | ".join(_escape_md(f"{col} ({', '.join(info[col]['metrics'])})")
                                       for col in table.columns) + " |",
             "|" + "---|" * (len(table.columns) + 1)]
    for ref in table.references:
        lines.append("| " + " | ".join([f"{_escape_md(ref.label)} *({BADGE})*",
                                        *[reference_text(ref.cells.get(col)) for col in table.columns]]) + " |")
    lines.append("")
    lines += [f"- {_escape_md(col)}: {_escape_md(note)}" for col, note in reference_notes(table)]
    lines += [f"- {_escape_md(note)}" for note in table.reference_notes]
    return lines + ([""] if lines[-1] else [])


def render_markdown(table: LeaderboardTable, out_dir: Path) -> Path:
    info = table.column_info()
    header = ["checkpoint", "weights", "win rate", "mean", "weighted",
              *[f"{col} ({', '.join(info[col]['metrics'])})" for col in table.columns]]
    lines = ["| " + " | ".join(map(_escape_md, header)) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        weights = f"`{row.weights_hash[:12]}`" + (" (baseline)" if row.is_baseline else "")
        cells = [_escape_md(row.label), weights, _agg(row.win_rate, row), _agg(row.mean_score(), row),
                 _agg(row.weighted_score(), row)]
        cells += [_fmt(row.cells.get(col)) for col in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + _references_markdown(table, info)
    lines += [_method_text(table), "", "Data sources (per task column):", ""]
    for col in table.columns:
        for source in info[col]["data_sources"]:
            details = source_details(source).replace("\n", "; ")
            lines.append(f"- {_escape_md(col)}: {_escape_md(source_text(source))}"
                         + (f" — {_escape_md(details)}" if details else ""))

    if table.baseline is not None and _comparisons(table):
        lines += ["", f"Differences from the baseline ({_escape_md(table.baseline.label)}), paired items: "
                      "Δ, p, BH q, test.", "",
                  "| checkpoint | " + " | ".join(map(_escape_md, table.columns)) + " |",
                  "|" + "---|" * (len(table.columns) + 1)]
        for row in table.rows:
            if row.is_baseline:
                continue
            cells = []
            for col in table.columns:
                comparison = row.cells[col].comparison if col in row.cells else None
                if comparison is None or comparison.p is None:
                    cells.append(_escape_md(comparison.note) if comparison and comparison.note else "–")
                    continue
                test = "McNemar" if comparison.test == "mcnemar-exact" else "paired permutation"
                extra = f", b={comparison.b} c={comparison.c}" if comparison.b is not None else ""
                cells.append(f"{comparison.delta:+.3f} (p={_p(comparison.p)}, q={_p(comparison.q)}, {test}, "
                             f"n={comparison.n_paired}{extra}) {_mark(row.cells[col])}".rstrip())
            lines.append("| " + " | ".join([_escape_md(row.label), *cells]) + " |")

    if table.groups:
        lines += ["", "Runs that differ only by seed: mean ± sd over the runs.", "",
                  "| group | seeds | " + " | ".join(map(_escape_md, table.columns)) + " |",
                  "|" + "---|" * (len(table.columns) + 2)]
        for group in table.groups:
            seeds = ", ".join(str(s) for s in group.model.get("seeds", []))
            lines.append("| " + " | ".join([_escape_md(group.label), seeds,
                                            *[_fmt(group.cells.get(col)) for col in table.columns]]) + " |")
    lines += [""] + [f"Note: {_escape_md(note)}" for note in table.notes] + ([""] if table.notes else []) + [NOTICE]
    path = out_dir / "leaderboard.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------ JSON, CSV


def render_json(table: LeaderboardTable, out_dir: Path) -> Path:
    path = out_dir / "leaderboard.json"
    atomic_write_json(path, table.as_dict())
    return path


CSV_FIELDS = ["kind", "checkpoint", "weights_hash", "is_baseline", "seed", "column", "task", "metric", "score",
              "ci_low", "ci_high", "ci_method", "n", "stderr", "sd", "runs", "baseline", "test", "n_paired", "delta",
              "delta_ci_low", "delta_ci_high", "p_value", "q_value", "significant", "direction", "b", "c",
              "win_rate", "mean", "weighted_mean", "tasks_scored", "tasks_total", "data_hash", "data_source_kind",
              "data_source_name", "data_source_version", "data_source_description", "created", "record"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading single quote (OWASP); numbers, booleans
    and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_rows(table: LeaderboardTable, rows: list[Row]):
    for row in rows:
        for col in table.columns:
            cell = row.cells.get(col)
            if cell is None:
                continue
            comparison = cell.comparison
            record = cell.record or {}
            task = record.get("task") or {}
            source = data_source(cell.record)
            yield {
                "kind": row.kind, "checkpoint": row.label, "weights_hash": row.weights_hash,
                "is_baseline": row.is_baseline, "seed": row.seed if row.kind == "run" else
                " ".join(str(s) for s in row.model.get("seeds", [])),
                "column": col, "task": task.get("name", col), "metric": cell.metric, "score": cell.score,
                "ci_low": cell.ci_low, "ci_high": cell.ci_high, "ci_method": cell.ci_method, "n": cell.n,
                "stderr": cell.stderr, "sd": cell.sd, "runs": cell.runs,
                "baseline": table.baseline.label if table.baseline and comparison else "",
                "test": comparison.test if comparison else "", "n_paired": comparison.n_paired if comparison else "",
                "delta": comparison.delta if comparison else "",
                "delta_ci_low": comparison.ci_low if comparison else "",
                "delta_ci_high": comparison.ci_high if comparison else "",
                "p_value": comparison.p if comparison else "", "q_value": comparison.q if comparison else "",
                "significant": comparison.significant if comparison else "",
                "direction": comparison.direction if comparison else "",
                "b": comparison.b if comparison and comparison.b is not None else "",
                "c": comparison.c if comparison and comparison.c is not None else "",
                "win_rate": row.win_rate, "mean": row.mean_score(), "weighted_mean": row.weighted_score(),
                "tasks_scored": row.coverage, "tasks_total": row.coverage_of,
                "data_hash": task.get("data_hash", ""), "data_source_kind": source.get("kind"),
                "data_source_name": source.get("name"),
                "data_source_version": source.get("sha256") or source.get("revision"),
                "data_source_description": source.get("description"), "created": record.get("created", ""),
                "record": cell.record_path,
            }


def render_csv(table: LeaderboardTable, out_dir: Path) -> Path:
    """One line per (checkpoint, column): tidy, for pandas or a spreadsheet. Seed groups have kind seed-group."""
    buffer = io.StringIO()
    # RFC 4180 line ends: Python's csv quotes a field holding a CR only when the terminator has one.
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for line in _csv_rows(table, table.rows + table.groups):
        writer.writerow({k: "" if v is None else csv_safe(v if isinstance(v, (int, float)) else str(v))
                         for k, v in line.items()})
    path = out_dir / "leaderboard.csv"
    atomic_write_text(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------------ SVG plots


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = start
    while value <= hi + 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


COLORS = {"better": "#1a7f37", "worse": "#cf222e", "baseline": "#0550ae", "other": "#57606a"}
PALETTE = ["#0969da", "#bc4c00", "#8250df", "#1a7f37", "#cf222e", "#4d2d00", "#bf3989", "#0a3069"]


def _state(row: Row, cell: Cell) -> str:
    if row.is_baseline:
        return "baseline"
    mark = _mark(cell)
    return "better" if mark == UP else "worse" if mark == DOWN else "other"


STATE_TEXT = {"baseline": "baseline", "better": "significantly better than the baseline",
              "worse": "significantly worse than the baseline", "other": "not significantly different"}
# What each factor's axis means, spelled out under the axis.
FACTOR_TEXT = {"method": "method (trainer plugin; base = not trained)",
               "prompt": "prompt format (raw text or the model's chat template)",
               "shots": "few-shot examples in the prompt", "step": "training step",
               "merge.t": "merge t (interpolation weight)", "curriculum.ordering": "curriculum ordering"}
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
        need = 22 + 6.2 * len(name)
        if x > x0 and x + need > x0 + width:
            x, y = x0, y + line_h
        parts.append(f'<g class="legend-item" data-series="{_e(name)}" transform="translate({x:.1f},{y:.1f})">'
                     f'{swatch}<text x="16" y="4" class="legend">{_e(name)}</text></g>')
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
    label_w, plot_w, value_w, row_h, top = 230, 340, 66, 22, 46
    width = label_w + plot_w + value_w
    axis_y = top + row_h * len(rows) + 4
    states = {_state(r, r.cells[col]) for r in rows}
    entries = [(_swatch(COLORS[s]), STATE_TEXT[s]) for s in ("baseline", "better", "worse", "other") if s in states]
    has_base_line = table.baseline is not None and col in table.baseline.cells and \
        table.baseline.cells[col].score is not None
    if has_base_line:
        entries.append(('<line x1="0" y1="0" x2="10" y2="0" class="baseline-line"/>', "dashed: the baseline's score"))
    legend, legend_h = _legend_svg(entries, 8, axis_y + 52, width - 16)
    height = int(axis_y + 52 + legend_h + 4)

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    parts = [f'<svg class="plot forest" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" data-column="{_e(col)}" data-metric="{_e(metric)}" '
             f'aria-label="{_e(col)}: {_e(metric)} with {pct}% CI per checkpoint">',
             f'<text x="4" y="18" class="plot-title">{_e(col)} — {_e(metric)} with {pct}% CI</text>']
    for tick in _nice_ticks(lo, hi):
        tx = x(tick)
        parts.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{axis_y}" class="grid"/>'
                     f'<text x="{tx:.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">{tick:g}</text>')
    parts.append(f'<text x="{label_w + plot_w / 2:.0f}" y="{axis_y + 34}" text-anchor="middle" '
                 f'class="axis-label x-label">{_e(metric)} ({pct}% CI)</text>'
                 f'<text x="{label_w - 8}" y="{top - 8}" text-anchor="end" class="axis-label y-label">'
                 'checkpoint</text>')
    if has_base_line:
        bx = x(table.baseline.cells[col].score)
        parts.append(f'<line x1="{bx:.1f}" y1="{top - 6}" x2="{bx:.1f}" y2="{axis_y}" class="baseline-line"/>')
    for i, row in enumerate(rows):
        cell = row.cells[col]
        y = top + i * row_h + row_h / 2
        color = COLORS[_state(row, cell)]
        tip = f"{row.label}: {_f(cell.score)} {_ci_text(cell)} n={cell.n}"
        if cell.comparison and cell.comparison.p is not None:
            tip += f"; Δ={cell.comparison.delta:+.3f} q={_p(cell.comparison.q)}"
        parts.append(f'<g class="point-group"><title>{_e(tip)}</title>'
                     f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end" class="label">'
                     f'{_e(_short(row.label, 34))}</text>')
        if cell.ci_low is not None and cell.ci_high is not None:
            x1, x2 = x(cell.ci_low), x(cell.ci_high)
            parts.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{color}" '
                         f'stroke-width="2"/><line x1="{x1:.1f}" y1="{y - 5:.1f}" x2="{x1:.1f}" y2="{y + 5:.1f}" '
                         f'stroke="{color}" stroke-width="2"/><line x1="{x2:.1f}" y1="{y - 5:.1f}" x2="{x2:.1f}" '
                         f'y2="{y + 5:.1f}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<circle class="point" cx="{x(cell.score):.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>'
                     f'<text x="{label_w + plot_w + 8}" y="{y + 4:.1f}" class="value">{_f(cell.score)} '
                     f'{_mark(cell)}</text></g>')
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


def _priority(key: str) -> tuple:
    return (FACTOR_PRIORITY.index(key) if key in FACTOR_PRIORITY else len(FACTOR_PRIORITY), key)


def _factor_points(table: LeaderboardTable) -> dict[tuple[str, str, str, str], list[tuple[Row, Cell]]]:
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
    found: dict[tuple[str, str, str, str], list[tuple[Row, Cell]]] = {}
    for (task, metric, scoring), items in sorted(panels.items()):
        for factor in sorted({k for _, c in items for k in c.factors}, key=_priority):
            with_factor = [(r, c) for r, c in items if c.factors.get(factor) is not None]
            distinct = {str(c.factors[factor]) for _, c in with_factor}
            if 2 <= len(distinct) <= 24:
                found[(task, metric, scoring, factor)] = with_factor
    ordered = sorted(found.items(), key=lambda kv: (_priority(kv[0][3]), kv[0][0], kv[0][2], kv[0][1]))
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
    varying = sorted((k for k in all_keys if len({dict(key).get(k) for key in series_keys}) > 1), key=_priority)

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
    states = {_state(r, c) for r, c in items}
    entries = [(_swatch(color), name) for color, name in zip(colors, names)] if len(series_keys) > 1 else []
    entries += _marker_legend(states)
    legend, legend_h = _legend_svg(entries[:10] + ([("", f"+{len(entries) - 10} more series")]
                                                   if len(entries) > 10 else []), 8, axis_y + 54, width - 16)
    height = int(axis_y + 54 + legend_h + 4)
    values = [v for _, c in items for v in (c.score, c.ci_low, c.ci_high) if v is not None]
    ylo, yhi = _range(values)

    def y(v: float) -> float:
        return top + (1 - (v - ylo) / (yhi - ylo)) * plot_h

    if numeric:
        xlo, xhi = _range([float(c.factors[factor]) for _, c in items])

        def x(v: Any, j: int = 0, k: int = 1) -> float:
            return left + (float(v) - xlo) / (xhi - xlo) * (width - left - right)
    else:
        cats = sorted({str(c.factors[factor]) for _, c in items}, key=lambda s: (s != "base", s))
        band = (width - left - right) / len(cats)

        def x(v: Any, j: int = 0, k: int = 1) -> float:
            return left + band * (cats.index(str(v)) + 0.5) + (j - (k - 1) / 2) * min(14.0, band / (k + 1))

    scored = f"{task}, {SCORING_TEXT.get(scoring, scoring + ' scoring')}" if scoring else task
    title = f"{scored}: {metric} against {factor}"
    parts = [f'<svg class="plot factor" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" data-task="{_e(task)}" '
             f'data-metric="{_e(metric)}" data-scoring="{_e(scoring)}" data-factor="{_e(factor)}">',
             f'<text x="4" y="18" class="plot-title">{_e(title)}</text>',
             f'<text x="4" y="34" class="subtitle">{_e(" · ".join(shared))}</text>']
    for tick in _nice_ticks(ylo, yhi):
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>')
    ymid = top + plot_h / 2
    parts.append(f'<text x="14" y="{ymid:.0f}" transform="rotate(-90 14 {ymid:.0f})" text-anchor="middle" '
                 f'class="axis-label y-label">{_e(metric)} ({pct}% CI)</text>')
    if numeric:
        for tick in _nice_ticks(xlo, xhi):
            parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">{tick:g}</text>')
    else:
        for cat in cats:
            parts.append(f'<text x="{x(cat):.1f}" y="{axis_y + 16}" text-anchor="middle" class="tick">'
                         f'{_e(_short(cat, 16))}</text>')
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" class="axis"/>'
                 f'<text x="{(left + width - right) / 2:.0f}" y="{axis_y + 36}" text-anchor="middle" '
                 f'class="axis-label x-label">{_e(FACTOR_TEXT.get(factor, factor))}</text>')
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
        parts.append(f'<g class="series" data-series="{_e(name)}">')
        if numeric and len(points) > 1:
            path = " ".join(f"{x(c.factors[factor]):.1f},{y(c.score):.1f}" for _, c in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5" opacity="0.7"/>')
        for row, cell in points:
            px, py = x(cell.factors[factor], *slots[id(cell)]), y(cell.score)
            state = _state(row, cell)
            tip = (f"{row.label}: {factor}={cell.factors[factor]}, {metric} {_f(cell.score)} {_ci_text(cell)}"
                   f" ({name}; {STATE_TEXT[state]})")
            parts.append(f'<g class="point-group"><title>{_e(tip)}</title>')
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


# ------------------------------------------------------------------------------------------ HTML


def json_for_script(data: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survives, so neither '</script>' nor '<!--' can
    appear; U+2028/2029 are escaped too. The result is still valid JSON (they become \\u escapes in strings)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str, allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _cell_title(table: LeaderboardTable, cell: Cell) -> str:
    record = cell.record or {}
    task = record.get("task") or {}
    versions = record.get("versions") or {}
    lines = [f"{cell.metric} = {_f(cell.score)}"
             + (f", {int(table.confidence * 100)}% CI {_ci_text(cell)} ({cell.ci_method})" if _ci_text(cell) else "")
             + f", n={cell.n}"]
    comparison = cell.comparison
    if comparison is not None:
        if comparison.p is not None:
            test = "McNemar exact" if comparison.test == "mcnemar-exact" else "paired permutation test"
            counts = f", b={comparison.b} c={comparison.c}" if comparison.b is not None else ""
            lines.append(f"vs baseline: Δ={comparison.delta:+.3f} on {comparison.n_paired} paired items, {test}"
                         f"{counts}, p={_p(comparison.p)}, BH q={_p(comparison.q)}"
                         + (" (significant)" if comparison.significant else ""))
        elif comparison.note:
            lines.append(f"vs baseline: {comparison.note}")
    lines.append(f"data {task.get('split', '?')} split, hash {task.get('data_hash', '?')}, "
                 f"{task.get('num_fewshot', 0)}-shot, task v{task.get('version', '?')} ({task.get('plugin', '?')})")
    lines.append("config " + json.dumps(record.get("config") or {}, sort_keys=True, default=str))
    lines.append("versions " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines.append(f"scored {record.get('created', '?')}" + (f", re-scored {record['rescored']}"
                                                            if record.get("rescored") else ""))
    lines.append("click for the per-item predictions")
    return "\n".join(lines)


# The user turn of common chat templates (ChatML, Llama 3, Gemma, Phi-3, Llama 2 / Mistral): the drill-down shows
# the question first and folds the system preamble and turn markers away.
_USER_TURNS = [re.compile(p, re.S) for p in (
    r"<\|im_start\|>user\n(.*?)<\|im_end\|>",
    r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
    r"<start_of_turn>user\n(.*?)<end_of_turn>",
    r"<\|user\|>\n(.*?)<\|end\|>",
    r"\[INST\](?:\s*<<SYS>>.*?<</SYS>>)?\s*(.*?)\s*\[/INST\]",
)]


def chat_question(prompt: str) -> str | None:
    """The last user turn of a chat-template prompt (the question; earlier turns are few-shot examples), or None
    when no known template matches."""
    for pattern in _USER_TURNS:
        turns = pattern.findall(prompt)
        if turns and turns[-1].strip():
            return turns[-1].strip()
    return None


def _choice_labels(table: LeaderboardTable) -> dict[tuple[str, str], dict[Any, list[str]]]:
    """(task, data hash) -> doc_id -> choice labels, from every sample on the page that lists them: a record
    written before samples carried their choices borrows them from one scored on the same data."""
    labels: dict[tuple[str, str], dict[Any, list[str]]] = {}
    for row in table.rows:
        for cell in row.cells.values():
            task = (cell.record or {}).get("task") or {}
            known = labels.setdefault((str(task.get("name")), str(task.get("data_hash"))), {})
            for sample in cell.samples:
                if isinstance(sample.get("choices"), list):
                    known.setdefault(sample.get("doc_id"), [str(c) for c in sample["choices"]])
    return labels


def answer_text(value: Any, choices: list[str] | None) -> Any:
    """Gold or prediction in one format everywhere: ``3 · D`` for a choice index whose label is known, the bare
    index when no record of the task names its choices, ``–`` for no answer (a generation naming no choice)."""
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool) and choices and 0 <= value < len(choices):
        return f"{value} · {choices[value]}"
    return value


def _samples_payload(table: LeaderboardTable, row: Row, col: str, cell: Cell, prompts: dict[str, int],
                     prompt_list: list[str], labels: dict[tuple[str, str], dict[Any, list[str]]] | None = None
                     ) -> dict[str, Any]:
    task = (cell.record or {}).get("task") or {}
    known = (labels or {}).get((str(task.get("name")), str(task.get("data_hash"))), {})
    chat = bool(((cell.record or {}).get("config") or {}).get("chat_template"))

    def text(sample: dict[str, Any], key: str) -> Any:
        choices = sample.get("choices") if isinstance(sample.get("choices"), list) else known.get(sample.get("doc_id"))
        return answer_text(sample.get(key), choices)

    def prompt_index(prompt: str) -> int:
        if len(prompt) > PROMPT_CHARS:
            prompt = prompt[:PROMPT_CHARS] + f"… [{len(prompt) - PROMPT_CHARS} more characters in samples.jsonl]"
        if prompt not in prompts:
            prompts[prompt] = len(prompt_list)
            prompt_list.append(prompt)
        return prompts[prompt]

    base_preds: dict[Any, Any] = {}
    if table.baseline is not None and table.baseline is not row and col in table.baseline.cells:
        base_preds = {s.get("doc_id"): text(s, "pred") for s in table.baseline.cells[col].samples}
    # The per-item column: the metric's own per-item value (acc), else whether the prediction equals the gold.
    per_item = per_item_values(cell.metric, cell.samples) is not None
    out = []
    for sample in cell.samples[:SAMPLES_PER_CELL]:
        prompt = sample.get("prompt")
        prompt = "" if prompt is None else str(prompt)
        value = sample.get(cell.metric) if per_item else (
            float(sample["gold"] == sample["pred"]) if "gold" in sample and "pred" in sample else None)
        logliks = sample.get("logliks")
        item = {"id": sample.get("doc_id"), "gold": text(sample, "gold"), "pred": text(sample, "pred"),
                "v": value if isinstance(value, (int, float)) else None, "p": prompt_index(prompt),
                "ll": [round(float(v), 3) for v in logliks] if isinstance(logliks, list) else None}
        question = chat_question(prompt) if chat else None
        if question is not None and question != prompt:
            item["q"] = prompt_index(question)  # shown first; the whole chat-wrapped prompt stays one click away
        if base_preds:
            item["bp"] = base_preds.get(sample.get("doc_id"))
        if sample.get("response") is not None:  # generated text the prediction was extracted from
            item["r"] = str(sample["response"])[:PROMPT_CHARS]
        out.append(item)
    comparison = cell.comparison.as_dict() if cell.comparison else None
    return {"row": row.label, "weights": row.weights_hash, "column": col, "metric": cell.metric,
            "item_metric": cell.metric if per_item else "correct",
            "score": cell.score, "ci": [cell.ci_low, cell.ci_high], "ci_method": cell.ci_method, "n": cell.n,
            "total": len(cell.samples), "samples": out, "comparison": comparison,
            "baseline": table.baseline.label if base_preds else None,
            "provenance": (cell.as_dict().get("provenance") if cell.record else None)}


def _value_html(value: Any) -> str:
    """A detail value: a mapping (a training config) as a key/value table, anything else as escaped text."""
    if isinstance(value, dict):
        return '<table class="kv">' + "".join(f"<tr><th>{_e(k)}</th><td>{_value_html(v)}</td></tr>"
                                              for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "</table>"
    if isinstance(value, str):
        return _e(value)
    return _e(json.dumps(value, default=str))  # true/false/null and lists as they read in the config


def _dl(items: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_value_html(v)}</dd>" for k, v in items
                            if v not in (None, "", {}, [])) + "</dl>"


def _row_details(row: Row) -> list[tuple[str, Any]]:
    model = row.model or {}
    items: list[tuple[str, Any]] = [("weights", row.weights_hash), ("ref", model.get("ref")), ("kind", model.get("kind")),
                                    ("base", model.get("base_ref")), ("parameters", model.get("parameters")),
                                    ("seed", row.seed)]
    if row.training:
        training = row.training
        items += [("trained by", training.get("plugin")), ("run", training.get("run_id")),
                  ("step", training.get("step")), ("parent", training.get("parent_model"))]
        for key in ("config", "trainer_config"):
            if isinstance(training.get(key), dict) and training[key]:
                items.append((key.replace("_", " "), training[key]))
    return items


def _badge(source: dict[str, Any]) -> str:
    """A data-source badge; its tooltip carries the description (escaped like every other record text)."""
    kind = str(source.get("kind") or "unknown")
    css = kind if kind in SOURCE_TEXT else "other"
    return (f'<span class="src src-{css}" title="{_e(source_details(source))}">'
            f'{_e(_short(source_text(source), 48))}</span>')


def _mixed_columns(info: dict[str, dict[str, Any]]) -> set[str]:
    return {col for col, entry in info.items() if len(entry["data_sources"]) > 1}


def _aggregate_cell(value: float | None, row: Row, title: str = "") -> str:
    """win rate / mean / weighted: sorted by coverage tier first (data-tier), so a partial row never sorts above
    a more complete one; a partial row's aggregate shows its coverage."""
    cov = "" if row.complete else f'<span class="cov">{_e(_coverage(row))}</span>'
    tip = f' title="{_e(title)}"' if title else ""
    css = "num" if row.complete else "num partial"
    return (f'<td class="{css}" data-tier="{row.tier}" data-value="{_e(_clean_num(value))}"{tip}>{_f(value)}{cov}'
            f'</td>')


def _score_cell(table: LeaderboardTable, row: Row, col: str, cell: Cell | None, cell_id: str | None,
                badge: bool = False) -> str:
    if cell is None or cell.score is None:
        return f'<td class="score-cell empty" data-col="{_e(col)}" data-value="">–</td>'
    mark = _mark(cell)
    state = "better" if mark == UP else "worse" if mark == DOWN else ""
    attrs = f' data-cell="{_e(cell_id)}" tabindex="0"' if cell_id else ""
    parts = [f'<td class="score-cell {state}" data-col="{_e(col)}" data-value="{cell.score!r}"{attrs} '
             f'title="{_e(_cell_title(table, cell) if cell.record else "")}">',
             f'<span class="score">{_f(cell.score)}</span>']
    if mark:
        parts.append(f' <span class="mark {state}" aria-label="significantly {state} than the baseline">{mark}</span>')
    if cell.sd is not None or cell.runs > 1:
        parts.append(f'<span class="ci">± {_f(cell.sd)} sd</span><span class="n">{cell.runs} runs</span>')
    else:
        ci = _ci_text(cell)
        if ci:
            parts.append(f'<span class="ci">{_e(ci)}</span>')
        parts.append(f'<span class="n">n={cell.n}</span>')
    if badge and cell.record is not None:  # a column whose cells come from different data: each says its own
        parts.append(_badge(data_source(cell.record)))
    parts.append("</td>")
    return "".join(parts)


def _reference_cell(col: str, cell: ReferenceCell | None) -> str:
    if cell is None:
        return f'<td class="ref-cell empty" data-col="{_e(col)}">–</td>'
    tip = f' title="{_e(cell.note)}"' if cell.note else ""
    if cell.score is None:
        return (f'<td class="ref-cell na" data-col="{_e(col)}"{tip}>–<span class="ref-note">not comparable'
                '</span></td>')
    return (f'<td class="ref-cell" data-col="{_e(col)}" data-value="{cell.score!r}"{tip}><span class="score">'
            f'{_f(cell.score)}</span><span class="n">n={cell.n} · {_e(cell.scope)}</span></td>')


def _references_html(table: LeaderboardTable, info: dict[str, dict[str, Any]]) -> str:
    """The reference rows in a table of their own (not sortable, not among the checkpoints), with their notes."""
    notes = "".join(f"<li>{_e(col)}: {_e(note)}</li>" for col, note in reference_notes(table))
    notes += "".join(f"<li>{_e(note)}</li>" for note in table.reference_notes)
    notes = f'<ul class="note">{notes}</ul>' if notes else ""
    if not table.references:
        return notes
    head = "".join(f'<th data-col="{_e(col)}"><span class="th-name">{_e(col)}</span>'
                   f'<small>{_e(", ".join(info[col]["metrics"]))}</small></th>' for col in table.columns)
    body = "".join(f'<tr class="reference" data-reference="{_e(ref.key)}"><th scope="row" class="rowlabel">'
                   f'{_e(ref.label)}<span class="tag ref">{_e(BADGE)}</span></th>'
                   + "".join(_reference_cell(col, ref.cells.get(col)) for col in table.columns) + "</tr>"
                   for ref in table.references)
    return (f'<h2 id="references-title">Reference baselines <span class="tag ref">{_e(BADGE)}</span></h2>'
            f'<p class="note">{_e(DESCRIPTION)}</p><div class="table-wrap"><table id="references" '
            f'class="references" aria-labelledby="references-title"><thead><tr><th>reference</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{notes}")


def _header(table: LeaderboardTable, info: dict[str, dict[str, Any]], first: str) -> str:
    tiers = " (rows scored on fewer tasks always sort below rows scored on more)"
    cells = [f'<th data-sort-type="text" data-first-dir="ascending"><span class="th-name">{_e(first)}</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="HELM mean win rate over the row\'s task columns{tiers}">'
             '<span class="th-name">win rate</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="mean over the row\'s tasks{tiers}">'
             '<span class="th-name">mean</span></th>',
             f'<th data-sort-type="num" data-tiered="1" title="mean weighted by items scored{tiers}">'
             '<span class="th-name">weighted</span></th>']
    for col in table.columns:
        direction = "descending" if info[col]["higher_is_better"] else "ascending"
        sources = info[col]["data_sources"]
        badge = _badge(sources[0]) if len(sources) == 1 else (
            '<span class="src src-mixed" title="the rows of this column were scored on data from different sources; '
            'each cell shows its own">mixed sources</span>')
        cells.append(f'<th data-sort-type="num" data-first-dir="{direction}" data-col="{_e(col)}">'
                     f'<span class="th-name">{_e(col)}</span><small>{_e(", ".join(info[col]["metrics"]))}</small>'
                     f'{badge}</th>')
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


PAGE_DIR = Path(__file__).parent / "page"  # the page's template, CSS and JS: package data, inlined on render


@functools.lru_cache(maxsize=None)
def _page_file(name: str) -> str:
    return (PAGE_DIR / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _page_template():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(loader=FileSystemLoader(PAGE_DIR), autoescape=True, undefined=StrictUndefined,
                              keep_trailing_newline=True)
    return environment.get_template("leaderboard.html.j2")


def render_html(table: LeaderboardTable, out_dir: Path) -> Path:
    info = table.column_info()
    mixed = _mixed_columns(info)
    prompts: dict[str, int] = {}
    prompt_list: list[str] = []
    cells_data: dict[str, Any] = {}
    labels = _choice_labels(table)
    body = []
    for r_index, row in enumerate(table.rows):
        classes = "baseline" if row.is_baseline else ""
        search = f"{row.label} {row.weights_hash}".lower()
        tag = '<span class="tag">baseline</span>' if row.is_baseline else ""
        label = (f'<th scope="row" class="rowlabel" data-value="{_e(row.label)}"><details><summary>{_e(row.label)}'
                 f'{tag}</summary>{_dl(_row_details(row))}</details></th>')
        partial = "" if row.complete else (f"over this row's {_coverage(row)} only: not comparable with rows scored "
                                           "on more tasks")
        cells = [label, _aggregate_cell(row.win_rate, row, partial), _aggregate_cell(row.mean_score(), row, partial),
                 _aggregate_cell(row.weighted_score(), row, partial)]
        for c_index, col in enumerate(table.columns):
            cell = row.cells.get(col)
            cell_id = None
            if cell is not None and cell.score is not None:
                cell_id = f"c{r_index}_{c_index}"
                cells_data[cell_id] = _samples_payload(table, row, col, cell, prompts, prompt_list, labels)
            cells.append(_score_cell(table, row, col, cell, cell_id, badge=col in mixed))
        body.append(f'<tr class="{classes}" data-key="{_e(row.key)}" data-label="{_e(row.label)}" '
                    f'data-search="{_e(search)}" data-coverage="{row.coverage}/{row.coverage_of}">'
                    + "".join(cells) + "</tr>")

    group_rows = []
    for group in table.groups:
        seeds = ", ".join(str(s) for s in group.model.get("seeds", []))
        cells = [f'<th scope="row" class="rowlabel" data-value="{_e(group.label)}">{_e(group.label)}'
                 f'<span class="tag group">seeds {_e(seeds)}</span></th>',
                 '<td class="num" data-value="">–</td>', _aggregate_cell(group.mean_score(), group),
                 _aggregate_cell(group.weighted_score(), group)]
        cells += [_score_cell(table, group, col, group.cells.get(col), None) for col in table.columns]
        group_rows.append(f'<tr data-label="{_e(group.label)}">' + "".join(cells) + "</tr>")

    forest = "".join(svg_forest(table, col) for col in table.columns)
    factor_plots = "".join(svg_factor(table, task, factor, items)
                           for (task, _metric, _scoring, factor), items in _factor_points(table).items())
    data = _jsonable({"cells": cells_data, "prompts": prompt_list, "columns": table.columns,
                      "baseline": table.baseline.label if table.baseline else None, "notice": NOTICE})
    # Fragments built above escape their own text (_e); everything else is escaped by the template.
    page = _page_template().render(
        css=Markup(_page_file("leaderboard.css")), js=Markup(_page_file("leaderboard.js")), notice=NOTICE,
        n_rows=len(table.rows), n_columns=len(table.columns), n_records=sum(len(r.cells) for r in table.rows),
        baseline=table.baseline, generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        columns=table.columns, header=Markup(_header(table, info, "checkpoint")), body=Markup("".join(body)),
        references=Markup(_references_html(table, info)), method=_method_text(table), notes=table.notes,
        groups=Markup("".join(group_rows)), groups_header=Markup(_header(table, info, "group")),
        confidence_pct=int(table.confidence * 100), forest=Markup(forest), factor_plots=Markup(factor_plots),
        data_json=Markup(json_for_script(data)))
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path


def _clean_num(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


@hookimpl
def register_leaderboard_renderers(register):
    register("md", render_markdown)
    register("json", render_json)
    register("csv", render_csv)
    register("html", render_html)
