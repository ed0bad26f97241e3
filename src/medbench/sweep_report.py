"""The comparisons a sweep's study reports, each paired on the same items and seed.

The plan (medbench.planning) lists the comparisons: a cell against its baseline cell, which differs from it in one
factor only (seed included, so runs pair with their own seed). For every task both scored, each checkpoint of the
cell is compared with the baseline cell's final checkpoint on the items both scored: McNemar's exact test for
per-item 0/1 metrics, a paired permutation test otherwise, whole clusters swapped where the task names each item's
cluster (medbench.leaderboard.compare_cells). A variant column of a task (generate mode, rationale demonstrations)
pairs with the same task.

Where a comparison ran under several seeds, a pooled row tests it once over all of them: the difference averaged
over seeds, on the items every seed scored; the permutation swaps an item's two arms in every seed at once and the
bootstrap resamples items with all their seeds (items are the unit both arms share), and the seed-to-seed variance
beyond item noise is added to its p and CI (medbench.run_variance). One seed's test alone has little power for the
few-point effects these studies report, and holds its trained run fixed; the pooled row is the study's answer.

A comparison with ``pool_over: [factor, ...]`` also gets one row averaged over every combination of those factors
and the seeds, and a heterogeneity row (medbench.factor_pooling, medbench.stratified), training-run variance
included as in the pooled-over-seeds row.

Benjamini-Hochberg runs in two families: the ``primary`` comparisons' answers (rows pooled over their factors where
the comparison has ``pool_over``, else pooled rows, or the single-seed rows where one seed ran), and everything
else (per-stratum and per-seed rows, heterogeneity rows, secondary comparisons, and the difference tests of primary
rows read by ``margin`` or ``noninferiority``, whose answer is that verdict at alpha). A comparison with ``metrics:
{task: metric}`` compares that task on that metric instead of its primary one; one with ``margin: m`` also tests
equivalence (two one-sided tests: the 1 - 2*alpha CI of the difference inside +-m), the honest reading of "on par";
one with ``noninferiority: m`` is read one-sided instead (medbench.noninferiority), and one with ``tasks`` only on
those tasks.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from medbench import step_selection
from medbench.console import markdown_text
from medbench.factor_pooling import pooled_over_factors
from medbench.leaderboard import build_table, compare_cells, stats
from medbench.leaderboard.comparisons import metric_higher_is_better
from medbench.leaderboard.ranking import is_finite_number
from medbench.leaderboard.table import Comparison
from medbench.metrics import metric_registry
from medbench.noninferiority import noninferiority
from medbench.records import atomic_write_json, atomic_write_text
from medbench.sweep_plot import svg_differences
from medbench.sweep_statistics import (  # noqa: F401  (pooled_comparison: re-exported, the report's statistics)
    ALPHA, equivalence, paired_run, pooled_comparison, pooled_over_seeds)


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
    text = _fmt(cell.score) + (f" [{_fmt(cell.ci_low)}, {_fmt(cell.ci_high)}]" if cell.ci_low is not None else "")
    # A choice read out of free text: an arm that stops answering loses for that, not for its choices.
    extracted = [s for s in cell.samples or [] if isinstance(s, dict) and "response" in s and "choices" in s]
    if extracted:
        text += f"; answered {sum(s.get('pred') is not None for s in extracted)}/{len(extracted)}"
    return text


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


def selected_checkpoint(entries: list[Entry], select: dict[str, Any], order: list[str],
                        side: int = 0) -> tuple[str | None, float]:
    """The checkpoint (row label) best on ``select``'s split: the mean over its tasks of their primary metric
    (negated where lower is better); a tie goes to the earliest in ``order`` (the trainer's checkpoint order), or
    with ``ties: middle`` to the one nearest the middle in that order (two as near: ``side``, step_selection.tie_side).
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

    ranks = sorted(rank(label) for label in complete)
    middle, sign = ((ranks[0] + ranks[-1]) / 2, 2 * side - 1) if select.get("ties") == "middle" else (-math.inf, -1)
    best = max(complete, key=lambda k: (value(complete[k]), -abs(rank(k) - middle), sign * rank(k), k))
    return best, value(complete[best])


def _same_value(a: Any, b: Any) -> bool:
    """Factor values compared as numbers where both read as one (t 0 and 0.0), else as text."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError, ArithmeticError):  # 10**400 overflows a float
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
                               higher_is_better=metric_higher_is_better(metric, registry, cell.record),
                               comparison=None)


def _comparison(base: Any, member: Any, planned: Any, registry: dict[str, Any], alpha: float) -> Comparison | None:
    if member.score is None:
        return None
    comparison = compare_cells(base, member, registry)
    if planned.margin is not None and comparison.test:
        paired = paired_run([(base, member)], registry)  # only the narrow CI: compare_cells did the test
        if isinstance(paired, Comparison):
            comparison.note = "; ".join(n for n in (comparison.note, paired.note) if n)
        else:
            equivalence(comparison, paired[1](1 - 2 * alpha), planned.margin)
    if planned.noninferiority is not None and comparison.test:
        noninferiority(comparison, [(base, member)], registry, planned.noninferiority, alpha)
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
                label, value = selected_checkpoint(held_out.get(key, []), planned.select, planned.checkpoints,
                                                   step_selection.tie_side(key))
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
            if planned.tasks and member.task not in planned.tasks:
                continue  # the comparison reads only its tasks (recipe: tasks)
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
                   "_cells": (member_cell, base_cell), "_margin": planned.margin,
                   "_noninferiority": planned.noninferiority,
                   "_pool_over": planned.pool_over, "_plan_factors": cell_factors.get(planned.cell, {}),
                   "_select": json.dumps(planned.select, sort_keys=True)}
            if planned.cell in chosen:
                row["selected"] = {"checkpoint": member.label, "split": planned.select["split"],
                                   "tasks": list(planned.select["tasks"]), "value": chosen[planned.cell][1]}
            rows.append(row)
            # The same comparison under other seeds: every factor but the seed equal (checkpoint factors included,
            # unless a checkpoint is selected per seed: then each seed's own choice is pooled).
            factors = cell_factors.get(planned.cell, {}) if planned.select else member.factors
            same = tuple(sorted((k, str(v)) for k, v in factors.items() if k != "seed"))
            groups.setdefault((planned.factor, str(planned.level), str(planned.baseline_level), member.column,
                               same, planned.primary, planned.margin, planned.noninferiority, member_cell.metric,
                               json.dumps(planned.select, sort_keys=True)), []).append(row)
    factor_rows, by_factors = pooled_over_factors(rows, registry, alpha)  # sets _pool_key, which pooled rows copy
    pooled_rows = []
    for members in groups.values():
        seeds = sorted({str(r["seeds"][0]) for r in members})
        scored = [r for r in members if r["_cells"][0].score is not None and r["_cells"][1].score is not None]
        if len(seeds) < 2 or len(scored) != len(members) or len(members) != len(seeds):
            continue
        first = members[0]
        comparison, per_seed = pooled_over_seeds([(r["_cells"][1], r["_cells"][0]) for r in members], registry,
                                                 margin=first["_margin"], alpha=alpha)
        if first["_noninferiority"] is not None and comparison.p is not None:
            noninferiority(comparison, [(r["_cells"][1], r["_cells"][0]) for r in members], registry,
                           first["_noninferiority"], alpha)
        score = sum(r["score"] for r in members) / len(members)
        base_score = sum(r["baseline_score"] for r in members) / len(members)
        pooled_rows.append({**{k: v for k, v in first.items() if k not in ("_cells", "ci")}, "pooled": True,
                            "cell": first["cell"], "seeds": seeds, "score": score, "baseline_score": base_score,
                            "n": comparison.n_paired, "ci": [None, None], "comparison": comparison, "_cells": None,
                            "per_seed": sorted(({"seed": str(r["seeds"][0]), "delta": d}
                                                for r, d in zip(members, per_seed)), key=lambda x: x["seed"])})
    rows += pooled_rows + factor_rows
    pooled_groups = {id(r) for r in pooled_rows}
    answered = {(r["factor"], str(r["level"]), str(r["baseline_level"]), r["column"]) for r in pooled_rows}

    def family(row: dict[str, Any]) -> str:
        """The study's answer: a primary comparison's row pooled over its factors, else its row pooled over seeds,
        else its only seed's row; heterogeneity rows and the per-stratum rows a pooled row answers are secondary."""
        if not row["primary"] or row.get("heterogeneity"):
            return "secondary"
        if row.get("pooled_over"):
            return "primary"
        if (row.get("_pool_key"), row["column"]) in by_factors:
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
            # A row read by equivalence or non-inferiority answers by that verdict at alpha (intersection-union);
            # its difference test is adjusted with the rest, so that sure differences there ease no gain's bar.
            verdict = row.get("_margin") is not None or row.get("_noninferiority") is not None
            tested["secondary" if verdict else row["family"]].append(comparison)
    for members in tested.values():
        for comparison, q in zip(members, stats.benjamini_hochberg([c.p for c in members])):
            comparison.q = q
            comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    lines = [f"# {markdown_text(recipe.name)} · scale {sweep.scale}", ""]
    if recipe.study:  # a recipe's words, shown as written (never as HTML or a broken table)
        lines += [markdown_text(recipe.study), ""]
    lines += [f"Each row: a cell against its baseline cell, which differs in one factor only (seed included), on "
              f"the same items. Test: McNemar exact (0/1 metrics) or paired permutation test (p), paired bootstrap "
              f"CI of the difference (on a task naming each item's cluster, whole clusters swapped and resampled: "
              f"its test reads cluster-permutation); a pooled row tests the comparison once over all its seeds "
              f"(the difference averaged over seeds, items permuted and resampled with every seed; each seed's own "
              f"difference on those items is listed beside it). A pooled row's p and CI also carry the seed-to-seed "
              f"variance beyond item noise (its note gives the run-to-run SD and the t's df; p is the larger of the "
              f"permutation p and that t test's), so it speaks of retraining, not only of these runs. q: "
              f"Benjamini-Hochberg within each family: the primary comparisons' answers ({len(tested['primary'])} "
              f"tests) and the rest ({len(tested['secondary'])}); an equivalence or non-inferiority row answers by "
              f"its verdict at {alpha}, its difference test adjusted with the rest; * q ≤ {alpha}.", ""]
    if factor_rows:
        lines += ["A row pooled over factors (the recipe's pool_over) answers \"on average over those factors\": "
                  "the mean of the per-stratum differences (a stratum is one combination of the pooled factors, "
                  "each paired on its own items and averaged over its seeds), with a stratified sign-flip test "
                  "(an item's arms swapped in every stratum and seed that scored it) and a stratified bootstrap CI "
                  "(items resampled within each task). For a primary comparison these rows are the primary family "
                  "and its per-stratum rows move to the secondary one. Each has a heterogeneity row (secondary): a "
                  "Wald χ² test of whether the stratum differences differ by more than item sampling and "
                  "run-to-run variation (from the seeds) explain; untested with one seed per stratum.", ""]
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
        lines += ["Not compared (a cell has no scores yet):", *[f"- {markdown_text(m)}" for m in missing], ""]
    chosen = {labels[key]: ((entries[0].cell.record or {}).get("extra") or {})["selected_checkpoints"]
              for key, entries in by_cell.items()
              if ((entries[0].cell.record or {}).get("extra") or {}).get("selected_checkpoints")}
    lines += step_selection.report_lines(chosen)
    text = "\n".join(lines).rstrip("\n") + "\n"
    report = {"recipe": recipe.name, "scale": sweep.scale, "alpha": alpha,
              "tests": sum(len(t) for t in tested.values()),
              "tests_by_family": {name: len(members) for name, members in tested.items()},
              "skipped": sweep.skipped, "selected_checkpoints": chosen,
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
        if comparison.note:  # a test without a difference (heterogeneity) marks its note
            delta = comparison.note + ("*" if comparison.significant else "") if comparison.delta is None \
                else f"{delta}; {comparison.note}"
    rest = ", ".join(f"{k}={v}" for k, v in (row.get("factors") or {}).items() if k != row["factor"])
    if row.get("heterogeneity"):
        cell = f"{row['cell']}: " + "; ".join(f"{s['name']} {s['delta']:+.3f}" for s in row["strata"])
        score, base = "–", "–"
    elif row.get("pooled_over"):
        cell = f"{row['cell']}, seeds {', '.join(row['seeds'])}" + (f"; {rest}" if rest else "")
        score, base = _fmt(row["score"]) + " (mean)", _fmt(row["baseline_score"]) + " (mean)"
    elif row["pooled"]:
        cell = f"pooled over seeds {', '.join(row['seeds'])}"
        stratum = ", ".join(f"{k}={v}" for k, v in (row.get("_plan_factors") or {}).items()
                            if k not in ("seed", row["factor"]))
        cell += f"; {stratum}" if stratum else ""
        if row.get("per_seed"):
            cell += " (per seed: " + ", ".join(f"{s['delta']:+.3f}" for s in row["per_seed"]) + ")"
        score, base = _fmt(row["score"]) + " (mean)", _fmt(row["baseline_score"]) + " (mean)"
    else:
        member_cell, base_cell = row["_cells"]
        cell, score, base = row["cell"], _score(member_cell), _score(base_cell)
    cells = [row["column"], f"{row['factor']}: {row['level']} vs {row['baseline_level']}", cell, row["metric"],
             score, base, str(row["n"]), delta, p, q]
    return "| " + " | ".join(map(markdown_text, cells)) + " |"
