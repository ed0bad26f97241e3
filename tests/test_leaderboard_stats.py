"""The leaderboard's statistics against hand-computed values and scipy as the oracle."""

import itertools
import json
import math
import random

import pytest
from scipy import stats as sps

from leaderboard_helpers import answers, make_record
from medbench.leaderboard import build_table, stats


def wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (10, 40), (14, 40), (40, 40), (1, 1), (81, 263), (500, 1000)])
def test_wilson_interval_matches_the_formula_and_scipy(k, n):
    lo, hi = stats.wilson_interval(k, n)
    hand = wilson_by_hand(k, n)
    assert lo == pytest.approx(max(0.0, hand[0]), abs=1e-12) and hi == pytest.approx(min(1.0, hand[1]), abs=1e-12)
    oracle = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (lo, hi) == pytest.approx((oracle.low, oracle.high), abs=1e-9)
    assert lo <= k / n <= hi


def test_wilson_known_values():
    # Hand-computed: 0/10 -> [0, 0.2775]; 10/40 (the demo's 0.25) -> [0.1419, 0.4019].
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert stats.wilson_interval(10, 40) == pytest.approx((0.14187, 0.40194), abs=1e-5)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 4)


@pytest.mark.parametrize("b,c", [(0, 1), (1, 0), (3, 3), (0, 6), (2, 9), (10, 25), (40, 1), (7, 8), (60, 90)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    assert stats.mcnemar_exact(b, c) == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-12, abs=1e-15)


def test_mcnemar_exact_hand_values():
    assert stats.mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # 2 * 0.5**6
    assert stats.mcnemar_exact(1, 5) == pytest.approx(2 * 7 / 64)  # 2 * (1 + 6) / 2**6


def test_benjamini_hochberg_hand_example():
    # sorted: .005 .01 .03 .04 .20 -> p*m/rank: .025 .025 .05 .05 .20 -> cumulative min from the top
    q = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.20])
    assert q == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.20])


def test_benjamini_hochberg_matches_scipy_and_skips_missing():
    rng = random.Random(3)
    pvalues = [rng.random() ** 3 for _ in range(40)]
    assert stats.benjamini_hochberg(pvalues) == pytest.approx(list(sps.false_discovery_control(pvalues)), abs=1e-12)
    q = stats.benjamini_hochberg([0.01, None, 0.04, float("nan")])
    assert q[1] is None and q[3] is None and q[0] == pytest.approx(0.02) and q[2] == pytest.approx(0.04)
    assert stats.benjamini_hochberg([]) == []
    assert stats.benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])


def test_bootstrap_ci_contains_the_estimate_and_is_deterministic():
    from medbench_plugins.builtin_metrics import macro_f1

    rng = random.Random(0)
    refs = [rng.randrange(3) for _ in range(80)]
    preds = [r if rng.random() < 0.6 else rng.randrange(3) for r in refs]
    estimate = macro_f1(refs, preds)
    first = stats.bootstrap_ci(macro_f1, refs, preds, iters=500, seed=7)
    assert first[0] < estimate < first[1]
    assert stats.bootstrap_ci(macro_f1, refs, preds, iters=500, seed=7) == first
    assert stats.bootstrap_ci(macro_f1, refs, preds, iters=500, seed=8) != first
    values = [float(r == p) for r, p in zip(refs, preds)]
    lo, hi = stats.bootstrap_mean_ci(values, iters=2000, seed=1)
    wilson = stats.wilson_interval(sum(values), len(values))
    assert lo < sum(values) / len(values) < hi
    assert (lo, hi) == pytest.approx(wilson, abs=0.03)  # the two agree closely at n=80


def test_paired_bootstrap_sign_and_null():
    from medbench_plugins.builtin_metrics import macro_f1

    refs = [i % 3 for i in range(90)]
    weak = [r if i % 3 == 0 else (r + 1) % 3 for i, r in enumerate(refs)]  # right on a third
    strong = [r if i % 10 else (r + 1) % 3 for i, r in enumerate(refs)]  # right on nine tenths
    up = stats.paired_bootstrap(macro_f1, refs, weak, strong, iters=500, seed=1)
    assert up["delta"] == pytest.approx(macro_f1(refs, strong) - macro_f1(refs, weak))
    assert up["delta"] > 0 and up["ci_low"] > 0 and up["p"] < 0.01
    down = stats.paired_bootstrap(macro_f1, refs, strong, weak, iters=500, seed=1)
    assert down["delta"] < 0 and down["ci_high"] < 0 and down["p"] < 0.01
    same = stats.paired_bootstrap(macro_f1, refs, weak, weak, iters=200, seed=1)
    assert same["delta"] == 0 and same["p"] == 1.0
    per_item = stats.paired_bootstrap(None, None, [0, 1, 0, 1] * 10, [1, 1, 0, 1] * 10, iters=300, seed=2)
    assert per_item["delta"] == pytest.approx(0.25) and per_item["p"] < 0.05


def test_permutation_p_is_exact_on_four_items_all_worse():
    """The sweep report's case (ROUGE-L 0.201 -> 0.178 on 4 items): the bootstrap's p was 0.002, but only the
    identity and the all-swapped pattern of the 16 reach the observed |delta|, so the exact p is 2/16."""
    a, b = [0.25, 0.18, 0.22, 0.154], [0.21, 0.16, 0.20, 0.142]
    result = stats.paired_bootstrap(None, None, a, b)
    assert result["delta"] == pytest.approx(sum(b) / 4 - sum(a) / 4) and result["delta"] < 0
    assert result["p"] == 0.125 and result["ci_high"] < 0  # the CI still comes from the bootstrap
    assert stats.paired_permutation(None, None, [0.2] * 4, [0.1] * 4) == 0.125  # ties in |d| change nothing
    assert stats.paired_permutation(None, None, a, b, seed=99) == 0.125  # exact: no draw, no seed


def exact_sign_flip_p(d):
    """All 2**n sign patterns of the integer differences d, by convolution of the sum's distribution."""
    counts = {0: 1}
    for x in d:
        nxt = {}
        for total, k in counts.items():
            for step in (x, -x):
                nxt[total + step] = nxt.get(total + step, 0) + k
        counts = nxt
    observed = abs(sum(d))
    return sum(k for total, k in counts.items() if abs(total) >= observed) / 2 ** len(d)


def test_permutation_p_on_per_item_values_matches_scipy_and_the_exact_distribution():
    import numpy as np

    rng = random.Random(8)
    steps = [rng.choice([-3, -2, -1, 0, 1, 1, 2, 3, 4]) for _ in range(30)]  # differences in units of 1/40
    a = [rng.uniform(0.2, 0.6) for _ in steps]
    b = [x + k / 40 for x, k in zip(a, steps)]
    exact = exact_sign_flip_p(steps)
    assert 0.05 < exact < 0.1  # near the threshold, where a wrong test would show
    ours = stats.paired_permutation(None, None, a, b, iters=20000, seed=5)
    d = np.array(b) - np.array(a)
    oracle = sps.permutation_test((d,), lambda x, axis: np.abs(np.mean(x, axis=axis)), permutation_type="samples",
                                  alternative="greater", n_resamples=20000, random_state=6).pvalue
    # Two independent 20000-draw estimates: each within ~0.004 (one sd) of the exact value.
    assert ours == pytest.approx(exact, abs=0.015) and ours == pytest.approx(oracle, abs=0.02)
    assert stats.paired_bootstrap(None, None, a, b, iters=20000, seed=5)["p"] == ours
    # Few enough items to enumerate: the function's exact p is the enumeration's, to the last digit.
    small = steps[:9]
    assert stats.paired_permutation(None, None, a[:9], b[:9], iters=512) == exact_sign_flip_p(small)


def brute_force_p(fn, refs, a, b):
    observed = abs(fn(refs, b) - fn(refs, a))
    hits = 0
    for swaps in itertools.product([False, True], repeat=len(refs)):
        perm_a = [y if s else x for x, y, s in zip(a, b, swaps)]
        perm_b = [x if s else y for x, y, s in zip(a, b, swaps)]
        hits += abs(fn(refs, perm_b) - fn(refs, perm_a)) >= observed - 1e-12
    return hits / 2 ** len(refs)


def test_permutation_p_of_a_corpus_metric_matches_brute_force_enumeration():
    from medbench_plugins.builtin_metrics import macro_f1

    rng = random.Random(8)
    refs = [rng.randrange(3) for _ in range(9)]
    a = [r if rng.random() < 0.4 else rng.randrange(3) for r in refs]
    b = [r if rng.random() < 0.9 else rng.randrange(3) for r in refs]
    exact = brute_force_p(macro_f1, refs, a, b)
    assert 0 < exact < 1
    assert stats.paired_bootstrap(macro_f1, refs, a, b)["p"] == pytest.approx(exact, abs=1e-12)  # 512 <= 1000
    fast = stats.paired_bootstrap(macro_f1, refs, a, b, vectorised=stats.macro_f1_resampled)
    assert fast["p"] == pytest.approx(exact, abs=1e-12)
    # More patterns than draws: seeded random swaps, the loop and the vectorised path on the same masks.
    refs12 = refs + [0, 1, 2]
    a12, b12 = a + [0, 2, 2], b + [0, 1, 1]
    exact12 = brute_force_p(macro_f1, refs12, a12, b12)
    slow = stats.paired_permutation(macro_f1, refs12, a12, b12, iters=3000, seed=2)
    quick = stats.paired_permutation(macro_f1, refs12, a12, b12, iters=3000, seed=2,
                                     vectorised=stats.macro_f1_resampled)
    assert slow == pytest.approx(quick, abs=1e-12) and slow == pytest.approx(exact12, abs=0.03)


def test_identical_systems_or_a_zero_difference_give_p_one():
    from medbench_plugins.builtin_metrics import macro_f1

    values = [0.1, 0.5, 0.3, 0.9, 0.2] * 8
    assert stats.paired_bootstrap(None, None, values, values)["p"] == 1.0
    assert stats.paired_permutation(None, None, [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]) == 1.0  # delta exactly 0
    refs = [i % 3 for i in range(40)]
    preds = [(r + (i % 4 == 0)) % 3 for i, r in enumerate(refs)]
    assert stats.paired_bootstrap(macro_f1, refs, preds, preds)["p"] == 1.0
    assert stats.paired_bootstrap(macro_f1, refs, preds, list(preds), vectorised=stats.macro_f1_resampled)["p"] == 1.0
    assert math.isnan(stats.paired_permutation(None, None, [], []))  # no items: no test


def test_a_non_binary_per_item_metric_is_compared_by_the_permutation_test():
    from medbench.leaderboard import Cell, compare_cells

    def cell(values):
        samples = [{"doc_id": i, "rougeL": v} for i, v in enumerate(values)]
        return Cell(sum(values) / len(values), None, len(values), "rougeL", "r", samples=samples)

    comparison = compare_cells(cell([0.25, 0.18, 0.22, 0.154]), cell([0.21, 0.16, 0.20, 0.142]), {})
    assert comparison.test == "paired-permutation" and comparison.p == 0.125 and comparison.delta < 0
    assert comparison.ci_low is not None and comparison.ci_high < 0


def test_mean_win_rate_on_a_hand_made_table():
    table = [[0.9, 0.5], [0.8, 0.5], [0.7, None]]
    # column 0: A beats 2 of 2, B 1 of 2, C 0; column 1: A and B tie (half a win each), C not scored
    assert stats.mean_win_rate(table) == pytest.approx([0.75, 0.5, 0.0])
    # a lower-is-better column reverses who wins
    assert stats.mean_win_rate([[1.0], [2.0], [3.0]], [False]) == pytest.approx([1.0, 0.5, 0.0])
    assert stats.mean_win_rate([[0.5, None], [None, None]]) == [None, None]


def test_weighted_average_and_mean_sd():
    assert stats.weighted_average([0.5, 1.0, None], [10, 30, 50]) == pytest.approx(0.875)
    assert stats.weighted_average([None], [3]) is None
    mean, sd = stats.mean_sd([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and sd == pytest.approx(0.2)
    assert stats.mean_sd([0.3]) == (0.3, None)


def sft_training(seed, lr=1e-4):
    return {"plugin": "sft", "run_id": f"sft-s{seed}", "checkpoint": f"runs/sft-s{seed}/checkpoint-6", "step": 6,
            "final": True, "seed": seed, "parent_model": "base",
            "config": {"learning_rate": lr, "max_steps": 6, "seed": seed}}


def test_runs_differing_only_by_seed_are_grouped_as_mean_and_sd(tmp_path):
    golds, preds = answers(40, 10)
    make_record(tmp_path, "base", "medqa", golds, preds)
    scores = {1: 20, 2: 24, 3: 28}  # 0.5, 0.6, 0.7 -> mean 0.6, sd 0.1
    for seed, right in scores.items():
        golds, preds = answers(40, right)
        make_record(tmp_path, f"sft:sft-s{seed}/checkpoint-6", "medqa", golds, preds, seed=seed,
                    training=sft_training(seed))
    golds, preds = answers(40, 30)
    make_record(tmp_path, "sft:sft-lr/checkpoint-6", "medqa", golds, preds, seed=1, training=sft_training(1, lr=1e-3))
    table = build_table(tmp_path)
    assert table.baseline is not None and table.baseline.label == "base"
    (group,) = table.groups
    assert group.label == "sft:sft-s*/checkpoint-6 (3 seeds)" and group.model["seeds"] == [1, 2, 3]
    cell = group.cells["medqa"]
    assert cell.score == pytest.approx(0.6) and cell.sd == pytest.approx(0.1) and cell.runs == 3
    assert len(table.rows) == 5  # the runs stay rows of their own


def test_table_statistics_end_to_end(tmp_path):
    """CIs, McNemar against the baseline on the shared doc_ids, BH over the table, win rate, weighted mean."""
    golds, preds = answers(60, 15)
    make_record(tmp_path, "base", "medqa", golds, preds)
    golds, preds = answers(60, set(range(15)) | set(range(30, 55)))  # 25 more right, none lost
    make_record(tmp_path, "better", "medqa", golds, preds, base_ref="base")
    golds, preds = answers(60, set(range(2, 16)))  # b=2 (items 0,1), c=1 (item 15)
    make_record(tmp_path, "same", "medqa", golds, preds, base_ref="base")
    golds, preds = answers(30, 30)
    make_record(tmp_path, "better", "medmcqa", golds, preds, base_ref="base")
    make_record(tmp_path, "base", "medmcqa", golds, answers(30, 12)[1])
    table = build_table(tmp_path)
    rows = {r.label: r for r in table.rows}
    assert table.baseline is rows["base"]

    better = rows["better"].cells["medqa"]
    assert better.ci_method == "wilson"
    assert (better.ci_low, better.ci_high) == pytest.approx(stats.wilson_interval(40, 60))
    assert better.comparison.test == "mcnemar-exact" and (better.comparison.b, better.comparison.c) == (0, 25)
    assert better.comparison.p == pytest.approx(sps.binomtest(0, 25, 0.5).pvalue)
    same = rows["same"].cells["medqa"].comparison
    assert (same.b, same.c) == (2, 1) and same.delta == pytest.approx(-1 / 60)
    assert same.p == pytest.approx(1.0) and not same.significant

    ps = [c.comparison.p for r in table.rows for c in r.cells.values() if c.comparison]
    qs = [c.comparison.q for r in table.rows for c in r.cells.values() if c.comparison]
    assert len(ps) == 3 and qs == pytest.approx(list(sps.false_discovery_control(ps)))
    assert better.comparison.significant and better.comparison.direction == "better"

    assert rows["better"].win_rate == pytest.approx(1.0)  # best on both columns
    assert rows["base"].win_rate == pytest.approx((0.5 + 0.0) / 2)  # beats "same" on medqa (15 vs 14) only
    assert rows["better"].weighted_score() == pytest.approx((40 + 30) / 90)


def test_pairing_uses_only_shared_items_and_the_same_data(tmp_path):
    golds, preds = answers(40, 10)
    make_record(tmp_path, "base", "medqa", golds, preds)
    golds, preds = answers(20, 20)  # scored with --limit 20: only doc_ids 0..19 pair
    make_record(tmp_path, "limited", "medqa", golds, preds, base_ref="base")
    golds, preds = answers(40, 40)
    make_record(tmp_path, "other-data", "medqa", golds, preds, data_hash="different", base_ref="base")
    table = build_table(tmp_path, baseline="base")
    rows = {r.label: r for r in table.rows}
    limited = rows["limited"].cells["medqa"].comparison
    assert limited.n_paired == 20 and (limited.b, limited.c) == (0, 10)
    other = rows["other-data"].cells["medqa"].comparison
    assert other.p is None and "different data" in other.note


def test_f1_primary_metric_gets_a_bootstrap_ci_and_a_paired_permutation_test(tmp_path):
    golds, preds = answers(50, 20)
    make_record(tmp_path, "base", "uti", golds, preds, metric="macro_f1")
    golds, preds = answers(50, 45)
    make_record(tmp_path, "tuned", "uti", golds, preds, metric="macro_f1", base_ref="base")
    table = build_table(tmp_path, iters=300)
    cell = next(r for r in table.rows if r.label == "tuned").cells["uti"]
    assert cell.ci_method == "bootstrap" and cell.ci_low < cell.score < cell.ci_high
    assert cell.comparison.test == "paired-permutation" and cell.comparison.delta > 0 and cell.comparison.significant
    again = build_table(tmp_path, iters=300)
    assert next(r for r in again.rows if r.label == "tuned").cells["uti"].ci_low == cell.ci_low  # seeded


@pytest.mark.parametrize("name", ["accuracy", "macro_f1", "f1"])
def test_vectorised_metrics_give_the_same_resamples_as_the_metric_functions(name):
    import numpy as np

    from medbench_plugins import builtin_metrics

    fn = {"accuracy": builtin_metrics.accuracy, "macro_f1": builtin_metrics.macro_f1,
          "f1": builtin_metrics.binary_f1}[name]
    vectorised = {"accuracy": stats.accuracy_resampled, "macro_f1": stats.macro_f1_resampled,
                  "f1": stats.binary_f1_resampled}[name]
    rng = random.Random(5)
    labels = ["yes", "no", "maybe", 1, 0]  # a prediction outside the references' classes counts as a false positive
    refs = [rng.choice(labels[:2] + [1]) for _ in range(37)]
    preds = [r if rng.random() < 0.5 else rng.choice(labels) for r in refs]
    weights = stats.resample_weights(len(refs), 50, 11)
    idx = np.random.default_rng(11).integers(0, len(refs), size=(50, len(refs)))
    loop = [fn([refs[i] for i in row], [preds[i] for i in row]) for row in idx]
    assert list(vectorised(weights, refs, preds)) == pytest.approx(loop, abs=1e-12)
    assert stats.bootstrap_ci(fn, refs, preds, iters=200, seed=3, vectorised=vectorised) == \
        pytest.approx(stats.bootstrap_ci(fn, refs, preds, iters=200, seed=3), abs=1e-12)
    other = [r if rng.random() < 0.8 else "no" for r in refs]
    fast = stats.paired_bootstrap(fn, refs, preds, other, iters=200, seed=3, vectorised=vectorised)
    slow = stats.paired_bootstrap(fn, refs, preds, other, iters=200, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)


def write_binary(root, label, quality, seed, base_ref=None):
    """A binary task scored by AUROC from the per-choice log-likelihoods (a metric that reads whole samples)."""
    from medbench.records import write_record

    rng = random.Random(seed)
    samples = []
    for i in range(60):
        gold = i % 2
        margin = (1 if gold else -1) * quality + rng.gauss(0, 1)
        samples.append({"doc_id": i, "gold": gold, "pred": int(margin > 0), "logliks": [0.0, margin],
                        "choices": ["no", "yes"], "prompt": f"case {i}"})
    from medbench.metrics import metric_registry

    metrics = {k: {"value": v, "stderr": None} for name in ("auroc", "per_label_f1", "f1")
               for k, v in metric_registry()[name].compute(samples).items()}
    record = {"record_key": "uti", "task": {"name": "uti", "data_hash": "h", "num_fewshot": 0},
              "model": {"label": label, "ref": label, "weights_hash": f"{seed:032x}", "base_ref": base_ref},
              "metrics": metrics, "primary_metric": "auroc", "score": metrics["auroc"]["value"], "stderr": None,
              "n": 60, "config": {}, "seed": 1, "created": f"2026-01-0{seed}T00:00:00Z"}
    return write_record(root, record, samples)


def test_auroc_from_samples_gets_a_bootstrap_ci_a_paired_test_and_rescores(tmp_path):
    from medbench.leaderboard import rescore

    write_binary(tmp_path, "base", 0.2, 1)
    path = write_binary(tmp_path, "tuned", 2.5, 2, base_ref="base")
    table = build_table(tmp_path, iters=300)
    cell = next(r for r in table.rows if r.label == "tuned").cells["uti"]
    assert cell.ci_method == "bootstrap" and cell.ci_low < cell.score < cell.ci_high <= 1.0
    assert cell.comparison.test == "paired-permutation" and cell.comparison.delta > 0 and cell.comparison.significant
    original = json.loads(path.read_text())["metrics"]
    assert {"per_label_f1:no", "per_label_f1:yes", "auroc", "f1"} <= set(original)
    assert {k: v["value"] for k, v in rescore(path.parent)["metrics"].items()} == \
        pytest.approx({k: v["value"] for k, v in original.items()})


def perplexity_record(root, label: str, value: float) -> None:
    """A language-modelling record (lower is better): its score is a word perplexity, not a share of items."""
    path = make_record(root, label, "notes_ppl", *answers(10, 5))
    record = json.loads(path.read_text())
    record.update(metrics={"word_perplexity": {"value": value, "stderr": None}}, primary_metric="word_perplexity",
                  score=value, stderr=None)
    path.write_text(json.dumps(record))


def test_a_lower_is_better_column_counts_in_the_win_rate_but_not_in_the_means(tmp_path):
    """A perplexity of 11 averaged with an accuracy of 0.6 would give 5.8 and rank the worse model first."""
    from medbench_plugins.leaderboard_text import method_text

    make_record(tmp_path, "fluent", "medqa", *answers(20, 10))
    perplexity_record(tmp_path, "fluent", 4.8)
    make_record(tmp_path, "halting", "medqa", *answers(20, 10))
    perplexity_record(tmp_path, "halting", 11.5)
    table = build_table(tmp_path)
    rows = {r.label: r for r in table.rows}
    assert rows["fluent"].mean_score() == rows["halting"].mean_score() == pytest.approx(0.5)
    assert rows["fluent"].weighted_score() == pytest.approx(0.5)
    assert rows["fluent"].win_rate == pytest.approx(0.75) and rows["halting"].win_rate == pytest.approx(0.25)
    assert "notes_ppl (lower is better, on another scale) counts in the win rate only" in method_text(table)


def test_rows_scored_only_on_perplexity_rank_the_lowest_first(tmp_path):
    for label, value in (("worse", 11.5), ("better", 4.8), ("middle", 7.0)):
        perplexity_record(tmp_path, label, value)
    table = build_table(tmp_path)
    assert [r.label for r in table.rows] == ["better", "middle", "worse"]
    assert all(r.mean_score() is None for r in table.rows)


def test_a_metric_lm_eval_reported_as_lower_is_better_ranks_that_way(tmp_path):
    """A task's own metric (here a calibration error) that medbench has no name for: the direction lm-eval
    reported from the task's metric_list, kept in the record, decides."""
    for label, value in (("calibrated", 0.04), ("overconfident", 0.21)):
        path = make_record(tmp_path, label, "risk_scores", *answers(10, 5))
        record = json.loads(path.read_text())
        record.update(metrics={"calibration_error": {"value": value, "stderr": None, "higher_is_better": False}},
                      primary_metric="calibration_error", score=value, stderr=None)
        path.write_text(json.dumps(record))
    table = build_table(tmp_path)
    assert [r.label for r in table.rows] == ["calibrated", "overconfident"]
    assert table.rows[0].win_rate == 1.0 and not table.rows[0].cells["risk_scores"].higher_is_better
