"""What a plan's primary comparisons become in its report, counted at plan time so that a dry run says it: the
rows medbench.sweep_report tests once (pooled over the seeds, and over a comparison's ``pool_over`` factors as
medbench.factor_pooling groups them), split into the difference tests Benjamini-Hochberg adjusts together and the
rows answered by an equivalence or non-inferiority verdict at the unadjusted alpha (an intersection-union reading;
their difference tests join the secondary family). A dry run otherwise lists one line per seed and stratum, and a
reader counting its "primary" lines would count the family wrong."""

from __future__ import annotations

import json
from typing import Any

from medbench.recipe_comparisons import SEED


def _group_key(comparison: dict[str, Any], factors: dict[str, Any]) -> tuple:
    pool = tuple(comparison.get("pool_over") or [])
    rest = tuple(sorted((k, str(v)) for k, v in factors.items() if k not in (*pool, SEED, comparison["factor"])))
    return (comparison["factor"], str(comparison["level"]), str(comparison["baseline_level"]), pool, rest,
            comparison.get("margin"), comparison.get("noninferiority"),
            json.dumps(comparison.get("metrics") or {}, sort_keys=True),
            json.dumps(comparison.get("select"), sort_keys=True))


def _factors(cell: dict[str, Any]) -> dict[str, Any]:
    """The cell's factors, "any" where it also stands for other values (one cell planned for several)."""
    aliases = cell.get("aliases") or []
    return {k: "any" if any(str(a.get(k)) != str(v) for a in aliases) else v for k, v in cell["factors"].items()}


def _outcomes(comparison: dict[str, Any], cell: dict[str, Any]) -> list[str]:
    """The task columns (and, on an unselected checkpoint curve, the checkpoints) one pair of cells is read on."""
    tasks = [t for t in cell["eval"]["tasks"] if not comparison.get("tasks") or t in comparison["tasks"]]
    points = [] if comparison.get("select") else (comparison.get("checkpoints") or [])
    return [f"{task} at {point}" for task in tasks for point in points] if points else tasks


def primary_answers(description: dict[str, Any]) -> dict[str, list[str]]:
    """``adjusted``: the primary family's difference tests; ``verdicts``: the primary rows read by their margin.
    Each entry names one row as the report will print it (comparison, task, the factors it is not pooled over)."""
    cells = {cell["id"]: cell for cell in description["cells"]}
    groups: dict[tuple, dict[str, set[tuple]]] = {}
    for comparison in description["comparisons"]:
        if not comparison.get("primary"):
            continue
        cell = cells[comparison["cell"]]
        key = _group_key(comparison, _factors(cell))
        stratum = tuple(str(cell["factors"].get(f)) for f in comparison.get("pool_over") or [])
        for outcome in _outcomes(comparison, cell):
            groups.setdefault(key, {}).setdefault(outcome, set()).add(stratum)
    answers: dict[str, list[str]] = {"adjusted": [], "verdicts": []}
    for key, by_outcome in groups.items():
        factor, level, baseline, pool, rest, margin, noninferiority = key[:7]
        combinations = set().union(*by_outcome.values())
        if pool and len(combinations) > 1:  # medbench.factor_pooling: a task every stratum scores is its own row
            own = [[o] for o, strata in by_outcome.items() if strata == combinations]
            shared = [o for o, strata in by_outcome.items() if strata != combinations]
            rows = own + ([shared] if shared else [])
        else:
            rows = [[o] for o in by_outcome]
        metrics = json.loads(key[7])
        reading = (f"; equivalence ±{margin}" if margin is not None else "") + \
            (f"; non-inferiority −{noninferiority}" if noninferiority is not None else "")
        for outcomes in rows:
            on = "+".join(o + (f" by {metrics[o.split(' at ')[0]]}" if o.split(" at ")[0] in metrics else "")
                          for o in outcomes)
            where = ", ".join(f"{k}={v}" for k, v in rest if v not in {o.split(" at ")[0] for o in outcomes})
            name = (f"{factor}: {level} vs {baseline} on {on}" + (f" ({where})" if where else "")
                    + (f", pooled over {' × '.join(pool)}" if pool and len(combinations) > 1 else "") + reading)
            answers["verdicts" if margin is not None or noninferiority is not None else "adjusted"].append(name)
    return answers


def summary_lines(description: dict[str, Any], alpha: float = 0.05) -> list[str]:
    """The dry run's closing lines: how the compare lines above become the report's primary answers."""
    answers = primary_answers(description)
    if not description["comparisons"]:
        return []
    if not answers["adjusted"] and not answers["verdicts"]:
        return ["no comparison is primary: every row of the report is in one Benjamini-Hochberg family"]
    lines = ["Each compare line above is one pair of cells (one seed); the report tests each comparison once over "
             "its seeds (and over its pool_over factors), so the primary family is:",
             f"  {len(answers['adjusted'])} difference tests, Benjamini-Hochberg across them:"]
    lines += [f"    {name}" for name in answers["adjusted"]]
    if answers["verdicts"]:
        lines.append(f"  {len(answers['verdicts'])} rows answered by their equivalence or non-inferiority verdict at "
                     f"the unadjusted {alpha} (intersection-union; their difference tests join the secondary family):")
        lines += [f"    {name}" for name in answers["verdicts"]]
    return lines
