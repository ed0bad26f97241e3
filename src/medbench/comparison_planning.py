"""A plan's comparisons: every compared cell paired with its baseline cell (all else equal), what each side is read
through (a checkpoint selected on a held-out split), and, for a comparison pooled over factors (``pool_over``),
that the strata it averages share one metric.

Pooling averages differences: acc on MedQA and acc on MedMCQA are one scale, acc and macro-F1 (or a 1-5 judge
rating) are not, so a pooled comparison whose strata would be scored on different metrics stops the plan in one
line. A task scored by every stratum is pooled on its own (one answer per task), so only the tasks that change
with the pooled factors must share a metric (medbench.factor_pooling pools the same way).

A comparison left with nothing to compare at this scale (its baseline or a level only another scale plans, a
``where`` no cell matches, or no compared cell with a baseline cell other than itself) is listed in
``comparisons_left_out``, never dropped in silence.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from medbench.errors import MedbenchError
from medbench.recipe_comparisons import SEED, recipe_error


@dataclass
class PlannedComparison:
    """``cell`` (at ``level`` of ``factor``) against ``baseline`` (at ``baseline_level``), all else equal."""

    cell: str
    baseline: str
    factor: str
    level: Any
    baseline_level: Any
    primary: bool = False  # the study's question: its own multiple-testing family
    metrics: dict[str, str] = field(default_factory=dict)  # task -> the metric compared, when not the primary
    margin: float | None = None  # equivalence margin (TOST), for "on par" readings
    # {split, tasks}: each side is read through its one checkpoint best on that split (None: every checkpoint)
    select: dict[str, Any] | None = None
    checkpoints: list[str] = field(default_factory=list)  # the compared cell's checkpoints (CellSpec.checkpoints)
    pool_over: list[str] = field(default_factory=list)  # factors the report also averages this comparison over
    tasks: list[str] = field(default_factory=list)  # the scored tasks compared (empty: every one both cells score)
    noninferiority: float | None = None  # one-sided non-inferiority margin (medbench.noninferiority)


def _factor_key(factors: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in factors.items()))


def plan_comparisons(sweep: Any, excluded: list[dict[str, Any]],
                      skipped: list[dict[str, Any]]) -> list[PlannedComparison]:
    """Pair every compared cell with its baseline cell; an ``exclude`` that removes a baseline is an error."""
    recipe = sweep.recipe
    by_factors: dict[tuple, Any] = {}
    for cell in sweep.cells:
        for factors in (cell.factors, *cell.aliases):
            by_factors[_factor_key(factors)] = cell
    excluded_keys = {_factor_key(f) for f in excluded}
    skipped_keys = {_factor_key(f) for f in skipped}
    every = [f for c in sweep.cells for f in (c.factors, *c.aliases)] + excluded + skipped
    planned: dict[tuple, PlannedComparison] = {}
    for spec in recipe.comparisons:
        factor, baseline_level = spec["factor"], str(spec["baseline"])
        if baseline_level not in {str(f.get(factor)) for f in every}:  # an arm this scale leaves out (or a typo)
            sweep.comparisons_left_out.append(f"{factor} vs {baseline_level}: no cell has {factor}={baseline_level}")
            continue
        levels = {str(v) for v in spec.get("levels") or []}
        where = {k: {str(x) for x in (v if isinstance(v, list) else [v])} for k, v in (spec.get("where") or {}).items()}
        if not _at_this_scale(sweep, spec, every, levels, where):
            continue
        paired = False
        for cell in sweep.cells:
            for factors in (cell.factors, *cell.aliases):
                level = str(factors.get(factor))
                if level == baseline_level or (levels and level not in levels):
                    continue
                if any(str(factors.get(k)) not in allowed for k, allowed in where.items()):
                    continue
                partner = _factor_key({**factors, factor: spec["baseline"]})
                base = by_factors.get(partner)
                if base is None:
                    if partner in skipped_keys:  # its baseline was skipped at plan time: the question goes unanswered
                        _left_out(sweep, spec, factors, "its baseline cell was skipped at plan time")
                        continue
                    label = ",".join(f"{k}={v}" for k, v in factors.items())
                    why = "exclude: removes it" if partner in excluded_keys else "no cell has those factors"
                    raise recipe_error(recipe.path, f"cell {label} has no baseline cell with {factor}={baseline_level} "
                                f"({why}), so the comparison of {factor} cannot be made",
                                "keep the baseline cells in the grid, or drop that comparison")
                if base.key != cell.key:  # the same pair through a selected checkpoint, or on another metric,
                    select = spec.get("select")  # is another comparison
                    paired = True
                    one_sided = [spec.get("tasks"), spec.get("noninferiority")] + \
                        ([spec["margin"]] if spec.get("margin") is not None else [])  # equivalence is a reading too
                    reading = json.dumps([select, spec.get("metrics") or {}] + (one_sided if any(one_sided) else []),
                                         sort_keys=True)
                    planned.setdefault((cell.key, base.key, factor, reading),
                                       PlannedComparison(cell.key, base.key, factor, factors.get(factor),
                                                         spec["baseline"], bool(spec.get("primary", False)),
                                                         dict(spec.get("metrics") or {}), spec.get("margin"),
                                                         copy.deepcopy(select), list(cell.checkpoints),
                                                         list(spec.get("pool_over") or []),
                                                         list(spec.get("tasks") or []), spec.get("noninferiority")))
        for factors in skipped:  # a compared cell skipped at plan time takes its comparisons with it: say so
            level = str(factors.get(factor))
            if level != baseline_level and not (levels and level not in levels) and \
                    all(str(factors.get(k)) in allowed for k, allowed in where.items()):
                _left_out(sweep, spec, factors, "the compared cell was skipped at plan time")
                paired = True
        if not paired:  # silent, a comparison would vanish from the study
            sweep.comparisons_left_out.append(f"{_named(spec)}: no cell at its levels{' and where' * bool(where)} "
                                              f"has a baseline cell other than itself")
    _check_tasks(recipe, sweep, list(planned.values()))
    return list(planned.values())


def _at_this_scale(sweep: Any, spec: dict[str, Any], every: list[dict[str, Any]], levels: set[str],
                   where: dict[str, set[str]]) -> bool:
    """List the levels no cell has at this scale (an arm planned only at another), and a ``where`` no cell
    matches; False when nothing is left to compare. medbench.recipe_comparisons refuses values no scale has."""
    factor = spec["factor"]
    present = {str(f.get(factor)) for f in every}
    for level in (str(v) for v in spec.get("levels") or [] if str(v) not in present):
        sweep.comparisons_left_out.append(f"{_named(spec, level)}: no cell has {factor}={level}")
    if not any(all(str(f.get(k)) in allowed for k, allowed in where.items()) for f in every):
        shown = ", ".join(f"{k}: [{', '.join(map(str, sorted(v)))}]" for k, v in where.items())
        sweep.comparisons_left_out.append(f"{_named(spec)}: where {{{shown}}} matches no cell")
        return False
    return not levels or bool(levels & present)


def _named(spec: dict[str, Any], level: Any = None) -> str:
    """``method=dpo vs sft (primary)``: a comparison as the left-out lines name it."""
    return (f"{spec['factor']}{'' if level is None else f'={level}'} vs {spec['baseline']}"
            f"{' (primary)' if spec.get('primary') else ''}")


def _left_out(sweep: Any, spec: dict[str, Any], factors: dict[str, Any], why: str) -> None:
    """List a comparison a skipped cell removes (once): a primary one dropping silently would hide the study's
    question going unanswered."""
    label = ",".join(f"{k}={v}" for k, v in factors.items())
    line = (f"{spec['factor']}={factors.get(spec['factor'])} vs {spec['baseline']}"
            f"{' (primary)' if spec.get('primary') else ''} at {label}: {why}")
    if line not in sweep.comparisons_left_out:
        sweep.comparisons_left_out.append(line)


def _check_tasks(recipe: Any, sweep: Any, planned: list[PlannedComparison]) -> None:
    """A comparison's ``tasks`` must be scored by the cells it compares: a misspelt task would drop the reading."""
    cells = {c.key: c for c in sweep.cells}
    scored: dict[tuple, set[str]] = {}
    for comparison in planned:
        if comparison.tasks:
            key = (comparison.factor, str(comparison.baseline_level), tuple(comparison.tasks))
            scored.setdefault(key, set()).update(cells[comparison.cell].eval["tasks"])
    for (factor, baseline, tasks), found in scored.items():
        if missing := [t for t in tasks if t not in found]:
            raise recipe_error(recipe.path, f"comparison of {factor} vs {baseline} names tasks "
                               f"{', '.join(missing)}, which none of its cells scores",
                               f"name tasks of cell.eval.tasks ({', '.join(sorted(found))})")


def check_metric_tasks(sweep: Any, task_registry) -> None:
    """A task a comparison's ``metrics`` names must be a task medbench knows: a misspelt one would leave that task
    read on its primary metric without a word. One this scale's cells do not score is fine (recipes share one
    metrics mapping across scales whose task lists differ)."""
    scored = {t for cell in sweep.cells for t in cell.eval["tasks"]}
    for comparison in sweep.comparisons:
        for task in sorted(set(comparison.metrics or {}) - scored):
            try:
                task_registry().get(task)
            except MedbenchError:
                raise recipe_error(sweep.recipe.path, f"comparison of {comparison.factor} vs "
                                   f"{comparison.baseline_level} names task {task!r} in its metrics, which is no "
                                   "task medbench knows", f"name tasks of cell.eval.tasks "
                                   f"({', '.join(sorted(scored))})") from None


def plan_selections(sweep: Any, task_registry) -> None:
    """Put each comparison's ``select`` on both its cells (those that train: an untrained one has one checkpoint).
    A split that is the task's test split (choosing on the data then tested on) or that it lacks fails here."""
    cells = {c.key: c for c in sweep.cells}
    for comparison in sweep.comparisons:
        select = comparison.select
        if not select:
            continue
        check_held_out(sweep.recipe.path, f"comparison of {comparison.factor}", select, task_registry)
        for key in (comparison.cell, comparison.baseline):
            if cells[key].steps and select not in cells[key].selections:  # a cell without steps has one checkpoint
                cells[key].selections.append(copy.deepcopy(select))


def check_held_out(path: Any, what: str, select: dict[str, Any], task_registry) -> None:
    """A ``select`` whose split is a task's test split (choosing on the data then tested on), or a split the task
    lacks, fails here naming ``what`` selects."""
    for task in select["tasks"]:
        config = task_registry().get(task).config  # an unknown task fails here, with close names
        splits = {config.get(k) for k in ("training_split", "validation_split", "fewshot_split")} - {None}
        if select["split"] == config.get("test_split") or select["split"] not in splits:
            raise recipe_error(path, f"{what} selects on split {select['split']!r} of task {task!r}, which is "
                               + ("its test split" if select["split"] == config.get("test_split")
                                  else f"not one of its splits ({', '.join(sorted(splits))})"),
                               f"select on a held-out split that is not the test split, e.g. "
                               f"{config.get('validation_split') or 'validation'}")


def check_pooled_metrics(sweep: Any, task_registry) -> None:
    """A comparison pooled over factors whose strata would score different metrics fails here (module docstring)."""
    cells = {c.key: c for c in sweep.cells}
    groups: dict[tuple, dict[tuple, set[str]]] = {}
    for comparison in sweep.comparisons:
        if not comparison.pool_over:
            continue
        factors = cells[comparison.cell].factors
        rest = tuple(sorted((k, str(v)) for k, v in factors.items() if k not in (*comparison.pool_over, SEED)))
        key = (comparison.factor, str(comparison.level), rest, tuple(comparison.pool_over),
               json.dumps(comparison.metrics, sort_keys=True))
        stratum = tuple(str(factors.get(f)) for f in comparison.pool_over)
        groups.setdefault(key, {}).setdefault(stratum, set()).update(cells[comparison.cell].eval["tasks"])
    for (factor, level, _, pool_over, metrics), strata in groups.items():
        overrides = json.loads(metrics)
        every = set.intersection(*strata.values())
        varying = sorted(set.union(*strata.values()) - every)  # tasks that change with the pooled factors
        scored = {task: overrides.get(task) or task_registry().get(task).primary_metric for task in varying}
        if len(set(scored.values())) > 1:
            shown = ", ".join(f"{task}: {metric}" for task, metric in scored.items())
            raise recipe_error(sweep.recipe.path, f"comparison of {factor} ({level}) pools over "
                               f"{', '.join(pool_over)}, whose strata are scored on different metrics ({shown}); "
                               "a mean of their differences mixes scales",
                               "pool over factors whose tasks share one metric, or give the comparison "
                               "metrics: {TASK: METRIC} so they do")
