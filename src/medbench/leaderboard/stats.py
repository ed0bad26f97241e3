"""Statistics for the leaderboard: confidence intervals, paired tests, multiple-testing correction, aggregates.

Pure functions over plain numbers (numpy for the resampling). Every random draw takes an explicit seed, so the
same records always render the same leaderboard.

- ``wilson_interval``: the Wilson score interval for a proportion (accuracy, exact match).
- ``bootstrap_ci`` / ``bootstrap_mean_ci``: percentile bootstrap over items for any metric (F1, ROUGE, AUROC).
- ``mcnemar_exact``: McNemar's exact test on the discordant pairs of two classifiers scored on the same items.
- ``paired_permutation``: paired permutation (approximate-randomization) test of a metric difference on the same
  items; ``paired_bootstrap``: that difference with its paired percentile bootstrap CI and the permutation p.
- Each resampling function takes ``clusters`` (a cluster label per item, e.g. the patient scenario an item was
  written from): the bootstrap then draws whole clusters and the permutation swaps whole clusters, since items of
  one cluster are not independent (Field & Welsh 2007; Cameron & Miller 2015).
- ``benjamini_hochberg``: BH-adjusted p-values (q-values) controlling the false discovery rate.
- ``mean_sd``, ``mean_win_rate`` (HELM), ``weighted_average``.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable, Iterator, Sequence

import numpy as np

# The resampling (in blocks: bounded memory) and the vectorised metrics live in resampling; re-exported here, where
# plugins and callers find them.
from medbench.leaderboard.resampling import (CHUNK_CELLS, DEFAULT_ITERS, DEFAULT_SEED, Vectorised,
                                             accuracy_resampled, binary_f1_resampled, block_rows, cluster_codes,
                                             index_blocks, index_rows, joined, macro_f1_resampled, one_pass,
                                             resample_weights, weight_blocks)

__all__ = ["DEFAULT_ITERS", "DEFAULT_SEED", "Vectorised", "accuracy_resampled", "binary_f1_resampled",
           "macro_f1_resampled", "resample_weights"]


def z_value(confidence: float = 0.95) -> float:
    """The two-sided standard-normal quantile: 1.959964 for 95 %."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; (nan, nan) when n is 0.

    centre = (p + z²/2n) / (1 + z²/n), half-width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave it a hair off.
    return (0.0 if successes == 0 else max(0.0, centre - half), 1.0 if successes == n else min(1.0, centre + half))


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def bootstrap_mean_ci(values: Sequence[float], *, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED,
                      confidence: float = 0.95, clusters: Sequence[Any] | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-item values (vectorised); by cluster with ``clusters``."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan)
    groups = cluster_codes(clusters)
    if groups is not None:
        means = joined([w @ arr / w.sum(axis=1) for w in weight_blocks(arr.size, iters, seed, groups)])
        return _percentile_interval(means, confidence)
    means = joined([arr[idx].mean(axis=1) for idx in index_blocks(arr.size, iters, seed)])
    return _percentile_interval(means, confidence)


def bootstrap_ci(metric_fn: Callable[[list[Any], list[Any]], float], refs: Sequence[Any], preds: Sequence[Any], *,
                 iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED, confidence: float = 0.95,
                 vectorised: Vectorised | None = None, clusters: Sequence[Any] | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of a corpus-level metric ``metric_fn(refs, preds)`` by resampling items.

    ``vectorised(weights, refs, preds)``, when given, computes the same metric for all resamples at once from
    resample_weights (same seed, same resamples, same result; e.g. macro_f1_resampled)."""
    refs, preds = list(refs), list(preds)
    if len(refs) != len(preds):
        raise ValueError(f"refs and preds differ in length ({len(refs)} vs {len(preds)})")
    if not refs:
        return (math.nan, math.nan)
    groups = cluster_codes(clusters)
    if vectorised is not None:
        with one_pass():
            stats = joined([np.asarray(vectorised(weights, refs, preds), dtype=float)
                             for weights in weight_blocks(len(refs), iters, seed, groups)])
    else:
        stats = np.array([float(metric_fn([refs[i] for i in idx], [preds[i] for i in idx]))
                          for idx in index_rows(len(refs), iters, seed, groups)])
    return _percentile_interval(stats, confidence)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    ``b``: items the baseline got right and the other model wrong; ``c``: the reverse. Under the null each
    discordant item is a fair coin, so p = min(1, 2 * P(X <= min(b, c))) with X ~ Binomial(b + c, 1/2)
    (what ``scipy.stats.binomtest(b, b + c, 0.5)`` gives). No discordant pairs: p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _swap_blocks(n: int, iters: int, seed: int, width: int,
                 groups: np.ndarray | None = None) -> tuple[Iterator[np.ndarray], bool]:
    """swap_masks as (blocks of rows, exact), each block sized for ``width`` columns of float work per row; with
    ``groups`` (cluster_codes) the items of a cluster swap together."""
    if groups is not None:  # each block spread to its items, so sized by them (an exact set can be 512 x n)
        blocks, exact = _swap_blocks(int(groups.max()) + 1, iters, seed, width)
        rows = (block[start:start + step] for block in blocks
                for step in [max(1, CHUNK_CELLS // max(width, 1))] for start in range(0, len(block), step))
        return (part[:, groups] for part in rows), exact
    if 2 ** n <= iters:
        return iter([((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool)]), True

    def blocks() -> Iterator[np.ndarray]:
        rng = np.random.default_rng(seed)
        for rows in block_rows(width, iters):
            yield rng.integers(0, 2, size=(rows, n)) == 1

    return blocks(), False


def swap_masks(n: int, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, bool]:
    """The swap patterns of a paired permutation test, (masks, exact): masks[k, i] True swaps the two systems'
    outputs on item i. All 2**n patterns (identity included) when 2**n <= iters, so the test is exact; otherwise
    ``iters`` seeded random patterns."""
    blocks, exact = _swap_blocks(n, iters, seed, n)
    found = list(blocks)
    return (np.concatenate(found) if found else np.zeros((0, n), dtype=bool)), exact


def _permutation_p(observed: float, permuted: np.ndarray, exact: bool, scale: float) -> float:
    """Two-sided p: the share of permuted deltas at least as large in size as the observed one."""
    if math.isnan(observed):
        return math.nan
    if observed == 0:
        return 1.0
    permuted = permuted[~np.isnan(permuted)]
    if permuted.size == 0:
        return math.nan
    # The permuted deltas are summed in another order than the observed one: a tie must not be lost to rounding.
    tol = 1e-9 * max(abs(observed), scale)
    hits = int(np.count_nonzero(np.abs(permuted) >= abs(observed) - tol))
    # Random patterns: +1 counts the observed assignment itself, so p is never 0 (Phipson & Smyth 2010).
    return min(1.0, hits / permuted.size if exact else (hits + 1) / (permuted.size + 1))


def paired_permutation(metric_fn: Callable[[list[Any], list[Any]], float] | None, refs: Sequence[Any] | None,
                       preds_a: Sequence[Any], preds_b: Sequence[Any], *, iters: int = DEFAULT_ITERS,
                       seed: int = DEFAULT_SEED, vectorised: Vectorised | None = None,
                       clusters: Sequence[Any] | None = None) -> float:
    """Two-sided p-value of a paired approximate-randomization (permutation) test of ``metric(b) - metric(a)``.

    Under the null the two systems' outputs on each item are exchangeable: each permutation swaps them on a subset
    of the items and recomputes the difference; p is the share of permutations whose |difference| is at least
    the observed one (Noreen 1989; Riezler & Maxwell 2005; Dror et al. 2018). Exact (all 2**n swap patterns,
    p = count / 2**n) when 2**n <= iters, else ``iters`` seeded random patterns, p = (count + 1) / (iters + 1).
    Arguments as in paired_bootstrap; ``vectorised`` is called on the 2n items ``a + b`` with 0/1 weights (each
    item once, from one system or the other), so it must depend only on the weighted (ref, pred) pairs, as the
    *_resampled metrics do. An observed difference of exactly 0 gives p = 1. With ``clusters`` whole clusters swap
    (exact over the 2**clusters patterns when they are few enough).
    """
    a, b = list(preds_a), list(preds_b)
    if len(a) != len(b) or (refs is not None and len(refs) != len(a)):
        raise ValueError("a paired comparison needs the same number of items for both systems")
    n = len(a)
    if n == 0:
        return math.nan
    masks, exact = _swap_blocks(n, iters, seed, 2 * n, cluster_codes(clusters))
    if metric_fn is None:
        va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        d = vb - va
        # Swapping item i flips the sign of d_i: the permuted sum is sum(d) - 2 * sum of the swapped d_i.
        permuted = joined([(d.sum() - 2 * (block.astype(float) @ d)) / n for block in masks])
        return _permutation_p(float(vb.mean() - va.mean()), permuted, exact,
                              float(max(np.abs(va).max(), np.abs(vb).max())))
    refs = list(refs or [])
    score_a, score_b = float(metric_fn(refs, a)), float(metric_fn(refs, b))
    if vectorised is not None:
        # System A' takes a's item i where the mask is False and b's where it is True; B' the other copy.
        both_refs, both_preds = refs + refs, a + b
        blocks = []
        with one_pass():
            for block in masks:
                take_b = block.astype(float)
                weights_a, weights_b = np.hstack([1 - take_b, take_b]), np.hstack([take_b, 1 - take_b])
                blocks.append(np.asarray(vectorised(weights_b, both_refs, both_preds), dtype=float)
                              - np.asarray(vectorised(weights_a, both_refs, both_preds), dtype=float))
        permuted = joined(blocks)
    else:
        rows = []
        for mask in (mask for block in masks for mask in block):
            perm_a = [y if swap else x for x, y, swap in zip(a, b, mask)]
            perm_b = [x if swap else y for x, y, swap in zip(a, b, mask)]
            rows.append(float(metric_fn(refs, perm_b)) - float(metric_fn(refs, perm_a)))
        permuted = np.array(rows)
    return _permutation_p(score_b - score_a, permuted, exact, max(abs(score_a), abs(score_b)))


def paired_bootstrap(metric_fn: Callable[[list[Any], list[Any]], float] | None, refs: Sequence[Any] | None,
                     preds_a: Sequence[Any], preds_b: Sequence[Any], *, iters: int = DEFAULT_ITERS,
                     seed: int = DEFAULT_SEED, confidence: float = 0.95, vectorised: Vectorised | None = None,
                     clusters: Sequence[Any] | None = None) -> dict[str, float]:
    """``metric(b) - metric(a)`` on the same items: the observed ``delta``, its paired percentile bootstrap CI
    (``ci_low``, ``ci_high``) and the two-sided p-value ``p`` of a paired permutation test (paired_permutation).

    The p-value is not read off the bootstrap: a bootstrap CI inverted into a p-value is far too small on few
    items (4 items all worse give p ~ 0.002, where no test on 4 pairs can go below 2/16).

    With ``metric_fn`` None, ``preds_a`` and ``preds_b`` are per-item metric values and the metric is their mean.
    Each resample draws item indices once and scores both systems on them. ``vectorised``: as in bootstrap_ci.
    ``clusters``: whole clusters are drawn and swapped.
    """
    a, b = list(preds_a), list(preds_b)
    if len(a) != len(b) or (refs is not None and len(refs) != len(a)):
        raise ValueError("a paired comparison needs the same number of items for both systems")
    n = len(a)
    if n == 0:
        return {"delta": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan}
    groups = cluster_codes(clusters)  # a cluster draw is a resample of unequal size: its mean is over its items
    if metric_fn is None:
        va, vb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        delta = float(vb.mean() - va.mean())
        deltas = joined([w @ (vb - va) / w.sum(axis=1) for w in weight_blocks(n, iters, seed, groups)]) \
            if groups is not None else \
            joined([vb[idx].mean(axis=1) - va[idx].mean(axis=1) for idx in index_blocks(n, iters, seed)])
    elif vectorised is not None:
        refs = list(refs or [])
        delta = float(metric_fn(refs, b)) - float(metric_fn(refs, a))
        with one_pass():
            deltas = joined([np.asarray(vectorised(weights, refs, b), dtype=float)
                              - np.asarray(vectorised(weights, refs, a), dtype=float)
                              for weights in weight_blocks(n, iters, seed, groups)])
    else:
        refs = list(refs or [])
        delta = float(metric_fn(refs, b)) - float(metric_fn(refs, a))
        resampled = []
        for row in index_rows(n, iters, seed, groups):
            r = [refs[i] for i in row]
            resampled.append(float(metric_fn(r, [b[i] for i in row])) - float(metric_fn(r, [a[i] for i in row])))
        deltas = np.array(resampled)
    p = paired_permutation(metric_fn, refs, a, b, iters=iters, seed=seed, vectorised=vectorised, clusters=clusters)
    deltas = deltas[~np.isnan(deltas)]
    lo, hi = _percentile_interval(deltas, confidence) if deltas.size else (math.nan, math.nan)
    return {"delta": delta, "ci_low": lo, "ci_high": hi, "p": float(p)}


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1), in the input order.

    ``None`` or nan entries (no test) stay None and do not count towards the number of tests m.
    q_(i) = min over j >= i of p_(j) * m / j for the sorted p-values; reject where q <= alpha.
    """
    present = [(i, float(p)) for i, p in enumerate(pvalues) if p is not None and not math.isnan(float(p))]
    out: list[float | None] = [None] * len(pvalues)
    m = len(present)
    if m == 0:
        return out
    ordered = sorted(present, key=lambda item: item[1])
    running = 1.0
    for rank in range(m, 0, -1):
        index, p = ordered[rank - 1]
        running = min(running, p * m / rank)
        out[index] = min(1.0, running)
    return out


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1); sd is None for a single value."""
    vals = [float(v) for v in values]
    if not vals:
        return (math.nan, None)
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return (mean, None)
    # x * x, not x ** 2: a float square past the float range is inf there, an OverflowError here.
    return (mean, math.sqrt(sum((v - mean) * (v - mean) for v in vals) / (len(vals) - 1)))


def mean_win_rate(table: Sequence[Sequence[float | None]],
                  higher_is_better: Sequence[bool] | None = None) -> list[float | None]:
    """HELM's mean win rate: per column, the share of the other rows with a value that this row beats (a tie
    counts half); averaged over the columns where the row has a value. Columns with fewer than two values are
    skipped; a row with no value anywhere gets None.

    ``table[r][c]`` is row r's score on column c (None: not scored).
    """
    rows = len(table)
    cols = max((len(r) for r in table), default=0)
    higher = list(higher_is_better) if higher_is_better is not None else [True] * cols
    per_row: list[list[float]] = [[] for _ in range(rows)]
    for c in range(cols):
        values = [(r, table[r][c]) for r in range(rows)
                  if c < len(table[r]) and table[r][c] is not None and not math.isnan(table[r][c])]
        if len(values) < 2:
            continue
        for r, v in values:
            wins = sum((w < v) if higher[c] else (w > v) for _, w in values)
            ties = sum(w == v for _, w in values) - 1
            per_row[r].append((wins + ties / 2) / (len(values) - 1))
    return [sum(w) / len(w) if w else None for w in per_row]


def weighted_average(scores: Sequence[float | None], sizes: Sequence[int]) -> float | None:
    """Average of the scores weighted by their item counts (None entries and zero sizes skipped)."""
    pairs = [(float(s), int(n)) for s, n in zip(scores, sizes)
             if s is not None and not math.isnan(float(s)) and n and n > 0]
    total = sum(n for _, n in pairs)
    return sum(s * n for s, n in pairs) / total if total else None
