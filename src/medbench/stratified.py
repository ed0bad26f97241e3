"""One comparison averaged over strata (every combination of a recipe's ``pool_over`` factors), and whether its
effect differs between them.

A stratum is one combination of the pooled factors (one model on one data set); in it each seed's (base, member)
pair of cells is compared on the same items. Strata that score the same data set (a column) share its items.

Estimate: the mean of the per-stratum differences (each the mean over its seeds), every stratum weighted equally:
the "average gain over models and data sets" a study claims.
Test: a stratified sign-flip (paired permutation) test. The unit is an item of a data set: flipping it swaps its
two arms in every stratum and seed that scored it, while other data sets flip their own items independently (the
pooled-over-seeds test swaps an item in every seed at once, for the same reason). Valid under H0: on every item
the two arms are exchangeable.
CI: a stratified percentile bootstrap, items resampled within each data set with all their strata and seeds, so
the interval carries the correlation of one item's differences across models.
Training runs: both then carry the run-to-run variance the seeds show (medbench.run_variance), as the
pooled-over-seeds row does: the p is the larger of the sign-flip p and a t test on items and runs, the CI is widened
to match. One seed per stratum leaves it unestimated, and the row says its inference holds the trained runs fixed.

Heterogeneity (H0: the same expected difference in every stratum): a Wald test of the stratum differences D_s
through the contrasts D_s - D_S, W = x' (C V C')^+ x against chi^2 with rank(C V C') degrees of freedom (Cochran's
Q when V is diagonal). V, the covariance of the D_s, has two parts:
- item sampling: the covariance of the D_s over the bootstrap replicates (strata on one data set covary through
  their shared items; different data sets are resampled independently);
- training runs: a run-level shift's variance over K_s, from the seeds: the spread of a stratum's per-seed
  differences less what item noise alone explains (the gap between one seed's and the seed mean's bootstrap
  variance), pooled over strata (S(K-1) degrees of freedom; five seeds alone give each stratum too noisy a
  variance for a chi^2 reference); the same estimate the pooled test carries.
Without the run part, seed-to-seed noise would read as heterogeneity (the chance finding pooling guards against),
so every stratum needs two seeds or more. A permutation of stratum labels is no valid null here: strata on different
data sets hold different items, and models with different discordance rates are not exchangeable even when their
mean effects are equal. tests/test_sweep_statistics.py checks the calibration by simulation. The row's note also
gives Gail and Simon's test of a qualitative interaction (the effect changes sign between strata): "the best arm
differs by stratum" is that question; the Wald test asks whether the effect's size differs at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbench import run_variance
from medbench.item_replicates import column_replicates
from medbench.leaderboard.resampling import DEFAULT_ITERS, DEFAULT_SEED
from medbench.leaderboard.table import Comparison
from medbench.noninferiority import one_sided
from medbench.sweep_statistics import ALPHA, equivalence, finite, set_direction


@dataclass
class Stratum:
    name: str  # its pooled factors' values, e.g. "model=a, task=medqa"
    column: str  # the data set whose items it scores: strata of one column share them
    pairs: list[tuple[Any, Any]]  # (base, member) cells, one pair per seed


@dataclass
class StrataResult:
    comparison: Comparison  # the pooled difference: mean over strata
    heterogeneity: Comparison  # whether it differs between strata
    strata: list[dict[str, Any]]  # each stratum: name, column, n, delta, per_seed, se


def _two_sided_p(observed: float, permuted: np.ndarray) -> float | None:
    if math.isnan(observed):
        return None
    if observed == 0:
        return 1.0
    tol = 1e-9 * max(abs(observed), 1.0)  # sums in another order must not lose a tie to rounding
    return float((np.count_nonzero(np.abs(permuted) >= abs(observed) - tol) + 1) / (permuted.size + 1))


def _interval(estimate: float, replicates: np.ndarray, confidence: float,
              runs: run_variance.RunVariance | None) -> tuple[float, float]:
    """The percentile bootstrap CI, widened for the training runs where their variance is estimated."""
    tail = 50 * (1 - confidence)
    lo, hi = (float(v) for v in np.percentile(replicates, [tail, 100 - tail]))
    return runs.widen(estimate, lo, hi, confidence) if runs is not None else (lo, hi)


def pool_strata(strata: list[Stratum], registry: dict[str, Any], *, margin: float | None = None,
                noninferiority: float | None = None, alpha: float = ALPHA, iters: int = DEFAULT_ITERS,
                seed: int = DEFAULT_SEED) -> StrataResult | Comparison:
    """The mean over strata of ``member - base`` with its stratified test and CI, and the heterogeneity test (see
    the module docstring); a Comparison saying why, when a data set has nothing to pair. ``margin``: equivalence
    (TOST), ``noninferiority``: the one-sided reading (medbench.noninferiority), both on the 1 - 2*alpha CI."""
    columns = list(dict.fromkeys(s.column for s in strata))
    owner, observed, boot, flip, sizes = [], [], [], [], {}
    for index, column in enumerate(columns):
        members = [(i, pair) for i, s in enumerate(strata) if s.column == column for pair in s.pairs]
        paired = column_replicates([pair for _, pair in members], registry)
        if isinstance(paired, str):
            return Comparison("", note=f"{column}: {paired}")
        sizes[column], deltas, replicates = paired
        owner += [i for i, _ in members]
        observed.append(deltas)
        boot.append(replicates(False, iters, seed + index))
        flip.append(replicates(True, iters, seed + 7919 + index))  # a stream apart from the bootstrap's
    seeds = np.array([len(s.pairs) for s in strata], dtype=float)
    to_strata = np.zeros((len(owner), len(strata)))
    to_strata[np.arange(len(owner)), owner] = 1 / seeds[owner]  # a pair's share of its stratum's mean
    pair_deltas, pair_boot = np.concatenate(observed), np.concatenate(boot, axis=1)
    stratum_deltas, stratum_boot = pair_deltas @ to_strata, pair_boot @ to_strata
    pooled = float(stratum_deltas.mean())
    n = sum(sizes.values())
    pooled_boot = stratum_boot.mean(axis=1)
    runs = run_variance.estimate(pair_deltas, pair_boot, owner, seeds, stratum_boot)
    lo, hi = _interval(pooled, pooled_boot, 0.95, runs)
    p = _two_sided_p(pooled, (np.concatenate(flip, axis=1) @ to_strata).mean(axis=1))
    if runs is not None and p is not None:
        p = max(p, runs.p(pooled))  # the more cautious of items alone and items with runs
    comparison = Comparison(f"stratified over {len(strata)} strata", n, finite(pooled), p, ci_low=finite(lo),
                            ci_high=finite(hi))
    comparison.note = runs.describe() if runs is not None else \
        "one seed per stratum: run-to-run variance not estimated, p and CI hold these trained runs fixed"
    set_direction(comparison, strata[0].pairs[0][1].higher_is_better)
    narrow = dict(zip(("ci_low", "ci_high"), _interval(pooled, pooled_boot, 1 - 2 * alpha, runs)))
    if margin is not None:
        equivalence(comparison, narrow, margin)
    if noninferiority is not None:
        one_sided(comparison, n, narrow, noninferiority, strata[0].pairs[0][1].higher_is_better, alpha)
    same_column = np.array([[a.column == b.column for b in strata] for a in strata])
    item_cov = np.cov(stratum_boot, rowvar=False).reshape(len(strata), len(strata)) * same_column
    run_var = runs.run_sd ** 2 if runs is not None else 0.0
    heterogeneity = _heterogeneity(strata, n, stratum_deltas, item_cov, run_var, seeds)
    described = []
    for i, s in enumerate(strata):
        per_seed = [float(pair_deltas[k]) for k in range(len(owner)) if owner[k] == i]
        se = math.sqrt(item_cov[i, i] + run_var / seeds[i])
        described.append({"name": s.name, "column": s.column, "n": sizes[s.column],
                          "delta": float(stratum_deltas[i]), "per_seed": per_seed, "se": se})
    return StrataResult(comparison, heterogeneity, described)


def _heterogeneity(strata: list[Stratum], n: int, deltas: np.ndarray, item_cov: np.ndarray, run_var: float,
                   seeds: np.ndarray) -> Comparison:
    """The Wald test of equal stratum differences (module docstring)."""
    name = f"heterogeneity over {len(strata)} strata (Wald χ²)"
    if len(strata) < 2:
        return Comparison(name, note="one stratum: nothing to compare")
    if seeds.min() < 2:
        return Comparison(name, note="a stratum has one seed: training-run noise cannot be told apart from "
                          "heterogeneity, so it is not tested (run two seeds or more)")
    covariance = item_cov + np.diag(run_var / seeds)
    contrasts = np.hstack([np.eye(len(strata) - 1), -np.ones((len(strata) - 1, 1))])
    x, middle = contrasts @ deltas, contrasts @ covariance @ contrasts.T
    df = int(np.linalg.matrix_rank(middle, hermitian=True)) if np.abs(middle).max() > 0 else 0
    if df == 0:
        return Comparison(name, note="no variation between strata to test")
    statistic = float(x @ np.linalg.pinv(middle, hermitian=True) @ x)
    comparison = Comparison(name, n, None, chi2_sf(statistic, df))
    comparison.direction = "differs" if statistic > 0 else ""
    comparison.note = (f"χ² {statistic:.2f} on {df} df; stratum Δ {deltas.min():+.3f} to {deltas.max():+.3f}; "
                       f"run-to-run SD {math.sqrt(run_var):.3f}; opposite signs (Gail-Simon): p "
                       f"{qualitative_interaction_p(deltas, np.diag(covariance)):.3f}")
    return comparison


def qualitative_interaction_p(deltas: np.ndarray, variances: np.ndarray) -> float:
    """Gail & Simon (1985): H0, the effect has one sign in every stratum (a difference in size only). Against
    it, the smaller of Q+ = sum of z^2 over strata with D > 0 and Q- over D < 0; p = sum over i = 1..k-1 of
    C(k, i) / 2^k * P(chi^2_i >= Q). "Which arm wins differs by stratum" is this question, not the Wald test's
    (any difference in size). It treats the strata as independent; strata on one data set share items, so read it
    as approximate there."""
    z2 = np.where(variances > 0, deltas ** 2 / np.where(variances > 0, variances, 1), 0.0)
    smaller = min(float(z2[deltas > 0].sum()), float(z2[deltas < 0].sum()))
    k = len(deltas)
    return min(1.0, sum(math.comb(k, i) / 2 ** k * chi2_sf(smaller, i) for i in range(1, k)))


def chi2_sf(x: float, df: int) -> float:
    """P(chi^2 with ``df`` degrees of freedom >= x), for whole df: the closed forms of the upper incomplete gamma
    function at half-integers (importing scipy.stats for this would cost seconds)."""
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:  # exp(-x/2) * sum over j < df/2 of (x/2)^j / j!
        term = total = 1.0
        for j in range(1, df // 2):
            term *= half / j
            total += term
        return min(1.0, math.exp(-half) * total)
    total, term = math.erfc(math.sqrt(half)), math.sqrt(2 * x / math.pi) * math.exp(-half)
    for j in range(1, (df + 1) // 2):  # + sqrt(2x/pi) exp(-x/2) * x^(j-1) / (1 * 3 * ... * (2j - 1))
        total += term
        term *= x / (2 * j + 1)
    return min(1.0, total)
