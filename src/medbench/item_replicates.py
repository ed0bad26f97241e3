"""One data set's items in every (stratum, seed) pair of cells that scored it, and their replicates.

The unit both arms share is an item: a flip replicate swaps an item's two arms in every pair at once (a paired
permutation), a bootstrap replicate resamples items with all their pairs, so one item's differences across models
and seeds stay together. Where the task names each item's cluster (its samples' ``cluster``), the cluster is the
unit: its items flip together and are drawn together. Used by the stratified pooled test (medbench.stratified)
and the training-run variance of a difference pooled over seeds (medbench.run_variance).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from medbench.leaderboard.comparisons import clustered, corpus_metric, per_item_values, vectorised_metric
from medbench.leaderboard.resampling import block_rows, cluster_codes, one_pass, weight_blocks


def _pairable(doc_id: Any) -> bool:
    return doc_id is not None and not isinstance(doc_id, (list, dict))


Replicates = Callable[[bool, int, int], np.ndarray]  # (flip, iters, seed) -> (iters, pairs) differences


def column_replicates(pairs: list[tuple[Any, Any]], registry: dict[str, Any]
                      ) -> tuple[int, np.ndarray, Replicates] | str:
    """One data set's items in every (stratum, seed) pair that scored it: (items, each pair's difference,
    replicates) or why nothing pairs. Replicates flip an item's arms in every pair at once (flip) or resample items
    with all their pairs (bootstrap)."""
    metric = pairs[0][0].metric
    by_pair = []
    for base, member in pairs:
        items: dict[Any, list[Any]] = {}
        for side, cell in ((0, base), (1, member)):
            for sample in cell.samples or []:
                if _pairable(sample.get("doc_id")):
                    items.setdefault(sample["doc_id"], [None, None])[side] = sample
        by_pair.append(items)
    common = sorted(set.intersection(*({d for d, two in items.items() if None not in two} for items in by_pair)),
                    key=lambda d: (str(type(d)), d))
    if not common:
        return "no items every stratum and seed of a data set scored in both arms"
    n = len(common)
    a = [[items[d][0] for d in common] for items in by_pair]
    b = [[items[d][1] for d in common] for items in by_pair]
    groups = cluster_codes(clustered(a[0], b[0]))
    values = [(per_item_values(metric, x), per_item_values(metric, y)) for x, y in zip(a, b)]
    if all(va is not None and vb is not None for va, vb in values):
        d = np.array([np.subtract(vb, va) for va, vb in values], dtype=float).T  # (items, pairs)

        def linear(flip: bool, iters: int, seed: int) -> np.ndarray:
            # a cluster draw holds as many items as its clusters do: the mean is over the items drawn
            return np.concatenate([(d.sum(axis=0) - 2 * block @ d) / n if flip else
                                   block @ d / block.sum(axis=1)[:, None]
                                   for block in _blocks(flip, n, iters, seed, groups)])

        return n, d.mean(axis=0), linear
    value = corpus_metric(metric, registry)
    if value is None:
        return "no per-item values to pair"
    fast = vectorised_metric(metric, registry)
    both = [x + y for x, y in zip(a, b)]  # one list per pair, kept whole: the fast metric reads it once a pass

    def corpus(flip: bool, iters: int, seed: int) -> np.ndarray:
        out = []
        with one_pass():
            for block in _blocks(flip, n, iters, seed, groups):
                if fast is not None and flip:  # arm A' takes b where the item flips, B' the other copy
                    w_a, w_b = np.hstack([1 - block, block]), np.hstack([block, 1 - block])
                    out.append(np.stack([fast(w_b, None, s) - fast(w_a, None, s) for s in both], axis=1))
                elif fast is not None:
                    out.append(np.stack([fast(block, None, y) - fast(block, None, x) for x, y in zip(a, b)], axis=1))
                else:
                    out.append(np.array([[_slow(value, x, y, row, flip) for x, y in zip(a, b)] for row in block]))
        return np.concatenate(out)

    return n, np.array([value(y) - value(x) for x, y in zip(a, b)]), corpus


def _slow(value: Callable[[list[Any]], float], a: list[Any], b: list[Any], row: np.ndarray, flip: bool) -> float:
    """One replicate of a metric without a fast form: ``row`` is a flip mask or resampling counts."""
    if flip:
        return value([x if swap else y for x, y, swap in zip(a, b, row)]) - \
            value([y if swap else x for x, y, swap in zip(a, b, row)])
    picked = np.repeat(np.arange(len(a)), row.astype(int))
    return value([b[i] for i in picked]) - value([a[i] for i in picked])


def _blocks(flip: bool, n: int, iters: int, seed: int, groups: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Flip masks (0/1) or resampling counts, (rows, n) float blocks; one seeded stream per data set. With
    ``groups`` (each item's cluster) a cluster's items flip together."""
    if flip:
        rng = np.random.default_rng(seed)
        units = n if groups is None else int(groups.max()) + 1
        for rows in block_rows(n, iters):
            mask = rng.integers(0, 2, size=(rows, units)).astype(float)
            yield mask if groups is None else mask[:, groups]
        return
    yield from weight_blocks(n, iters, seed, groups)
