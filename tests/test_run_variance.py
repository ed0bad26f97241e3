"""Pooled tests carry the training runs' variance: type I error and coverage by simulation, and the pieces."""

import math
import random

import pytest

from medbench import run_variance
from medbench.noninferiority import noninferiority
from medbench.stratified import pool_strata
from medbench.sweep_statistics import pooled_over_seeds
from test_sweep_statistics import cell, strata_of


def _pooled_over_seeds(sims, *, effect=0.0, rng_seed=5, **options):
    """(share of p < 0.05, share of 95% CIs that hold ``effect``) over simulated studies of one stratum."""
    rng = random.Random(rng_seed)
    rejected = covered = 0
    for _ in range(sims):
        pairs = strata_of([effect], rng=rng, columns=1, **options)[0].pairs
        comparison, _ = pooled_over_seeds(pairs, {})
        rejected += comparison.p < 0.05
        covered += comparison.ci_low <= effect <= comparison.ci_high
    return rejected / sims, covered / sims


@pytest.mark.parametrize("seeds,run_sd", [(3, 0.08), (5, 0.04), (3, 0.0)])
def test_the_pooled_over_seeds_test_holds_its_level_when_training_runs_vary(seeds, run_sd):
    """H0 over items and runs (no gain in expectation; each run shifts the member arm by N(0, run_sd)): rejections
    stay near 5% and the CI covers 0 about 95% of the time, whether or not the runs vary."""
    rate, coverage = _pooled_over_seeds(200, seeds=seeds, run_sd=run_sd, item_sd=0.1, n=300)
    assert rate <= 0.08 and coverage >= 0.92


def test_holding_the_runs_fixed_is_what_made_seed_noise_significant(monkeypatch):
    """The same studies read with the run variance left out (the earlier test): about three times the level."""
    monkeypatch.setattr(run_variance, "over_seeds", lambda *args, **kwargs: None)
    rate, coverage = _pooled_over_seeds(200, seeds=3, run_sd=0.08, item_sd=0.1, n=300)
    assert rate > 0.1 and coverage < 0.9


def test_a_real_gain_is_still_found_when_runs_do_not_vary():
    """Five seeds of 300 items, a 10-point gain, runs that do not vary (three seeds find it in about 60%)."""
    rate, coverage = _pooled_over_seeds(60, effect=0.1, seeds=5, run_sd=0.0, item_sd=0.1, n=300)
    assert rate >= 0.8 and coverage >= 0.9


def test_the_stratified_test_holds_its_level_when_training_runs_vary():
    """Four strata on two data sets, three seeds each, run SD 0.08: the item-only test rejected about 22%."""
    rng = random.Random(9)
    results = [pool_strata(strata_of([0.0] * 4, rng=rng, seeds=3, run_sd=0.08, item_sd=0.1, n=150), {},
                           iters=400).comparison for _ in range(100)]
    assert sum(c.p < 0.05 for c in results) / len(results) <= 0.08
    assert sum(c.ci_low <= 0 <= c.ci_high for c in results) / len(results) >= 0.92
    assert all("run-to-run SD" in c.note for c in results)


def test_one_seed_per_stratum_says_its_inference_holds_the_runs_fixed():
    result = pool_strata(strata_of([0.0, 0.1], seeds=1), {})
    assert "run-to-run variance not estimated" in result.comparison.note


def _spread_seeds():
    """Three seeds on 400 items whose member arm differs from the base by +0.08, -0.08 and 0: the mean gain is 0
    and items alone pin it tightly, but the runs disagree by eight points."""
    base = [1, 0] * 200
    up = [1 if i % 2 == 0 or i < 64 else 0 for i in range(400)]  # 32 items 0 -> 1
    down = [0 if i % 2 == 0 and i < 64 else v for i, v in enumerate(base)]  # 32 items 1 -> 0
    return [(cell(base, seed=k), cell(member, seed=k)) for k, member in enumerate((up, down, base))]


def test_runs_that_disagree_are_not_called_equivalent_or_non_inferior(monkeypatch):
    pairs = _spread_seeds()
    comparison, per_seed = pooled_over_seeds(pairs, {}, margin=0.05)
    assert per_seed == pytest.approx([0.08, -0.08, 0.0]) and comparison.delta == pytest.approx(0.0)
    assert "not shown equivalent" in comparison.note and "run-to-run SD" in comparison.note
    assert comparison.ci_low < -0.05 and comparison.ci_high > 0.05
    noninferiority(comparison, pairs, {}, 0.05)
    assert "not shown non-inferior" in comparison.note
    monkeypatch.setattr(run_variance, "over_seeds", lambda *args, **kwargs: None)
    held_fixed, _ = pooled_over_seeds(pairs, {}, margin=0.05)
    assert "not shown equivalent" not in held_fixed.note and "equivalent within" in held_fixed.note


def test_the_t_reference_and_the_widening():
    normal = run_variance.RunVariance(item_var=0.0004, run_part=0.0, seed_part=0.0, run_sd=0.0, run_df=2)
    assert math.isinf(normal.df) and normal.p(1.959964 * 0.02) == pytest.approx(0.05, abs=1e-5)
    assert normal.widen(0.01, -0.03, 0.06, 0.95) == (-0.03, 0.06)  # nothing to add: the bootstrap CI as it is
    runs = run_variance.RunVariance(item_var=0.0004, run_part=0.0012, seed_part=0.0016, run_sd=0.06, run_df=4)
    assert runs.df == pytest.approx(4.0) and runs.p(2.776445 * 0.04) == pytest.approx(0.05, abs=1e-5)
    low, high = runs.widen(0.01, -0.03, 0.06, 0.95)
    scale = 2.776445 * 0.04 / (1.959964 * 0.02)
    assert (0.01 - low, high - 0.01) == pytest.approx((0.04 * scale, 0.05 * scale))  # the bootstrap's asymmetry kept
    assert runs.p(0.0) == 1.0
