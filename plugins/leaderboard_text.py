"""Text shared by the leaderboard renderers (markdown, page, plots): numbers, marks, CIs, coverage, data-source
badges, HTML escaping and the paragraph that says how the table was computed."""

from __future__ import annotations

import math
from typing import Any

from medbench.leaderboard import Cell, LeaderboardTable, Row

UP, DOWN = "▲", "▼"


# How each data-source kind reads on a badge; "bundled" is the project's own sample data, flagged in a warning colour.
SOURCE_TEXT = {"bundled": "bundled sample", "file": "your file", "hub": "hub", "lm-eval": "lm-eval",
               "unknown": "unknown source"}


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def significance_mark(cell: Cell | None) -> str:
    comparison = cell.comparison if cell else None
    if not comparison or not comparison.significant:
        return ""
    return UP if comparison.direction == "better" else DOWN


def ci_text(cell: Cell) -> str:
    if cell.ci_low is None or cell.ci_high is None:
        return ""
    return f"[{fmt_num(cell.ci_low)}, {fmt_num(cell.ci_high)}]"


def fmt_cell(cell: Cell | None) -> str:
    """One Markdown cell: score [95% CI] (n) and ▲/▼ for a significant difference from the baseline."""
    if cell is None or cell.score is None:
        return "–"
    if cell.sd is not None or cell.runs > 1:
        return f"{fmt_num(cell.score)} ± {fmt_num(cell.sd)} ({cell.runs} runs)"
    text = fmt_num(cell.score)
    ci = ci_text(cell)
    if ci:
        text += f" {ci}"
    elif cell.stderr is not None:
        text += f" ± {fmt_num(cell.stderr)}"
    text += f" (n={cell.n})"
    mark = significance_mark(cell)
    return f"{text} {mark}" if mark else text


def coverage_text(row: Row) -> str:
    return f"{row.coverage}/{row.coverage_of} tasks"


def aggregate_text(value: float | None, row: Row) -> str:
    """An aggregate (mean, weighted mean, win rate) with the row's coverage when it lacks some of the tasks."""
    if value is None or row.complete:
        return fmt_num(value)
    return f"{fmt_num(value)} ({coverage_text(row)})"


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


def comparisons(table: LeaderboardTable) -> list[Any]:
    return [c.comparison for r in table.rows for c in r.cells.values() if c.comparison and c.comparison.p is not None]


def method_text(table: LeaderboardTable) -> str:
    tests = comparisons(table)
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


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clean_num(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))
