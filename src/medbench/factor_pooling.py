"""The study report's rows pooled over a comparison's ``pool_over`` factors (medbench.sweep_report builds the rest):
per level against its baseline level, one row averaged over every combination of those factors and the seeds
(medbench.stratified: the mean of the per-stratum differences, a stratified test and CI), and one heterogeneity
row asking whether the effect differs between those strata.

A stratum is one combination of the pooled factors' values on one task column. A task every combination scores
(each cell scores two tasks, pooled over models) is an outcome of its own: one pooled row per such task. Tasks
that change with the pooled factors (pooled over the task factor) are pooled together, and must share a metric:
planning refuses a recipe where they do not (medbench.comparison_planning), and a row that still finds two
metrics (a mode that scores another metric) says so instead of averaging across scales.
"""

from __future__ import annotations

from typing import Any

from medbench.leaderboard.table import Comparison
from medbench.recipe_comparisons import SEED
from medbench.stratified import StrataResult, Stratum, pool_strata


def _checkpoint_keys(rows: list[dict[str, Any]]) -> dict[int, tuple]:
    """Per row (by id), the factor values that tell its cell's checkpoints apart (t on a merge curve): strata pool
    at the same checkpoint, never one stratum's t=0.5 with another's t=1."""
    by_pair: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_pair.setdefault((row["cell_key"], row["baseline_key"], row["column"], row["_select"]), []).append(row)
    keys = {}
    for members in by_pair.values():
        names = {k for row in members for k in row["factors"]}
        varying = sorted(k for k in names if len({str(row["factors"].get(k)) for row in members}) > 1)
        for row in members:
            keys[id(row)] = tuple((k, str(row["factors"].get(k))) for k in varying)
    return keys


def _stratum(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row["_plan_factors"].get(f)) for f in row["_pool_over"])


def pooled_over_factors(rows: list[dict[str, Any]], registry: dict[str, Any],
                        alpha: float) -> tuple[list[dict[str, Any]], set[tuple]]:
    """The pooled and heterogeneity rows of every comparison with ``pool_over``, and the (pool key, column) of the
    per-stratum rows a pooled test answers (they move to the secondary family). Sets ``_pool_key`` on ``rows``."""
    candidates = [r for r in rows if r["_pool_over"] and not r["pooled"]]
    checkpoints = _checkpoint_keys(candidates)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in candidates:
        pool = row["_pool_over"]
        rest = tuple(sorted((k, str(v)) for k, v in row["_plan_factors"].items() if k not in (*pool, SEED)))
        row["_pool_key"] = (row["factor"], str(row["level"]), str(row["baseline_level"]), tuple(pool), rest,
                            checkpoints[id(row)], row["primary"], row["_margin"], row["_select"],
                            row["_noninferiority"])
        groups.setdefault(row["_pool_key"], []).append(row)
    out: list[dict[str, Any]] = []
    answered: set[tuple] = set()
    for key, members in groups.items():
        combinations = {_stratum(r) for r in members}
        by_column: dict[str, set[tuple]] = {}
        for row in members:
            by_column.setdefault(row["column"], set()).add(_stratum(row))
        own = [[column] for column, strata in by_column.items() if strata == combinations]
        shared = [column for column, strata in by_column.items() if strata != combinations]
        for columns in own + ([shared] if shared else []):
            pooled = _pooled_rows([r for r in members if r["column"] in columns], registry, alpha)
            out += pooled
            if pooled and pooled[0]["comparison"].p is not None:
                answered |= {(key, column) for column in columns}
    return out, answered


def _pooled_rows(part: list[dict[str, Any]], registry: dict[str, Any], alpha: float) -> list[dict[str, Any]]:
    """The pooled row and its heterogeneity row over ``part``'s strata ([] when there is nothing to average:
    one stratum, or a cell not scored yet)."""
    strata: dict[tuple, dict[str, dict[str, Any]]] = {}
    for row in part:
        seeds = strata.setdefault((_stratum(row), row["column"]), {})
        if str(row["seeds"][0]) in seeds:  # two comparisons of one stratum and seed: no single pair to pool
            return []
        seeds[str(row["seeds"][0])] = row
    scored = all(r["_cells"][0].score is not None and r["_cells"][1].score is not None for r in part)
    if len(strata) < 2 or not scored:
        return []
    first = part[0]
    pool = first["_pool_over"]
    columns = list(dict.fromkeys(r["column"] for r in part))
    fields = {**{k: v for k, v in first.items() if k not in ("_cells", "ci", "factors", "selected")},
              "column": "+".join(columns), "task": "+".join(dict.fromkeys(r["task"] for r in part)),
              "factors": dict(first["_pool_key"][4]), "pooled": True, "pooled_over": list(pool),
              "seeds": sorted({str(r["seeds"][0]) for r in part}), "ci": [None, None], "_cells": None}
    metrics = sorted({r["metric"] for r in part})
    if len(metrics) > 1:
        note = f"strata on different metrics ({', '.join(metrics)}): not averaged"
        return [{**fields, "cell": f"pooled over {' × '.join(pool)}", "heterogeneity": False, "score": None,
                 "baseline_score": None, "n": 0, "comparison": Comparison("", note=note), "strata": []}]
    units = []
    for (values, column), by_seed in strata.items():
        name = ", ".join(f"{f}={v}" for f, v in zip(pool, values)) + (f" ({column})" if column not in values else "")
        pairs = [(by_seed[s]["_cells"][1], by_seed[s]["_cells"][0]) for s in sorted(by_seed)]
        units.append((Stratum(name, column, pairs), list(by_seed.values())))
    result = pool_strata([u[0] for u in units], registry, margin=first["_margin"],
                         noninferiority=first["_noninferiority"], alpha=alpha)
    means = [(sum(r["score"] for r in rows) / len(rows), sum(r["baseline_score"] for r in rows) / len(rows))
             for _, rows in units]
    fields.update(score=sum(m for m, _ in means) / len(means), baseline_score=sum(b for _, b in means) / len(means))
    if not isinstance(result, StrataResult):
        return [{**fields, "cell": f"pooled over {' × '.join(pool)}", "heterogeneity": False, "n": result.n_paired,
                 "comparison": result, "strata": []}]
    cell = f"pooled over {' × '.join(pool)} ({len(units)} strata)"
    return [{**fields, "cell": cell, "heterogeneity": False, "n": result.comparison.n_paired,
             "comparison": result.comparison, "strata": result.strata},
            {**fields, "cell": f"heterogeneity over {len(units)} strata", "heterogeneity": True,
             "n": result.comparison.n_paired, "comparison": result.heterogeneity, "strata": result.strata}]
