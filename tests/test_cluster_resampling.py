"""Cluster-aware statistics: where a task names each item's cluster (metadata.cluster_field: the patient scenario
or condition an item was written from), CIs resample whole clusters and paired tests swap whole clusters."""

import numpy as np
import pytest

from medbench.leaderboard import compare_cells, stats
from medbench.leaderboard.comparisons import cell_interval
from medbench.leaderboard.resampling import cluster_codes
from medbench.leaderboard.table import Cell
from medbench.sweep_statistics import pooled_comparison


def test_cluster_codes_number_clusters_by_first_appearance():
    assert cluster_codes(["b", "a", "b", "c", "a"]).tolist() == [0, 1, 0, 2, 1]
    assert cluster_codes(None) is None
    assert cluster_codes(["x", "y", "z"]) is None  # every item its own cluster: the item-level statistics
    assert cluster_codes(["x", "x", "x"]) is None  # one cluster: nothing between clusters to resample
    assert cluster_codes([["a"], ["a"], {"k": 1}]).tolist() == [0, 0, 1]  # what a crafted record holds still codes


def test_singleton_clusters_give_the_item_level_results():
    rng = np.random.default_rng(0)
    a, b = rng.random(60), rng.random(60) + 0.1
    alone = [f"item{i}" for i in range(60)]
    assert stats.bootstrap_mean_ci(a, clusters=alone) == stats.bootstrap_mean_ci(a)
    assert stats.paired_bootstrap(None, None, a, b, clusters=alone) == stats.paired_bootstrap(None, None, a, b)


def _copies(values, k):
    """Each value k times over, and the cluster of each copy."""
    return np.repeat(values, k), [f"c{i}" for i in range(len(values)) for _ in range(k)]


def test_copies_of_an_item_count_once():
    """k identical copies of each item, clustered, give what the items alone give: the CI of the mean and the paired
    test's p are those of the distinct items (the copies add no information); counted as items, they narrow both."""
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, 9).astype(float), rng.integers(0, 2, 9).astype(float)
    b[:3] = 1.0
    a3, clusters = _copies(a, 17)
    b3, _ = _copies(b, 17)
    assert stats.bootstrap_mean_ci(a3, clusters=clusters) == pytest.approx(stats.bootstrap_mean_ci(a))
    alone = stats.paired_bootstrap(None, None, a, b)
    clustered = stats.paired_bootstrap(None, None, a3, b3, clusters=clusters)
    assert clustered == pytest.approx(alone)  # 2**9 <= 1000 swap patterns: both tests exact, the same p
    as_items = stats.paired_bootstrap(None, None, a3, b3)
    assert as_items["p"] < clustered["p"] and as_items["ci_high"] - as_items["ci_low"] < clustered["ci_high"] - \
        clustered["ci_low"]


def test_a_corpus_metric_resamples_clusters_too():
    refs = [0, 1, 1, 0, 1, 0, 0, 1]
    preds = [0, 1, 0, 0, 1, 1, 0, 1]
    r3, clusters = _copies(refs, 5)
    p3, _ = _copies(preds, 5)
    fast = stats.bootstrap_ci(None, list(r3), list(p3), clusters=clusters, vectorised=stats.macro_f1_resampled)
    from medbench.metrics import metric_registry

    macro_f1 = metric_registry()["macro_f1"].fn
    slow = stats.bootstrap_ci(macro_f1, list(r3), list(p3), clusters=clusters, iters=300)
    alone = stats.bootstrap_ci(macro_f1, refs, preds, iters=300)
    assert slow == pytest.approx(alone)  # resampled as lists of the drawn clusters' items
    assert fast[1] - fast[0] > 0.3  # eight clusters: a wide interval, not the 40 items' one


def test_cluster_permutation_holds_its_size_where_the_item_test_does_not():
    """Null data with a cluster effect (10 scenarios x 17 items; on each scenario one arm happens to do better): the
    per-item permutation test rejects far more often than 5 %, the cluster one near 5 %."""
    rng = np.random.default_rng(7)
    item_rejects = cluster_rejects = 0
    studies = 200
    clusters = [f"s{i}" for i in range(10) for _ in range(17)]
    for _ in range(studies):
        shift = np.repeat(rng.normal(0, 0.15, 10), 17)  # a scenario's difference, mean 0: H0 holds
        base = rng.random(170)
        member = base + shift + rng.normal(0, 0.05, 170)
        item_rejects += stats.paired_permutation(None, None, base, member, iters=400, seed=1) < 0.05
        cluster_rejects += stats.paired_permutation(None, None, base, member, iters=400, seed=1,
                                                    clusters=clusters) < 0.05
    assert item_rejects / studies > 0.5
    assert cluster_rejects / studies <= 0.1


def _cell(values, clusters=None, label="r"):
    samples = [{"doc_id": i, "acc": float(v), "gold": 1, "pred": int(v),
                **({"cluster": clusters[i]} if clusters else {})} for i, v in enumerate(values)]
    return Cell(sum(values) / len(values), None, len(values), "acc", label, record={}, samples=samples)


def test_the_leaderboard_uses_clusters_when_samples_carry_them():
    base = [1, 0] * 30
    member = [1, 1, 1, 0] * 15
    clusters = [f"c{i // 6}" for i in range(60)]
    plain_cell, clustered_cell = _cell(member), _cell(member, clusters)
    cell_interval(plain_cell, {})
    cell_interval(clustered_cell, {})
    assert plain_cell.ci_method == "wilson" and clustered_cell.ci_method == "cluster-bootstrap"
    assert compare_cells(_cell(base), _cell(member), {}).test == "mcnemar-exact"
    clustered_test = compare_cells(_cell(base, clusters), _cell(member), {})  # the baseline's rows name them
    assert clustered_test.test == "cluster-permutation" and clustered_test.p is not None
    assert clustered_test.delta == pytest.approx(0.25)


def test_a_sweep_comparison_pooled_over_seeds_swaps_clusters():
    rng = np.random.default_rng(3)
    base, member = rng.integers(0, 2, 9), rng.integers(0, 2, 9)
    member[:4] = 1
    b3, clusters = _copies(base, 12)
    m3, _ = _copies(member, 12)
    pairs = [(_cell(list(b3), clusters), _cell(list(m3), clusters)) for _ in range(1)]
    alone = pooled_comparison([(_cell(list(base)), _cell(list(member)))], {})
    clustered = pooled_comparison(pairs, {})
    as_items = pooled_comparison([(_cell(list(b3)), _cell(list(m3)))], {})
    assert clustered.p == pytest.approx(alone.p) and as_items.p < clustered.p


def test_stratified_replicates_flip_a_cluster_together():
    from medbench.item_replicates import column_replicates

    b3, clusters = _copies([0, 1, 0, 1, 1], 4)
    m3, _ = _copies([1, 1, 0, 0, 1], 4)
    n, deltas, replicates = column_replicates([(_cell(list(b3), clusters), _cell(list(m3), clusters))], {})
    flips = replicates(True, 64, 0)[:, 0]
    # five clusters of four: a flip moves the difference in steps of 4/20 per cluster, never 1/20
    assert n == 20 and np.allclose(np.round(flips * 20) % 4, 0)


@pytest.mark.parametrize("task", ["clinical_reasoning", "clinical_reasoning_open", "discharge_summary"])
def test_a_bundled_cluster_field_groups_every_test_item(task):
    """The documents the task is scored on (after its loader's normalize, not the raw file) carry the cluster_field
    on every test item, in clusters of two items or more."""
    from medbench.tasks import build_registry, load_tasks

    registry = build_registry()
    field = registry.get(task).metadata["cluster_field"]
    docs = list(load_tasks([task], registry)[task].test_docs())
    assert all(doc.get(field) not in (None, "") for doc in docs)
    sizes = np.bincount(cluster_codes([doc[field] for doc in docs]))
    assert len(sizes) >= 8 and sizes.min() >= 2


def test_an_evaluated_sample_row_carries_its_cluster():
    from medbench.evaluation import _sample_row

    class Task:
        class config:
            doc_to_choice = None
            output_type = "generate_until"

    sample = {"doc_id": 3, "doc": {"diagnosis": "sepsis"}, "target": "x", "resps": [["y"]], "arguments": [("p",)]}
    assert _sample_row(sample, Task(), "diagnosis")["cluster"] == "sepsis"
    assert "cluster" not in _sample_row(sample, Task())


def test_cluster_weights_come_in_blocks_sized_by_the_items():
    """A block of cluster draws spreads to every item: it is sized by the items (10 clusters of 300k items would
    otherwise be one 2.4 GB block)."""
    from medbench.leaderboard.resampling import CHUNK_CELLS, weight_blocks

    groups = np.repeat(np.arange(10), 30_000)
    shapes = [block.shape for block in weight_blocks(groups.size, 200, 0, groups)]
    assert sum(rows for rows, _ in shapes) == 200 and all(rows * cols <= CHUNK_CELLS for rows, cols in shapes)


def test_an_exact_set_of_cluster_swaps_comes_in_blocks_sized_by_the_items():
    """Eight clusters give all 256 swap patterns (exact); spread to 40,000 items each block stays bounded."""
    from medbench.leaderboard.resampling import CHUNK_CELLS
    from medbench.leaderboard.stats import _swap_blocks

    groups = np.repeat(np.arange(8), 5_000)
    blocks, exact = _swap_blocks(groups.size, 1000, 0, 2 * groups.size, groups)
    shapes = [block.shape for block in blocks]
    assert exact and sum(rows for rows, _ in shapes) == 256 and all(r * 2 * groups.size <= CHUNK_CELLS or r == 1
                                                                     for r, _ in shapes)
