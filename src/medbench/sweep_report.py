"""The comparisons a sweep's study reports, each paired on the same items and seed.

The plan (medbench.planning) lists the comparisons: a cell against its baseline cell, which differs from it in one
factor only (seed included, so runs pair with their own seed). For every task both scored, each checkpoint of the
cell is compared with the baseline cell's final checkpoint on the items both scored: McNemar's exact test for
per-item 0/1 metrics, a paired permutation test otherwise (medbench.leaderboard.compare_cells). A variant column of a
task (generate mode, rationale demonstrations) pairs with the same task.

Where a comparison ran under several seeds, a pooled row tests it once over all of them: the difference averaged
over seeds, on the items every seed scored; the permutation swaps an item's two arms in every seed at once and the
bootstrap resamples items with all their seeds (items are the unit both arms share). One seed's test alone has
little power for the few-point effects these studies report; the pooled row is the study's answer.

Benjamini-Hochberg runs in two families: the ``primary`` comparisons' answers (pooled rows, or the single-seed rows
where one seed ran), and everything else (per-seed rows, secondary comparisons). A comparison with ``metrics:
{task: metric}`` compares that task on that metric instead of its primary one; one with ``margin: m`` also tests
equivalence (two one-sided tests: the 1 - 2*alpha CI of the difference inside +-m), the honest reading of "on par".
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from medbench.leaderboard import build_table, compare_cells, stats
from medbench.leaderboard.comparisons import corpus_metric, metric_higher_is_better, per_item_values
from medbench.leaderboard.ranking import is_finite_number
from medbench.leaderboard.table import Comparison
from medbench.metrics import metric_registry
from medbench.console import markdown_text
from medbench.records import atomic_write_json, atomic_write_text
from medbench.sweep_plot import svg_differences

ALPHA = 0.05
MIN_EQUIVALENCE_ITEMS = 30  # below it the bootstrap CI of a difference is too coarse to call two arms equivalent


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


def _entries(sweep: Any) -> tuple[dict[str, list[Entry]], dict[str, list[Entry]]]:
    """Scored checkpoints of this sweep's cells, by cell key: those on the test split, and those on a held-out
    split that comparisons with ``select`` choose checkpoints by (never compared themselves)."""
    keys = {cell.key for cell in sweep.cells}
    table = build_table(sweep.leaderboard_dir, baseline="none")
    by_cell: dict[str, list[Entry]] = {}
    held_out: dict[str, list[Entry]] = {}
    for row in table.rows:
        for column, cell in row.cells.items():
            record = cell.record or {}
            extra = record.get("extra") or {}
            if extra.get("sweep") != sweep.recipe.name or extra.get("cell") not in keys:
                continue
            task = (record.get("task") or {}).get("name") or column
            target = held_out if column.endswith("@validation") else by_cell
            target.setdefault(extra["cell"], []).append(Entry(column, task, row.label, _factors(cell), cell))
    return by_cell, held_out


def selected_checkpoint(entries: list[Entry], select: dict[str, Any], order: list[str]) -> tuple[str | None, float]:
    """The checkpoint (row label) best on ``select``'s split: the mean over its tasks of their primary metric
    (negated where lower is better); a tie goes to the earliest in ``order`` (the trainer's checkpoint order).
    Checkpoints whose factors take a value ``select["exclude"]`` lists are never chosen."""
    tasks = list(select["tasks"])
    excluded = select.get("exclude") or {}
    by_label: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if any(_same_value(entry.factors.get(factor), value) for factor, values in excluded.items()
               for value in values):
            continue
        if entry.task in tasks and entry.cell.score is not None:
            by_label.setdefault(entry.label, {})[entry.task] = entry.cell
    complete = {label: cells for label, cells in by_label.items() if set(cells) == set(tasks)}
    if not complete:
        return None, math.nan

    def value(cells: dict[str, Any]) -> float:
        return sum(c.score if c.higher_is_better else -c.score for c in cells.values()) / len(cells)

    def rank(label: str) -> int:
        name = label.rsplit("/", 1)[-1]
        return order.index(name) if name in order else len(order)

    best = max(complete, key=lambda label: (value(complete[label]), -rank(label), label))
    return best, value(complete[best])


def _same_value(a: Any, b: Any) -> bool:
    """Factor values compared as numbers where both read as one (t 0 and 0.0), else as text."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a is not None and str(a) == str(b)


def _partner(member: Entry, candidates: list[Entry], factor: str) -> Entry:
    """The baseline's checkpoint that matches the member's own checkpoint factors (the same t), else its last."""
    same = [b for b in candidates if all(str(b.factors.get(k)) == str(v) for k, v in member.factors.items()
                                         if k not in (factor, "seed") and k in b.factors)]
    return sorted(same or candidates, key=lambda b: b.label)[-1]


def on_metric(cell: Any, metric: str, registry: dict[str, Any]) -> Any:
    """``cell`` read on another of its record's metrics; items without a value of it (a judge that gave no rating)
    are left out of the pairing."""
    if not metric or metric == cell.metric:
        return cell
    value = (((cell.record or {}).get("metrics") or {}).get(metric) or {})
    score = value.get("value") if isinstance(value, dict) else value
    samples = cell.samples
    if samples and any(metric in s for s in samples):
        samples = [s for s in samples if is_finite_number(s.get(metric))]
    return dataclasses.replace(cell, metric=metric, score=score if is_finite_number(score) else None, stderr=None,
                               ci_low=None, ci_high=None, n=len(samples) if samples else cell.n, samples=samples,
                               higher_is_better=metric_higher_is_better(metric, registry), comparison=None)


def _paired_run(pairs: list[tuple[Any, Any]], registry: dict[str, Any]) -> tuple[int, Any] | Comparison:
    """(items paired, ``run(confidence)``: the paired bootstrap and permutation test of ``member - base`` averaged
    over the seeds' (base, member) pairs), or a Comparison saying why there is nothing to pair."""
    metric = pairs[0][0].metric
    by_item = []
    for base, member in pairs:
        items = {}
        for side, cell in ((0, base), (1, member)):
            for sample in cell.samples or []:
                if sample.get("doc_id") is not None:
                    items.setdefault(sample["doc_id"], [None, None])[side] = sample
        by_item.append({d: pair for d, pair in items.items() if None not in pair})
    common = sorted(set.intersection(*(set(items) for items in by_item)), key=lambda d: (str(type(d)), d))
    if not common:
        return Comparison("", note="no items every seed scored in both arms")
    # Per item, a tuple of its samples in every seed: the unit that is swapped and resampled.
    a = [tuple(items[d][0] for items in by_item) for d in common]
    b = [tuple(items[d][1] for items in by_item) for d in common]
    seeds = len(pairs)
    a_values = [per_item_values(metric, [row[k] for row in a]) for k in range(seeds)]
    b_values = [per_item_values(metric, [row[k] for row in b]) for k in range(seeds)]
    if all(v is not None for v in a_values + b_values):
        mean_a = [sum(v[i] for v in a_values) / seeds for i in range(len(common))]
        mean_b = [sum(v[i] for v in b_values) / seeds for i in range(len(common))]
        return len(common), lambda confidence: stats.paired_bootstrap(None, None, mean_a, mean_b,
                                                                      confidence=confidence)
    value = corpus_metric(metric, registry)
    if value is None:
        return Comparison("", len(common), note="no per-item values to pair")

    def over_seeds(_refs: list[Any], rows: list[tuple]) -> float:
        return sum(value([row[k] for row in rows]) for k in range(seeds)) / seeds

    return len(common), lambda confidence: stats.paired_bootstrap(over_seeds, list(range(len(common))), a, b,
                                                                  confidence=confidence)


def pooled_comparison(pairs: list[tuple[Any, Any]], registry: dict[str, Any], *, margin: float | None = None,
                      alpha: float = ALPHA) -> Comparison:
    """One test of ``member - base`` over several seeds' (base, member) cell pairs on the same items."""
    paired = _paired_run(pairs, registry)
    if isinstance(paired, Comparison):
        return paired
    n, run = paired
    result = run(0.95)
    comparison = Comparison(f"pooled over {len(pairs)} seeds", n, _finite(result["delta"]), _finite(result["p"]),
                            ci_low=_finite(result["ci_low"]), ci_high=_finite(result["ci_high"]))
    if comparison.delta:
        better = comparison.delta > 0 if pairs[0][1].higher_is_better else comparison.delta < 0
        comparison.direction = "better" if better else "worse"
    if margin is not None:
        equivalence(comparison, run(1 - 2 * alpha), margin)
    return comparison


def equivalence(comparison: Comparison, narrow: dict[str, float], margin: float) -> None:
    """TOST at alpha: equivalent when the 1 - 2*alpha CI of the difference lies inside +-margin (and the CI rests
    on enough items to mean something: a handful of identical answers has a zero-width CI)."""
    if comparison.n_paired < MIN_EQUIVALENCE_ITEMS:
        comparison.note = (comparison.note + "; " if comparison.note else "") + \
            f"too few items ({comparison.n_paired}) for an equivalence verdict ({MIN_EQUIVALENCE_ITEMS} needed)"
        return
    lo, hi = _finite(narrow["ci_low"]), _finite(narrow["ci_high"])
    inside = lo is not None and hi is not None and -margin < lo and hi < margin
    comparison.note = (comparison.note + "; " if comparison.note else "") + \
        f"{'equivalent' if inside else 'not shown equivalent'} within ±{margin:g} (90% CI {_fmt(lo)}..{_fmt(hi)})"


def _finite(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def _comparison(base: Any, member: Any, planned: Any, registry: dict[str, Any], alpha: float) -> Comparison | None:
    if member.score is None:
        return None
    comparison = compare_cells(base, member, registry)
    if planned.margin is not None and comparison.test:
        paired = _paired_run([(base, member)], registry)  # only the narrow CI: compare_cells did the test
        if isinstance(paired, Comparison):
            comparison.note = "; ".join(n for n in (comparison.note, paired.note) if n)
        else:
            equivalence(comparison, paired[1](1 - 2 * alpha), planned.margin)
    return comparison


def study_report(sweep: Any, alpha: float = ALPHA) -> dict[str, Any]:
    """Every planned comparison, paired per task and pooled over seeds; writes report.md and report.json in the
    sweep directory."""
    recipe = sweep.recipe
    by_cell, held_out = _entries(sweep)
    labels = {cell.key: cell.label for cell in sweep.cells}
    cell_factors = {cell.key: cell.factors for cell in sweep.cells}
    registry = metric_registry()
    rows: list[dict[str, Any]] = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    unselected: set[str] = set()
    for planned in sweep.comparisons:
        base_entries = by_cell.get(planned.baseline, [])
        member_entries = by_cell.get(planned.cell, [])
        chosen: dict[str, Any] = {}
        if planned.select:  # each side read through its checkpoint best on the held-out split
            for key in (planned.cell, planned.baseline):
                entries = by_cell.get(key, [])
                if len({e.label for e in entries}) <= 1:
                    continue  # one checkpoint: nothing to choose
                label, value = selected_checkpoint(held_out.get(key, []), planned.select, planned.checkpoints)
                if label is None:
                    unselected.add(labels[key])
                chosen[key] = (label, value)
            if any(label is None for label, _ in chosen.values()):
                continue
            if planned.cell in chosen:
                member_entries = [e for e in member_entries if e.label == chosen[planned.cell][0]]
            if planned.baseline in chosen:
                base_entries = [e for e in base_entries if e.label == chosen[planned.baseline][0]]
        for member in sorted(member_entries, key=lambda e: (e.task, e.label)):
            # The baseline cell's score on the same task: its checkpoint at the member's checkpoint factors (the
            # same t), else its last by label.
            candidates = [b for b in base_entries if b.task == member.task and b.column == member.column] or \
                [b for b in base_entries if b.task == member.task]
            if not candidates:
                continue
            base = _partner(member, candidates, planned.factor)
            metric = planned.metrics.get(member.task) or planned.metrics.get(member.column) or ""
            member_cell, base_cell = on_metric(member.cell, metric, registry), on_metric(base.cell, metric, registry)
            row = {"task": member.task, "column": member.column, "factor": planned.factor, "level": planned.level,
                   "baseline_level": planned.baseline_level, "cell": member.label, "baseline": base.label,
                   "cell_key": planned.cell, "baseline_key": planned.baseline, "factors": member.factors,
                   "primary": planned.primary, "pooled": False, "seeds": [member.factors.get("seed")],
                   "metric": member_cell.metric, "score": member_cell.score, "n": member_cell.n,
                   "ci": [member_cell.ci_low, member_cell.ci_high], "baseline_score": base_cell.score,
                   "comparison": _comparison(base_cell, member_cell, planned, registry, alpha),
                   "_cells": (member_cell, base_cell), "_margin": planned.margin}
            if planned.cell in chosen:
                row["selected"] = {"checkpoint": member.label, "split": planned.select["split"],
                                   "tasks": list(planned.select["tasks"]), "value": chosen[planned.cell][1]}
            rows.append(row)
            # The same comparison under other seeds: every factor but the seed equal (checkpoint factors included,
            # unless a checkpoint is selected per seed: then each seed's own choice is pooled).
            factors = cell_factors.get(planned.cell, {}) if planned.select else member.factors
            same = tuple(sorted((k, str(v)) for k, v in factors.items() if k != "seed"))
            groups.setdefault((planned.factor, str(planned.level), str(planned.baseline_level), member.column,
                               same, planned.primary, planned.margin, member_cell.metric,
                               json.dumps(planned.select, sort_keys=True)), []).append(row)
    pooled_rows = []
    for members in groups.values():
        seeds = sorted({str(r["seeds"][0]) for r in members})
        scored = [r for r in members if r["_cells"][0].score is not None and r["_cells"][1].score is not None]
        if len(seeds) < 2 or len(scored) != len(members) or len(members) != len(seeds):
            continue
        first = members[0]
        comparison = pooled_comparison([(r["_cells"][1], r["_cells"][0]) for r in members], registry,
                                       margin=first["_margin"], alpha=alpha)
        score = sum(r["score"] for r in members) / len(members)
        base_score = sum(r["baseline_score"] for r in members) / len(members)
        pooled_rows.append({**{k: v for k, v in first.items() if k not in ("_cells", "ci")}, "pooled": True,
                            "cell": first["cell"], "seeds": seeds, "score": score, "baseline_score": base_score,
                            "n": comparison.n_paired, "ci": [None, None], "comparison": comparison, "_cells": None})
    rows += pooled_rows
    pooled_groups = {id(r) for r in pooled_rows}
    answered = {(r["factor"], str(r["level"]), str(r["baseline_level"]), r["column"]) for r in pooled_rows}

    def family(row: dict[str, Any]) -> str:
        """The study's answer: a primary comparison's pooled row, or its only seed's row."""
        if not row["primary"]:
            return "secondary"
        if id(row) in pooled_groups:
            return "primary"
        return "secondary" if (row["factor"], str(row["level"]), str(row["baseline_level"]), row["column"]) \
            in answered else "primary"

    tested: dict[str, list[Comparison]] = {"primary": [], "secondary": []}
    for row in rows:
        row["family"] = family(row)
        comparison = row["comparison"]
        if comparison is not None and comparison.p is not None:
            tested[row["family"]].append(comparison)
    for members in tested.values():
        for comparison, q in zip(members, stats.benjamini_hochberg([c.p for c in members])):
            comparison.q = q
            comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    lines = [f"# {markdown_text(recipe.name)} · scale {sweep.scale}", ""]
    if recipe.study:  # a recipe's words, shown as written (never as HTML or a broken table)
        lines += [markdown_text(recipe.study), ""]
    lines += [f"Each row: a cell against its baseline cell, which differs in one factor only (seed included), on "
              f"the same items. Test: McNemar exact (0/1 metrics) or paired permutation test (p), paired bootstrap "
              f"CI of the difference; a pooled row tests the comparison once over all its seeds (the difference "
              f"averaged over seeds, items permuted and resampled with every seed). q: Benjamini-Hochberg within "
              f"each family: the primary comparisons' answers ({len(tested['primary'])} tests) and the rest "
              f"({len(tested['secondary'])}); * q ≤ {alpha}.", ""]
    header = ["task", "comparison", "cell", "metric", "score [95% CI]", "baseline", "n", "Δ [95% CI]", "p", "q"]
    sections = [("## Primary: the study's question", [r for r in rows if r["family"] == "primary"]),
                ("## Secondary and per-seed comparisons", [r for r in rows if r["family"] == "secondary"])]
    for title, members in sections:
        if not members:
            continue
        lines += [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [_table_row(row) for row in sorted(members, key=lambda r: not r["pooled"])]
        lines.append("")
    if sweep.comparisons_left_out:
        lines += ["Not compared at this scale:", *[f"- {markdown_text(m)}" for m in sweep.comparisons_left_out], ""]
    if sweep.skipped:
        lines += ["Skipped at plan time:",
                  *[f"- {markdown_text(s['cell'])}: {markdown_text(s['reason'])}" for s in sweep.skipped], ""]
    if unselected:
        lines += ["No checkpoint selected (no scores on the selection split yet), so not compared:",
                  *[f"- {markdown_text(label)}" for label in sorted(unselected)], ""]
    missing = [labels[c.cell] + " vs " + labels[c.baseline] for c in sweep.comparisons
               if not by_cell.get(c.cell) or not by_cell.get(c.baseline)]
    if missing:
        lines += ["Not compared (a cell has no scores yet):", *[f"- {markdown_text(m)}" for m in missing]]
    text = "\n".join(lines).rstrip("\n") + "\n"
    report = {"recipe": recipe.name, "scale": sweep.scale, "alpha": alpha,
              "tests": sum(len(t) for t in tested.values()),
              "tests_by_family": {name: len(members) for name, members in tested.items()},
              "skipped": sweep.skipped,
              "rows": [{**{k: v for k, v in r.items() if not k.startswith("_")},
                        "comparison": r["comparison"].as_dict() if r["comparison"] else None} for r in rows]}
    picture = svg_differences(rows, alpha, set(recipe.grid))
    if picture is not None:
        atomic_write_text(sweep.out_dir / "report.svg", picture)
        text = text.replace("\n## ", "\n![Each comparison's difference with its 95% CI](report.svg)\n\n## ", 1)
    else:
        (sweep.out_dir / "report.svg").unlink(missing_ok=True)  # no picture of an earlier run's comparisons
    atomic_write_text(sweep.out_dir / "report.md", text)
    atomic_write_json(sweep.out_dir / "report.json", json.loads(json.dumps(report, default=str)))
    return {"markdown": text, **report}


def _table_row(row: dict[str, Any]) -> str:
    comparison = row["comparison"]
    delta, p, q = "–", "–", "–"
    if comparison is not None:
        delta = (f"{comparison.delta:+.3f}" if comparison.delta is not None else "–") + \
            ("*" if comparison.significant else "")
        if comparison.ci_low is not None and comparison.ci_high is not None:
            delta += f" [{comparison.ci_low:+.3f}, {comparison.ci_high:+.3f}]"
        p, q = _fmt(comparison.p), _fmt(comparison.q)
        if comparison.note:
            delta = comparison.note if comparison.delta is None else f"{delta}; {comparison.note}"
    if row["pooled"]:
        cell = f"pooled over seeds {', '.join(row['seeds'])}"
        score, base = _fmt(row["score"]) + " (mean)", _fmt(row["baseline_score"]) + " (mean)"
    else:
        member_cell, base_cell = row["_cells"]
        cell, score, base = row["cell"], _score(member_cell), _score(base_cell)
    cells = [row["column"], f"{row['factor']}: {row['level']} vs {row['baseline_level']}", cell, row["metric"],
             score, base, str(row["n"]), delta, p, q]
    return "| " + " | ".join(map(markdown_text, cells)) + " |"
