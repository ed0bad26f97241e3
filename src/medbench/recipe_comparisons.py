"""A recipe's comparisons, checked when the recipe is read (medbench.recipe reads the rest; medbench.planning pairs
the cells): each names the compared factor and its baseline level, and may say which levels, where, on which
metric, with which equivalence margin (or non-inferiority margin), on which of the cells' tasks, through which
selected checkpoint, and over which factors it is pooled.

``tasks: [a, b]`` restricts a comparison to those of the cells' scored tasks (planning refuses a task no compared
cell scores), so one pair of arms can be read as equivalence on some tasks and as non-inferiority on others.
``noninferiority: m`` reads the comparison one-sided (medbench.noninferiority): no worse than the baseline by more
than m in the metric's better direction, superior where the bound also clears 0. It excludes ``margin`` (a
comparison is read as two-sided equivalence or one-sided, not both); with ``pool_over`` the stratified pooled row is
read one-sided too, off its own 90% CI (medbench.stratified).

``pool_over: [model, task]`` asks the report for one answer averaged over every combination of those grid factors
(and the seeds): the mean of the per-stratum differences, tested once (medbench.stratified). The compared factor
cannot be pooled over (its levels are what is compared), nor the seed (every pooled row pools the seeds already).

Every field's form is checked here, in one line naming the comparison (its number and factor) and the field: a
wrong form would crash the plan or drop the comparison (``levels: sft`` read letter by letter). A baseline, level
or ``where`` value the factor has at no scale is a typo; one that only another scale plans is listed at plan time
as not compared (medbench.comparison_planning). Levels a scale variable gives can grow with ``--set``, so only a
literal grid list, or the ``steps_by`` factor's step lists, bound them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.recipe_variables import _REF

COMPARISON_KEYS = {"factor", "baseline", "levels", "where", "primary", "metrics", "margin", "select", "pool_over",
                   "tasks", "noninferiority"}
SELECT_KEYS = {"split", "tasks"}
# How a select breaks a tie on the held-out split: the earliest checkpoint in the trainer's order (a merge's lowest
# t), or the one nearest the middle of the candidates (a merge's midpoint; medbench.sweep_report.selected_checkpoint).
SELECT_TIES = ("first", "middle")
SEED = "seed"  # the factor every pooled row pools over


def recipe_error(path: Path, problem: str, fix: str) -> MedbenchError:
    """A recipe's problem in one line, with its fix (every recipe and planning module raises these)."""
    return MedbenchError(f"recipe {path}: {problem}", fix)


def read_comparisons(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    comparisons = data.get("comparisons")
    if comparisons is None:  # the older form: one baseline mapping, one compared factor
        baseline = data.get("baseline") or {}
        if not baseline:
            return []
        if not isinstance(baseline, dict) or len(baseline) != 1:
            raise recipe_error(path, "baseline must name one factor and its baseline level, e.g. {method: base}",
                        "or list comparisons: [{factor: method, baseline: base}]")
        factor, level = next(iter(baseline.items()))
        comparisons = [{"factor": factor, "baseline": level}]  # checked as any comparison is
    if not isinstance(comparisons, list) or not all(isinstance(c, dict) for c in comparisons):
        raise recipe_error(path, "comparisons must be a list of mappings", "write comparisons: [{factor: method, baseline: base}]")
    for number, comparison in enumerate(comparisons, 1):
        _check_comparison(path, data, number, comparison)
    return comparisons


def _check_comparison(path: Path, data: dict[str, Any], number: int, comparison: dict[str, Any]) -> None:
    """Every field's form, where the recipe is read: a wrong form would crash the plan or drop the comparison."""
    unknown = sorted(map(str, set(comparison) - COMPARISON_KEYS))
    if unknown or "factor" not in comparison or "baseline" not in comparison:
        raise recipe_error(path, f"comparison {number} {comparison} needs factor and baseline (unknown: "
                           f"{', '.join(unknown) or 'none'})",
                           "write {factor: method, baseline: base, levels: [dpo]} (levels optional)")
    grid, factor, baseline = data["grid"], comparison["factor"], comparison["baseline"]
    if not isinstance(factor, str) or factor not in grid:
        raise recipe_error(path, f"comparison {number}: factor {factor!r} is not a grid factor",
                           f"use one of {', '.join(map(str, grid))}")
    known = known_levels(data, factor)
    example = next((n for n in known or [] if n != str(baseline)), "LEVEL")
    if not _plain(baseline):
        raise recipe_error(path, f"comparison {number} ({factor}): baseline: {baseline!r} must be one level of "
                           f"{factor}", f"write baseline: {next(iter(known or []), 'LEVEL')}")
    who = f"comparison {number} ({factor} vs {baseline})"
    _check_known(path, who, f"baseline is {baseline!r}", baseline, factor, known)
    _check_levels(path, who, comparison, known, example)
    where = comparison.get("where")
    if where is not None and (not isinstance(where, dict) or not set(where) <= set(grid) or not all(
            _plain(v) or isinstance(v, list) and v and all(map(_plain, v)) for v in where.values())):
        raise recipe_error(path, f"{who}: where: {where!r} must map grid factors to lists of levels",
                           "write where: {method: [base, sft]}")
    for name, values in (where or {}).items():
        for value in values if isinstance(values, list) else [values]:
            _check_known(path, who, f"where names {name}={value!r}", value, name, known_levels(data, name))
    if not isinstance(comparison.get("primary", False), bool):
        raise recipe_error(path, f"{who}: primary: {comparison['primary']!r} must be true or false",
                           "write primary: true on the comparison the study is about")
    metrics = comparison.get("metrics")
    if metrics is not None and (not isinstance(metrics, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in metrics.items())):
        raise recipe_error(path, f"{who}: metrics: {metrics!r} must map task names to metric names",
                           "write metrics: {discharge_summary: 'judge:likert'}")
    margin = comparison.get("margin")
    if margin is not None and not _positive(margin):
        raise recipe_error(path, f"{who}: margin: {margin!r} must be a positive number",
                           "write margin: 0.05 (the largest difference still read as equivalent)")
    _check_one_sided(path, who, comparison)
    select = comparison.get("select")
    if select is not None and (not isinstance(select, dict) or set(select) - {"exclude", "ties"} != SELECT_KEYS
                               or select.get("ties", "first") not in SELECT_TIES
                               or not isinstance(select["split"], str) or not select["split"]
                               or not isinstance(select["tasks"], list) or not select["tasks"]
                               or not all(isinstance(t, str) and t for t in select["tasks"])
                               or not _factor_values(select.get("exclude", {}))):
        raise recipe_error(path, f"{who}: select: {select!r} must name a split and the tasks scored on it "
                           "(and may exclude factor values, and say ties: first or middle)",
                           "write select: {split: validation, tasks: [clinical_reasoning], exclude: {t: [0.0]}}")
    if "pool_over" in comparison:
        _check_pool_over(path, who, comparison, list(grid))


def _check_levels(path: Path, who: str, comparison: dict[str, Any], known: list[str] | None, example: str) -> None:
    """``levels``: a list of the factor's levels, each once, without the baseline (a cell compared with itself)."""
    factor, baseline, levels = comparison["factor"], comparison["baseline"], comparison.get("levels")
    if levels is None:
        return
    if not isinstance(levels, list) or not levels or not all(map(_plain, levels)) \
            or len(set(map(str, levels))) != len(levels):
        one = _plain(levels) and (known is None or str(levels) in known)  # one level, written without brackets
        raise recipe_error(path, f"{who}: levels: {levels!r} must list levels of {factor}, each once",
                           f"write levels: [{levels if one else example}] (or leave it out: every level but the "
                           "baseline)")
    for level in levels:
        if str(level) == str(baseline):
            raise recipe_error(path, f"{who}: levels lists the baseline {baseline!r} itself, which would be "
                               "compared with itself", "drop it from levels (or leave levels out)")
        _check_known(path, who, f"levels names {level!r}", level, factor, known)


def known_levels(data: dict[str, Any], factor: str) -> list[str] | None:
    """The level names ``factor`` can have at any scale: its grid list's, or, where a scale variable gives them,
    those the steps are picked by (``steps_by``: a level without steps cannot plan); None where ``--set`` may
    add any."""
    values, cell = data["grid"].get(factor), data.get("cell") or {}
    if isinstance(values, list):
        names = [str(v.get("name")) if isinstance(v, dict) else str(v) for v in values]
        return None if any(_REF.search(n) for n in names) else names
    steps = cell.get("steps") if isinstance(cell, dict) and cell.get("steps_by") == factor else None
    return [str(k) for k in steps] if isinstance(steps, dict) else None


def _check_known(path: Path, who: str, what: str, value: Any, factor: str, known: list[str] | None) -> None:
    # A value no scale has is a typo; one only some scale leaves out is listed at plan time (comparison_planning).
    if known is not None and str(value) not in known:
        raise recipe_error(path, f"{who}: {what}, which is not a level of {factor}",
                           f"use one of {', '.join(known)}")


def _plain(value: Any) -> bool:
    """One level: a name or a number (true/false too), never a list, mapping or null."""
    return isinstance(value, (str, int, float)) and value != ""


def _positive(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < float("inf")


def _check_one_sided(path: Path, who: str, comparison: dict[str, Any]) -> None:
    """``tasks`` (a list of task names) and ``noninferiority`` (a positive margin, without ``margin``): module
    docstring."""
    tasks = comparison.get("tasks")
    if tasks is not None and (not isinstance(tasks, list) or not tasks
                              or not all(isinstance(t, str) and t for t in tasks) or len(set(tasks)) != len(tasks)):
        raise recipe_error(path, f"{who}: tasks: {tasks!r} must list task names, each once",
                           "write tasks: [instruction_following] (or leave it out: every scored task)")
    if "noninferiority" not in comparison:
        return
    margin = comparison["noninferiority"]
    if not _positive(margin):
        raise recipe_error(path, f"{who}: noninferiority: {margin!r} must be a positive number",
                           "write noninferiority: 0.05 (the largest loss still read as no worse)")
    if comparison.get("margin") is not None:
        raise recipe_error(path, f"{who} has both margin (two-sided equivalence) and noninferiority "
                           "(one-sided)", "split it into two comparisons with tasks: [...], one reading each")


def _check_pool_over(path: Path, who: str, comparison: dict[str, Any], grid: list[str]) -> None:
    pool = comparison["pool_over"]
    factor = comparison["factor"]
    others = ", ".join(f for f in grid if f not in (factor, SEED)) or "(none: add a factor to the grid)"
    if not isinstance(pool, list) or not pool or not all(isinstance(f, str) and f for f in pool) \
            or len(set(pool)) != len(pool):
        raise recipe_error(path, f"{who}: pool_over: {pool!r} must list grid factors, each once",
                           f"write pool_over: [FACTOR, ...] with factors of the grid ({others})")
    for name in pool:
        if name == factor:
            raise recipe_error(path, f"comparison of {factor} pools over {factor} itself (its levels are what is "
                               "compared)", f"pool over other grid factors: {others}")
        if name == SEED:
            raise recipe_error(path, f"comparison of {factor}: pool_over lists seed, which every pooled row pools "
                               "over already", "drop seed from pool_over")
        if name not in grid:
            raise recipe_error(path, f"comparison of {factor}: pool_over names {name!r}, which is not a grid factor",
                               f"use factors of the grid: {others}")


def _factor_values(mapping: Any) -> bool:
    """A mapping of factor name to a list of plain values (numbers or text)."""
    return isinstance(mapping, dict) and all(
        isinstance(k, str) and k and isinstance(v, list) and v
        and all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v) for k, v in mapping.items())
