"""Text shared by the leaderboard renderers (markdown, page, plots): numbers, marks, CIs, coverage, data-source
badges, HTML escaping and the paragraph that says how the table was computed."""

from __future__ import annotations

import math
from typing import Any

from medbench.leaderboard import Cell, LeaderboardTable, Row
# Shared with the terminal view (the core cannot import this plugin); re-exported for the renderers.
from medbench.leaderboard.display import (DEGENERATE_MARK, DEGENERATE_NOTE, SOURCE_TEXT,  # noqa: F401
                                          any_degenerate, ci_degenerate, plural, source_details, source_text)

UP, DOWN = "▲", "▼"


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def p_text(name: str, value: float | None) -> str:
    """``p=0.012``, ``q<0.001`` (not ``q=<0.001``): a p- or q-value written after its name."""
    shown = fmt_p(value)
    return f"{name}{shown}" if shown.startswith("<") else f"{name}={shown}"


def significance_mark(cell: Cell | None) -> str:
    comparison = cell.comparison if cell else None
    if not comparison or not comparison.significant:
        return ""
    return UP if comparison.direction == "better" else DOWN


def ci_text(cell: Cell) -> str:
    """``[lo, hi]``, marked † when it has zero width (medbench.leaderboard.display says why); '' for no CI."""
    if cell.ci_low is None or cell.ci_high is None:
        return ""
    return f"[{fmt_num(cell.ci_low)}, {fmt_num(cell.ci_high)}]" + (DEGENERATE_MARK if ci_degenerate(cell) else "")


def fmt_cell(cell: Cell | None) -> str:
    """One Markdown cell: score [95% CI] (n) and ▲/▼ for a significant difference from the baseline."""
    if cell is None or cell.score is None:
        return "–"
    if cell.sd is not None or cell.runs > 1:
        return f"{fmt_num(cell.score)} ± {fmt_num(cell.sd)} ({plural(cell.runs, 'run')})"
    text = fmt_num(cell.score)
    ci = ci_text(cell)
    if ci:
        text += f" {ci}"
    elif cell.stderr is not None:
        text += f" ± {fmt_num(cell.stderr)}"
    text += f" (n={cell.n})"
    mark = significance_mark(cell)
    return f"{text} {mark}" if mark else text


def counts_text(table: LeaderboardTable) -> str:
    """``1 checkpoint × 2 tasks from 2 records``."""
    records = sum(len(row.cells) for row in table.rows)
    return (f"{plural(len(table.rows), 'checkpoint')} × {plural(len(table.columns), 'task')} from "
            f"{plural(records, 'record')}")


def coverage_text(row: Row) -> str:
    return f"{row.coverage}/{row.coverage_of} tasks"


def aggregate_text(value: float | None, row: Row) -> str:
    """An aggregate (mean, weighted mean, win rate) with the row's coverage when it lacks some of the tasks."""
    if value is None or row.complete:
        return fmt_num(value)
    return f"{fmt_num(value)} ({coverage_text(row)})"


TEST_NAMES = {"mcnemar-exact": "McNemar exact test", "paired-permutation": "paired permutation test",
              "cluster-permutation": "cluster permutation test"}


def test_name(comparison: Any) -> str:
    """A comparison's test as a person reads it."""
    return TEST_NAMES.get(comparison.test, comparison.test)


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
                 f"Benjamini-Hochberg q ≤ {table.alpha} across {_all(len(tests), 'comparison')} in the table. ")
    else:
        text += "No baseline row, so no paired comparisons (pass --baseline LABEL). "
    if any(c.test == "cluster-permutation" for c in tests) or any(
            cell.ci_method == "cluster-bootstrap" for row in table.rows for cell in row.cells.values()):
        text += ("Where a task names each item's cluster (items written from one patient scenario or condition), "
                 "its CIs resample whole clusters and its tests swap whole clusters: a cluster's items are not "
                 "independent, and per-item intervals and p-values would be too narrow. ")
    text += ("Win rate: HELM's mean win rate over the task columns (the share of other checkpoints each one beats; "
             "ties count half). Weighted: the mean of the scores weighted by items scored. Each aggregate is over the "
             "row's own tasks; a row scored on only k of the N tasks shows \"(k/N tasks)\" and ranks below every "
             "row scored on more tasks, since its mean is not comparable with theirs.")
    lower = [col for col in table.columns
             if any(col in row.cells and not row.cells[col].higher_is_better for row in table.rows)]
    if lower:
        text += (f" Mean and weighted are over the higher-is-better columns: {', '.join(lower)} (lower is better, "
                 f"on another scale) {'counts' if len(lower) == 1 else 'count'} in the win rate only.")
    if any_degenerate(cell for row in table.rows for cell in row.cells.values()):
        text += " " + DEGENERATE_NOTE
    if legend := column_legend(table.columns):
        text += " Column names: TASK, then how it was scored: " + legend + "."
    return text


# What each column-key suffix means (medbench.scoring.column_key, variant_suffix; medbench.generation's suffix).
COLUMN_SUFFIXES = (
    (r"@\d+shot", "@Nshot, with N few-shot examples"),
    (r"@gen(?=@|$)", "@gen, the model answered freely and the choice it named was read (generate mode)"),
    (r"@rationales(?==|@|$)", "@rationales, few-shot examples with their rationales (=FIELD: from that field)"),
    (r"@sys-", "@sys-HASH, under a system prompt"),
    (r"@maj\d+", "@majN, the majority of N sampled answers"),
    (r"@gk-", "@gk-HASH, with generation settings (--gen-kwargs)"),
    (r"@chat(?=@|$)", "@chat, prompts in the model's chat template"),
    (r"@data-", "@data-HASH, on the user's own data file (--data-file), not the task's"),
    (r"@validation$", "@validation, the validation split"),
)


def column_legend(columns: list[str]) -> str:
    """The suffixes the table's columns carry, each said once, in the order they appear in a key."""
    import re

    return "; ".join(text for pattern, text in COLUMN_SUFFIXES if any(re.search(pattern, c) for c in columns))


def _all(count: int, word: str) -> str:
    """``the 1 comparison``, ``all 7 comparisons``."""
    return f"the {plural(count, word)}" if count == 1 else f"all {plural(count, word)}"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clean_num(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))
