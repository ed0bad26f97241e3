"""The comparisons a sweep's study reports, each paired on the same items and seed.

The plan (medbench.planning) lists the comparisons: a cell against its baseline cell, which differs from it in one
factor only (seed included, so runs pair with their own seed). For every task both scored, each checkpoint of the
cell is compared with the baseline cell's final checkpoint on the items both scored: McNemar's exact test for
per-item 0/1 metrics, a paired permutation test otherwise (medbench.leaderboard.compare_cells). A variant column of a
task (generate mode, rationale demonstrations) pairs with the same task. Benjamini-Hochberg adjusts the p-values
across the whole report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from medbench.leaderboard import build_table, compare_cells, stats
from medbench.metrics import metric_registry
from medbench.records import atomic_write_json, atomic_write_text

ALPHA = 0.05


@dataclass
class Entry:
    column: str
    task: str
    label: str
    factors: dict[str, Any]
    cell: Any  # medbench.leaderboard.Cell


def _factors(cell: Any) -> dict[str, Any]:
    extra = (cell.record or {}).get("extra") or {}
    out = dict(cell.factors or {})
    for key, value in list(out.items()):  # "merge.t" is also reachable as "t"
        out.setdefault(key.rsplit(".", 1)[-1], value)
    out.update(extra.get("factors") or {})
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _score(cell: Any) -> str:
    text = _fmt(cell.score)
    return text + (f" [{_fmt(cell.ci_low)}, {_fmt(cell.ci_high)}]" if cell.ci_low is not None else "")


def _entries(sweep: Any) -> dict[str, list[Entry]]:
    """Scored checkpoints of this sweep's cells, by cell key."""
    keys = {cell.key for cell in sweep.cells}
    table = build_table(sweep.leaderboard_dir, baseline="none")
    by_cell: dict[str, list[Entry]] = {}
    for row in table.rows:
        for column, cell in row.cells.items():
            record = cell.record or {}
            extra = record.get("extra") or {}
            if extra.get("sweep") != sweep.recipe.name or extra.get("cell") not in keys:
                continue
            task = (record.get("task") or {}).get("name") or column
            by_cell.setdefault(extra["cell"], []).append(Entry(column, task, row.label, _factors(cell), cell))
    return by_cell


def study_report(sweep: Any, alpha: float = ALPHA) -> dict[str, Any]:
    """Every planned comparison, paired per task; writes report.md and report.json in the sweep directory."""
    recipe = sweep.recipe
    by_cell = _entries(sweep)
    labels = {cell.key: cell.label for cell in sweep.cells}
    registry = metric_registry()
    rows, tested = [], []
    for planned in sweep.comparisons:
        base_entries = by_cell.get(planned.baseline, [])
        for member in sorted(by_cell.get(planned.cell, []), key=lambda e: (e.task, e.label)):
            # The baseline cell's score on the same task (its last checkpoint by label, when it has several).
            candidates = [b for b in base_entries if b.task == member.task]
            if not candidates:
                continue
            base = sorted(candidates, key=lambda b: b.label)[-1]
            comparison = compare_cells(base.cell, member.cell, registry) if member.cell.score is not None else None
            if comparison is not None and comparison.p is not None:
                tested.append(comparison)
            rows.append({"task": member.task, "column": member.column, "factor": planned.factor,
                         "level": planned.level, "baseline_level": planned.baseline_level,
                         "cell": member.label, "baseline": base.label, "cell_key": planned.cell,
                         "baseline_key": planned.baseline, "factors": member.factors,
                         "metric": member.cell.metric, "score": member.cell.score, "n": member.cell.n,
                         "ci": [member.cell.ci_low, member.cell.ci_high], "baseline_score": base.cell.score,
                         "comparison": comparison, "_cells": (member.cell, base.cell)})
    for comparison, q in zip(tested, stats.benjamini_hochberg([c.p for c in tested])):
        comparison.q = q
        comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    lines = [f"# {recipe.name} · scale {sweep.scale}", ""]
    if recipe.study:
        lines += [recipe.study, ""]
    lines += [f"Each row: a cell against its baseline cell, which differs in one factor only (seed included), on "
              f"the same items. Test: McNemar exact (0/1 metrics) or paired permutation test (p), paired bootstrap "
              f"CI of the difference; q: Benjamini-Hochberg across all {len(tested)} tests of this report; "
              f"* q ≤ {alpha}.", ""]
    header = ["task", "comparison", "cell", "metric", "score [95% CI]", "baseline", "n", "Δ", "p", "q"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        comparison = row["comparison"]
        delta, p, q = "–", "–", "–"
        if comparison is not None:
            delta = (f"{comparison.delta:+.3f}" if comparison.delta is not None else "–") + \
                ("*" if comparison.significant else "")
            p, q = _fmt(comparison.p), _fmt(comparison.q)
            if comparison.note:
                delta = comparison.note
        member, base = row["_cells"]
        lines.append("| " + " | ".join([
            row["column"], f"{row['factor']}: {row['level']} vs {row['baseline_level']}", row["cell"], row["metric"],
            _score(member), _score(base), str(row["n"]), delta, p, q]) + " |")
    if sweep.skipped:
        lines += ["", "Skipped at plan time:", *[f"- {s['cell']}: {s['reason']}" for s in sweep.skipped]]
    missing = [labels[c.cell] + " vs " + labels[c.baseline] for c in sweep.comparisons
               if not by_cell.get(c.cell) or not by_cell.get(c.baseline)]
    if missing:
        lines += ["", "Not compared (a cell has no scores yet):", *[f"- {m}" for m in missing]]
    text = "\n".join(lines) + "\n"
    report = {"recipe": recipe.name, "scale": sweep.scale, "alpha": alpha, "tests": len(tested),
              "skipped": sweep.skipped,
              "rows": [{**{k: v for k, v in r.items() if k != "_cells"},
                        "comparison": r["comparison"].as_dict() if r["comparison"] else None} for r in rows]}
    atomic_write_text(sweep.out_dir / "report.md", text)
    atomic_write_json(sweep.out_dir / "report.json", json.loads(json.dumps(report, default=str)))
    return {"markdown": text, **report}
