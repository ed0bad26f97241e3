"""Per-cell statistics: a cell's confidence interval, and a cell against the baseline's cell on the items both
scored (medbench.leaderboard.stats does the arithmetic)."""

from __future__ import annotations

import math
from typing import Any, Callable

from medbench.leaderboard import stats
from medbench.leaderboard.table import CONFIDENCE, LOWER_IS_BETTER, PER_ITEM_FROM_PRED, Cell, Comparison, nan_to_none
from medbench.record_schema import is_proportion  # noqa: F401  (re-exported: the leaderboard's own name for it)


def metric_registry_or_empty():
    try:
        from medbench.metrics import metric_registry

        return metric_registry()
    except Exception:  # a broken metrics plugin must not take the leaderboard down
        return {}


def corpus_metric(name: str, registry: dict[str, Any]) -> Callable[[list[dict[str, Any]]], float] | None:
    """``name`` as a function of a list of samples, from the ``register_metrics`` registry (``per_label_f1:nurse``
    is the ``nurse`` part of ``per_label_f1``); None when no registered metric gives it."""
    metric = registry.get(name.split(":", 1)[0])
    if metric is None:
        return None

    def value(samples: list[dict[str, Any]]) -> float:
        if hasattr(metric, "compute"):
            return float(metric.compute(samples).get(name, math.nan))
        return float(metric.fn([s.get("gold") for s in samples], [s.get("pred") for s in samples]))

    return value


def vectorised_metric(metric: str, registry: dict[str, Any]) -> stats.Vectorised | None:
    """The all-resamples-at-once form a label metric declares (``register(..., resampled=fn)``), as a function
    of (weights, _, samples); None when it declares none."""
    entry = registry.get(metric)
    fast = getattr(entry, "resampled", None)
    if entry is None or fast is None or getattr(entry, "needs", "labels") != "labels":
        return None
    read: dict[int, tuple[list[Any], list[Any], list[Any]]] = {}

    def resampled(weights: Any, _refs: Any, samples: list[dict[str, Any]]) -> Any:
        # Every block of one resampling pass brings the same samples: their golds and preds are read once (the
        # samples are kept too, so that their id is not reused while this function lives).
        if id(samples) not in read:
            read[id(samples)] = (samples, [s.get("gold") for s in samples], [s.get("pred") for s in samples])
        _, golds, preds = read[id(samples)]
        return fast(weights, golds, preds)

    return resampled


def metric_higher_is_better(metric: str, registry: dict[str, Any], record: dict[str, Any] | None = None) -> bool:
    """A registered metric's own direction; else the one lm-eval reported for it (``record``'s metric, from the
    task's metric_list: a custom calibration error, lower is better); else by name."""
    if metric in registry:
        return bool(registry[metric].higher_is_better)
    declared = ((record or {}).get("metrics") or {}).get(metric)
    if isinstance(declared, dict) and isinstance(declared.get("higher_is_better"), bool):
        return declared["higher_is_better"]
    return metric not in LOWER_IS_BETTER


# A per-item value past this is no metric's (they are shares, scores, log-likelihoods): summing or squaring it
# overflows a float.
MAX_ITEM_VALUE = 1e100


def samples_disagree(cell: Cell) -> str | None:
    """Why a cell's samples cannot be the items its score came from (their count is not its n, or their mean of
    a per-item metric is not its score); None when they agree or cannot be checked."""
    values = per_item_values(cell.metric, cell.samples)
    if not values:
        return None
    if len(values) != cell.n:
        return f"its samples hold {len(values)} items but its n is {cell.n}"
    if not all(abs(v) <= MAX_ITEM_VALUE for v in values):  # NaN fails too; 1e308s overflow the sum
        return f"its samples hold {cell.metric} values no score comes from (beyond +-{MAX_ITEM_VALUE:g})"
    mean = math.fsum(values) / len(values)
    if cell.score is not None and not math.isclose(mean, cell.score, rel_tol=1e-6, abs_tol=1e-9):
        return f"its samples' mean {cell.metric} is {mean:.4g} but its score is {cell.score:.4g}"
    return None


def per_item_values(metric: str, samples: list[dict[str, Any]]) -> list[float] | None:
    """Each sample's value of ``metric`` (lm-eval saves acc, acc_norm, exact_match per item), or None."""
    if not samples:
        return None
    if all(isinstance(s.get(metric), (int, float)) for s in samples):  # bool is an int too
        return [float(s[metric]) for s in samples]
    if metric in PER_ITEM_FROM_PRED and all("gold" in s and "pred" in s for s in samples):
        return [PER_ITEM_FROM_PRED[metric](s["gold"], s["pred"]) for s in samples]
    return None


def clustered(*sides: list[dict[str, Any]]) -> list[Any] | None:
    """Each item's ``cluster`` (the task's metadata.cluster_field, written into its sample row), from the first
    of ``sides`` (the same items, paired) where every row has one and the clusters group items (some holds two);
    None otherwise: items are then independent units."""
    for samples in sides:
        clusters = [s.get("cluster") for s in samples]
        if clusters and all(c is not None for c in clusters):
            return clusters if stats.cluster_codes(clusters) is not None else None
    return None


def _is_binary(values: list[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def cell_interval(cell: Cell, registry: dict[str, Any], *, confidence: float = CONFIDENCE,
                  iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED) -> None:
    """Fill ``cell.ci_low/ci_high/ci_method`` from its samples (Wilson or bootstrap), else from its stderr."""
    values = per_item_values(cell.metric, cell.samples)
    lo = hi = None
    clusters = clustered(cell.samples) if cell.samples else None
    if values and clusters is not None:  # Wilson's items are independent; a cluster's are not
        lo, hi = stats.bootstrap_mean_ci(values, iters=iters, seed=seed, confidence=confidence, clusters=clusters)
        cell.ci_method = "cluster-bootstrap"
    elif values:
        if _is_binary(values):
            lo, hi = stats.wilson_interval(sum(values), len(values), confidence)
            cell.ci_method = "wilson"
        else:
            lo, hi = stats.bootstrap_mean_ci(values, iters=iters, seed=seed, confidence=confidence)
            cell.ci_method = "bootstrap"
    elif cell.samples and corpus_metric(cell.metric, registry) is not None:
        value = corpus_metric(cell.metric, registry)
        # Resample the samples themselves (refs and preds are both the sample list; the metric reads what it needs).
        lo, hi = stats.bootstrap_ci(lambda _refs, samples: value(samples), cell.samples, cell.samples, iters=iters,
                                    seed=seed, confidence=confidence,
                                    vectorised=vectorised_metric(cell.metric, registry), clusters=clusters)
        cell.ci_method = "cluster-bootstrap" if clusters is not None else "bootstrap"
    elif cell.score is not None and cell.stderr is not None:
        z = stats.z_value(confidence)
        lo, hi = cell.score - z * cell.stderr, cell.score + z * cell.stderr
        if is_proportion(cell.metric) and 0 <= cell.score <= 1:  # never [-0.066, 1.066] for an accuracy
            lo, hi = max(lo, 0.0), min(hi, 1.0)
        cell.ci_method = "normal"
    cell.ci_low, cell.ci_high = nan_to_none(lo), nan_to_none(hi)
    if cell.ci_low is None or cell.ci_high is None:
        cell.ci_low = cell.ci_high = None
        cell.ci_method = ""


def permutation_comparison(result: dict[str, Any], n: int, clusters: list[Any] | None = None) -> Comparison:
    test = "paired-permutation" if clusters is None else "cluster-permutation"
    return Comparison(test, n, nan_to_none(result["delta"]), nan_to_none(result["p"]),
                      ci_low=nan_to_none(result["ci_low"]), ci_high=nan_to_none(result["ci_high"]))


def _pairable(doc_id: Any) -> bool:
    """A doc_id two samples can share: a list or an object (read_samples clears those) is none."""
    return doc_id is not None and not isinstance(doc_id, (list, dict))


def compare_cells(base: Cell, other: Cell, registry: dict[str, Any], *, confidence: float = CONFIDENCE,
                  iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED) -> Comparison:
    """``other`` against ``base`` on the items both scored (same doc_id; the same data, by its hash)."""
    if base.metric != other.metric:
        return Comparison("", note=f"different metrics ({base.metric} vs {other.metric})")
    base_hash = ((base.record or {}).get("task") or {}).get("data_hash")
    other_hash = ((other.record or {}).get("task") or {}).get("data_hash")
    if base_hash and other_hash and base_hash != other_hash:
        return Comparison("", note="scored on different data (data hashes differ)")
    definitions = {((cell.record or {}).get("task") or {}).get("config_hash") for cell in (base, other)}
    if None not in definitions and len(definitions) == 2:  # the task's YAML or code changed between the two evals
        return Comparison("", note="scored on different definitions of the task (config hashes differ)")
    if not base.samples or not other.samples:
        return Comparison("", note="no per-item samples to pair (samples.jsonl missing)")
    base_items = {s["doc_id"]: s for s in base.samples if _pairable(s.get("doc_id"))}
    other_items = {s["doc_id"]: s for s in other.samples if _pairable(s.get("doc_id"))}
    common = sorted(set(base_items) & set(other_items), key=lambda d: (str(type(d)), d))
    if not common:
        return Comparison("", note="no items in common with the baseline")
    a_samples = [base_items[d] for d in common]
    b_samples = [other_items[d] for d in common]
    a_values, b_values = per_item_values(base.metric, a_samples), per_item_values(other.metric, b_samples)
    clusters = clustered(a_samples, b_samples)
    comparison: Comparison
    if clusters is None and a_values is not None and b_values is not None and _is_binary(a_values) \
            and _is_binary(b_values):  # McNemar's discordant pairs are independent; a cluster's are not
        b = sum(1 for x, y in zip(a_values, b_values) if x == 1 and y == 0)
        c = sum(1 for x, y in zip(a_values, b_values) if x == 0 and y == 1)
        delta = (sum(b_values) - sum(a_values)) / len(common)
        comparison = Comparison("mcnemar-exact", len(common), delta, stats.mcnemar_exact(b, c), b=b, c=c)
    elif a_values is not None and b_values is not None:
        result = stats.paired_bootstrap(None, None, a_values, b_values, iters=iters, seed=seed, confidence=confidence,
                                        clusters=clusters)
        comparison = permutation_comparison(result, len(common), clusters)
    elif corpus_metric(base.metric, registry) is not None:
        if [s.get("gold") for s in a_samples] != [s.get("gold") for s in b_samples]:
            return Comparison("", len(common), note="the gold answers differ on shared doc_ids")
        value = corpus_metric(base.metric, registry)
        result = stats.paired_bootstrap(lambda _refs, samples: value(samples), list(range(len(common))), a_samples,
                                        b_samples, iters=iters, seed=seed, confidence=confidence,
                                        vectorised=vectorised_metric(base.metric, registry), clusters=clusters)
        comparison = permutation_comparison(result, len(common), clusters)
    else:
        return Comparison("", len(common), note="no per-item values to pair")
    if comparison.delta is not None and comparison.delta != 0:
        better = comparison.delta > 0 if other.higher_is_better else comparison.delta < 0
        comparison.direction = "better" if better else "worse"
    return comparison
