"""A sweep comparison pooled over seeds, and equivalence (TOST) on a difference's CI.

Pooled over seeds: the difference averaged over seeds, on the items every seed scored; the permutation swaps an
item's two arms in every seed at once and the bootstrap resamples items with all their seeds (items are the unit
both arms share; where the task names each item's cluster, whole clusters are swapped and resampled). Both hold
the trained runs fixed, so the run-to-run variance the seeds show is added (medbench.run_variance): p is the larger
of the permutation p and a t test on items and runs, the CI is widened to match, so a pooled p speaks of
retraining, not only of these runs. Each seed's own difference (on the same items;
their mean is the pooled one) is listed beside it.
"""

from __future__ import annotations

from typing import Any, Callable

from medbench import run_variance
from medbench.leaderboard import stats
from medbench.leaderboard.comparisons import clustered, corpus_metric, per_item_values
from medbench.leaderboard.ranking import is_finite_number
from medbench.leaderboard.table import Comparison

ALPHA = 0.05
MIN_EQUIVALENCE_ITEMS = 30  # below it the bootstrap CI of a difference is too coarse to call two arms equivalent


def finite(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def paired_run(pairs: list[tuple[Any, Any]], registry: dict[str, Any]
               ) -> tuple[int, Callable[[float], dict[str, float]], list[float]] | Comparison:
    """(items paired, ``run(confidence)``: the paired bootstrap and permutation test of ``member - base`` averaged
    over the seeds' (base, member) pairs, with the training runs' variance where two seeds or more show it (its
    RunVariance under "runs"), each seed's own difference on those items), or a Comparison saying why there is
    nothing to pair."""
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
    clusters = clustered([row[0] for row in a], [row[0] for row in b])
    a_values = [per_item_values(metric, [row[k] for row in a]) for k in range(seeds)]
    b_values = [per_item_values(metric, [row[k] for row in b]) for k in range(seeds)]
    if all(v is not None for v in a_values + b_values):
        per_seed = [(sum(vb) - sum(va)) / len(common) for va, vb in zip(a_values, b_values)]
        mean_a = [sum(v[i] for v in a_values) / seeds for i in range(len(common))]
        mean_b = [sum(v[i] for v in b_values) / seeds for i in range(len(common))]
        return len(common), _with_runs(lambda confidence: stats.paired_bootstrap(
            None, None, mean_a, mean_b, confidence=confidence, clusters=clusters), pairs, registry), per_seed
    value = corpus_metric(metric, registry)
    if value is None:
        return Comparison("", len(common), note="no per-item values to pair")
    per_seed = [value([row[k] for row in b]) - value([row[k] for row in a]) for k in range(seeds)]

    def over_seeds(_refs: list[Any], rows: list[tuple]) -> float:
        return sum(value([row[k] for row in rows]) for k in range(seeds)) / seeds

    return len(common), _with_runs(lambda confidence: stats.paired_bootstrap(
        over_seeds, list(range(len(common))), a, b, confidence=confidence, clusters=clusters), pairs, registry), \
        per_seed


def _with_runs(run: Callable[[float], dict[str, Any]], pairs: list[tuple[Any, Any]], registry: dict[str, Any]
               ) -> Callable[[float], dict[str, Any]]:
    """``run`` with the training runs' variance in its p and CI (module docstring); unchanged with one seed."""
    runs = run_variance.over_seeds(pairs, registry)
    if runs is None:
        return run

    def widened(confidence: float) -> dict[str, Any]:
        result = dict(run(confidence))
        delta = float(result["delta"])
        result["ci_low"], result["ci_high"] = runs.widen(delta, float(result["ci_low"]), float(result["ci_high"]),
                                                         confidence)
        if is_finite_number(result["p"]):
            result["p"] = max(float(result["p"]), runs.p(delta))
        result["runs"] = runs
        return result

    return widened


def pooled_over_seeds(pairs: list[tuple[Any, Any]], registry: dict[str, Any], *, margin: float | None = None,
                      alpha: float = ALPHA) -> tuple[Comparison, list[float]]:
    """One test of ``member - base`` over several seeds' (base, member) cell pairs on the same items, and each
    seed's difference on those items (empty when nothing pairs)."""
    paired = paired_run(pairs, registry)
    if isinstance(paired, Comparison):
        return paired, []
    n, run, per_seed = paired
    result = run(0.95)
    comparison = Comparison(f"pooled over {len(pairs)} seeds", n, finite(result["delta"]), finite(result["p"]),
                            ci_low=finite(result["ci_low"]), ci_high=finite(result["ci_high"]))
    if result.get("runs") is not None:
        comparison.note = result["runs"].describe()
    set_direction(comparison, pairs[0][1].higher_is_better)
    if margin is not None:
        equivalence(comparison, run(1 - 2 * alpha), margin)
    return comparison, per_seed


def pooled_comparison(pairs: list[tuple[Any, Any]], registry: dict[str, Any], *, margin: float | None = None,
                      alpha: float = ALPHA) -> Comparison:
    """pooled_over_seeds' test alone."""
    return pooled_over_seeds(pairs, registry, margin=margin, alpha=alpha)[0]


def set_direction(comparison: Comparison, higher_is_better: bool) -> None:
    if comparison.delta:
        better = comparison.delta > 0 if higher_is_better else comparison.delta < 0
        comparison.direction = "better" if better else "worse"


def equivalence(comparison: Comparison, narrow: dict[str, Any], margin: float) -> None:
    """TOST at alpha: equivalent when the 1 - 2*alpha CI of the difference lies inside +-margin (and the CI rests
    on enough items to mean something: a handful of identical answers has a zero-width CI)."""
    if comparison.n_paired < MIN_EQUIVALENCE_ITEMS:
        comparison.note = (comparison.note + "; " if comparison.note else "") + \
            f"too few items ({comparison.n_paired}) for an equivalence verdict ({MIN_EQUIVALENCE_ITEMS} needed)"
        return
    lo, hi = finite(narrow["ci_low"]), finite(narrow["ci_high"])
    inside = lo is not None and hi is not None and -margin < lo and hi < margin
    shown = [f"{v:.3f}" if v is not None else "–" for v in (lo, hi)]
    comparison.note = (comparison.note + "; " if comparison.note else "") + \
        f"{'equivalent' if inside else 'not shown equivalent'} within ±{margin:g} (90% CI {shown[0]}..{shown[1]})"
