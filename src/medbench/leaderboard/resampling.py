"""The resamples behind the leaderboard's bootstrap CIs and paired tests, drawn in blocks, and the metrics that score
every resample of a block at once (``register(..., resampled=fn)``).

Drawing every resample at once held iters x items numbers (6.5 GB for 100k items); a block holds at most
CHUNK_CELLS of them, whatever the number of items. Blocks of rows drawn in turn from one generator are the very
numbers one (iters, n) draw gives, so no result depends on the block size. The metrics below sum whole-number
weights (how often each item was drawn), which is exact in any order, and prepare what they derive from the items
once per pass, not once per block (one_pass).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator, Sequence

import numpy as np

DEFAULT_ITERS = 1000
DEFAULT_SEED = 1234
CHUNK_CELLS = 1 << 21  # resample draws held at once: 16 MB as float64

Vectorised = Callable[[np.ndarray, Sequence[Any], Sequence[Any]], np.ndarray]


def block_rows(n: int, iters: int) -> Iterator[int]:
    """How many of the ``iters`` resamples of ``n`` items each block holds, in order."""
    step = max(1, CHUNK_CELLS // max(n, 1))
    for start in range(0, iters, step):
        yield min(step, iters - start)


def index_blocks(n: int, iters: int, seed: int) -> Iterator[np.ndarray]:
    """The resamples' item indices, (rows, n) blocks in order."""
    rng = np.random.default_rng(seed)
    for rows in block_rows(n, iters):
        yield rng.integers(0, n, size=(rows, n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Index draws (rows, n) as how often each item is drawn (rows, n)."""
    rows = idx.shape[0]
    flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)


def weight_blocks(n: int, iters: int, seed: int, groups: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """index_blocks as how often each item is drawn: the form vectorised metrics take. With ``groups`` (each
    item's cluster, cluster_codes) whole clusters are drawn and an item weighs as often as its cluster was."""
    if groups is not None:  # blocks sized by the items each row spreads to, not by the clusters drawn
        clusters = int(groups.max()) + 1
        rng = np.random.default_rng(seed)
        for rows in block_rows(n, iters):
            yield _counts(rng.integers(0, clusters, size=(rows, clusters)), clusters)[:, groups]
        return
    for idx in index_blocks(n, iters, seed):
        yield _counts(idx, n)


def cluster_codes(clusters: Sequence[Any] | None) -> np.ndarray | None:
    """Each item's cluster as 0..C-1 in order of first appearance; None (every item its own unit) when no
    clusters are given, none holds two items or all are one (no spread between clusters to draw on). Items of one
    cluster (one patient scenario, one condition) are not independent draws: resampling or swapping them one by one
    gives intervals and p-values too narrow."""
    if clusters is None:
        return None
    table: dict[Any, int] = {}
    codes = np.array([table.setdefault(_key(c), len(table)) for c in clusters], dtype=np.int64)
    return codes if 1 < len(table) < len(codes) else None


def index_rows(n: int, iters: int, seed: int, groups: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Each resample's item indices, one row at a time, for metrics that read lists: n items drawn, or with
    ``groups`` the items of the clusters drawn, each as often as its cluster was (a resample of unequal size)."""
    if groups is None:
        for block in index_blocks(n, iters, seed):
            yield from block
        return
    items = np.arange(n)
    for weights in weight_blocks(n, iters, seed, groups):
        for row in weights:
            yield np.repeat(items, row.astype(np.int64))


def joined(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.empty(0)


def resample_weights(n: int, iters: int = DEFAULT_ITERS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """How often each item is drawn in each resample, (iters, n), all rows at once (the statistics take them block
    by block: weight_blocks)."""
    blocks = list(weight_blocks(n, iters, seed))
    return np.concatenate(blocks) if blocks else np.zeros((0, n))


# ------------------------------------------------------------------------------------------- vectorised metrics

_PASS: list[dict[tuple[int, int], Any]] = []  # the innermost resampling pass's prepared columns (see one_pass)


@contextlib.contextmanager
def one_pass() -> Iterator[None]:
    """Around one resampling pass of the statistics: the metrics below prepare their columns once, not once per
    block. Columns are known by identity: the pass holds its own, unchanged, until it ends."""
    _PASS.append({})
    try:
        yield
    finally:
        _PASS.pop()


def _coded(column: Sequence[Any], table: dict[Any, int]) -> np.ndarray:
    try:
        return np.array([table.setdefault(v, len(table)) for v in column], dtype=np.int64)
    except TypeError:  # a list or an object (a crafted sample's gold) is no dict key: coded by its JSON
        return np.array([table.setdefault(_key(v), len(table)) for v in column], dtype=np.int64)


def _key(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=str))


def _prepared(refs: Sequence[Any], preds: Sequence[Any]) -> dict[str, Any]:
    """What the metrics below derive from (refs, preds): integer codes (equal codes for values that compare equal,
    as == would) and, as they ask, groups of items; within a pass (one_pass), prepared once."""
    key = (id(refs), id(preds))
    if _PASS and key in _PASS[-1]:
        return _PASS[-1][key][2]
    table: dict[Any, int] = {}
    found = {"codes": tuple(_coded(column, table) for column in (refs, preds)), "width": max(len(table), 1)}
    if _PASS:
        _PASS[-1][key] = (refs, preds, found)  # held, so that no other list takes their ids during the pass
    return found


def _grouped(weights: np.ndarray, prepared: dict[str, Any], name: str,
             key: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per resample, the weight of the items of each distinct value of ``key()`` (an int per item, grouped once
    per pass under ``name``): (sums (rows, values), the values)."""
    if name not in prepared:
        keys = key()
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        prepared[name] = (order, starts, ordered[starts])
    order, starts, values = prepared[name]
    return np.add.reduceat(weights[:, order], starts, axis=1), values


def _pairs(weights: np.ndarray, refs: Sequence[Any], preds: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Per resample, the weight of each (ref, pred) pair present: (sums (rows, pairs), ref code, pred code)."""
    prepared = _prepared(refs, preds)
    (ref, pred), width = prepared["codes"], prepared["width"]
    sums, pairs = _grouped(weights, prepared, "pairs", lambda: ref * width + pred)
    return sums, pairs // width, pairs % width


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)


def accuracy_resampled(weights: np.ndarray, refs: Sequence[Any], preds: Sequence[Any]) -> np.ndarray:
    """``accuracy`` (share of preds equal to refs) of each resample."""
    sums, ref, pred = _pairs(weights, refs, preds)
    return sums[:, ref == pred].sum(axis=1) / weights.sum(axis=1)


def macro_f1_resampled(weights: np.ndarray, refs: Sequence[Any], preds: Sequence[Any]) -> np.ndarray:
    """``macro_f1`` of each resample: the mean per-class F1 over the classes present in that resample's refs."""
    sums, ref, pred = _pairs(weights, refs, preds)
    total = np.zeros(weights.shape[0])
    present = np.zeros(weights.shape[0])
    for label in np.unique(ref):  # the refs' classes, in code order
        is_ref, is_pred = ref == label, pred == label
        tp, fp, fn = (sums[:, is_ref & is_pred].sum(axis=1), sums[:, ~is_ref & is_pred].sum(axis=1),
                      sums[:, is_ref & ~is_pred].sum(axis=1))
        here = sums[:, is_ref].sum(axis=1) > 0
        total += np.where(here, _f1(tp, fp, fn), 0.0)
        present += here
    return total / present


def _positive(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() == "yes")


def binary_f1_resampled(weights: np.ndarray, refs: Sequence[Any], preds: Sequence[Any]) -> np.ndarray:
    """``f1`` of the positive class (1 / true / "yes") of each resample."""
    def key() -> np.ndarray:  # 2 * (ref positive) + (pred positive)
        return np.array([2 * _positive(r) + _positive(p) for r, p in zip(refs, preds)], dtype=np.int64)

    sums, values = _grouped(weights, _prepared(refs, preds), "positive", key)
    return _f1(sums[:, values == 3].sum(axis=1), sums[:, values == 1].sum(axis=1), sums[:, values == 2].sum(axis=1))
