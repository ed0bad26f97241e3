"""The comparison a sweep's study reports: each level of one factor against the baseline level, paired.

For every evaluation column and every combination of the other factors (seed included, so runs pair with their
own seed), each cell is compared with the baseline cell on the items both scored: McNemar's exact test for
per-item 0/1 metrics, a paired bootstrap otherwise (medbench.leaderboard.compare_cells). Benjamini-Hochberg
adjusts the p-values across the whole report. The recipe names the factor (``report.compare``) and the
baseline (``baseline:``; default: the factor's first level).
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


def study_report(sweep: Any, alpha: float = ALPHA) -> dict[str, Any]:
    """Compare the recipe's ``report.compare`` levels with its baseline; write report.md and report.json."""
    recipe = sweep.recipe
    keys = {cell.key for cell in sweep.cells}
    table = build_table(sweep.leaderboard_dir, baseline="none")
    entries = []
    for row in table.rows:
        for column, cell in row.cells.items():
            extra = (cell.record or {}).get("extra") or {}
            if extra.get("sweep") == recipe.name and extra.get("cell") in keys:
                entries.append(Entry(column, _factors(cell), cell))
    compare = recipe.report.get("compare") or next(iter(recipe.grid))
    levels = sorted({e.factors.get(compare) for e in entries if e.factors.get(compare) is not None},
                    key=lambda v: (str(type(v)), v))
    baseline_spec = dict(recipe.baseline) or ({compare: levels[0]} if levels else {})
    others = sorted({k for e in entries for k in (recipe.grid or {}) if k != compare})
    groups: dict[tuple, list[Entry]] = {}
    for entry in entries:
        # By task, not column: a variant (rationale demonstrations, generate mode) is compared on the same items.
        task = ((entry.cell.record or {}).get("task") or {}).get("name") or entry.column
        key = (task, *(str(entry.factors.get(f)) for f in others if f not in baseline_spec))
        groups.setdefault(key, []).append(entry)

    registry = metric_registry()
    rows, comparisons = [], []
    for key, members in sorted(groups.items(), key=lambda item: [str(x) for x in item[0]]):
        base = next((m for m in members if all(str(m.factors.get(k)) == str(v) for k, v in baseline_spec.items())),
                    None)
        for member in sorted(members, key=lambda m: (str(type(m.factors.get(compare))), m.factors.get(compare))):
            comparison = None
            if base is not None and member is not base and member.cell.score is not None:
                comparison = compare_cells(base.cell, member.cell, registry)
                if comparison.p is not None:
                    comparisons.append(comparison)
            rows.append({"column": member.column, "group": {f: member.factors.get(f) for f in others},
                         compare: member.factors.get(compare), "baseline": member is base,
                         "metric": member.cell.metric, "score": member.cell.score, "n": member.cell.n,
                         "ci": [member.cell.ci_low, member.cell.ci_high], "comparison": comparison})
    for comparison, q in zip(comparisons, stats.benjamini_hochberg([c.p for c in comparisons])):
        comparison.q = q
        comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    lines = [f"# {recipe.name} · scale {sweep.scale}", ""]
    if recipe.study:
        lines += [recipe.study, ""]
    lines += [f"Each `{compare}` level against the baseline ({', '.join(f'{k}={v}' for k, v in baseline_spec.items())})"
              f" on the same items and seed. Test: McNemar exact (0/1 metrics) or paired bootstrap; q: "
              f"Benjamini-Hochberg across this report; * q ≤ {alpha}.", ""]
    header = ["task", *[f for f in others if f not in baseline_spec], compare, "metric", "score [95% CI]", "n",
              "Δ vs baseline", "p", "q"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        comparison = row["comparison"]
        ci = row["ci"]
        score = _fmt(row["score"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci[0] is not None else "")
        delta = "baseline" if row["baseline"] else "–"
        p = q = "–"
        if comparison is not None:
            delta = (f"{comparison.delta:+.3f}" if comparison.delta is not None else "–") + \
                ("*" if comparison.significant else "")
            p, q = _fmt(comparison.p), _fmt(comparison.q)
            if comparison.note:
                delta = comparison.note
        group = [_fmt(row["group"].get(f)) for f in others if f not in baseline_spec]
        lines.append("| " + " | ".join([row["column"], *group, _fmt(row[compare]), row["metric"], score,
                                       str(row["n"]), delta, p, q]) + " |")
    text = "\n".join(lines) + "\n"
    report = {"recipe": recipe.name, "scale": sweep.scale, "compare": compare, "baseline": baseline_spec,
              "alpha": alpha, "rows": [{**r, "comparison": r["comparison"].as_dict() if r["comparison"] else None}
                                       for r in rows]}
    atomic_write_text(sweep.out_dir / "report.md", text)
    atomic_write_json(sweep.out_dir / "report.json", json.loads(json.dumps(report, default=str)))
    return {"markdown": text, **report}
