"""Training-run variance in a difference pooled over seeds, so a pooled test speaks of retraining, not of these runs.

Resampling items with all their seeds (the bootstrap) and swapping an item's arms in every seed at once (the
permutation) treat the trained runs as fixed: with runs that vary, a gap this seed draw happened to give reads as
an effect, and a narrow CI reads as equivalence. Each seed's difference is d_k = mu + r_k + e_k: a run-level shift
r_k (variance sigma^2_run) and item noise e_k, shared in part across seeds that score the same items. The estimate
theta = sum_s w_s D_s (D_s: stratum s's mean over its K_s seeds) then has variance

    Var(theta) = V_item + sigma^2_run * sum_s w_s^2 / K_s,

V_item the bootstrap variance over items. sigma^2_run is the seeds' spread less what item noise alone explains (the
gap between one seed's bootstrap variance and the seed mean's), pooled over strata on nu = sum (K_s - 1) degrees of
freedom and never below 0, so the result is never narrower than the item-only one. Its noise is the seed spread
s^2's (sigma^2_run + item-by-seed noise, nu df), so the reference is Student's t on Satterthwaite's df = nu / f^2,
f = (s^2 sum_s w_s^2 / K_s) / Var: many items that vary together across seeds give about the normal, noise that
seeds do not share gives about nu df (three seeds: 2). f taken as the run part's share alone is anti-conservative:
in simulation (3 seeds, 300 items, run SD 0.08) it rejected a true H0 at 0.127 for a nominal 0.05, this df at 0.057.
The price is power where runs do not vary: a 6-point gain, 3 seeds of 300 items, is found in 40% of draws, 70% with
the runs held fixed; that gap is what three seeds cannot rule out.

A pooled row then reports the larger of the permutation p (items) and this t p (items and runs), and its bootstrap
CI widened by t_df * sqrt(Var) / (z * sqrt(V_item)), which keeps the bootstrap's asymmetry and leaves it unchanged
when no run variance is estimated. One seed in every stratum: nothing to estimate it from, and the row says so.
tests/test_run_variance.py checks type I error and coverage by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbench.item_replicates import column_replicates
from medbench.leaderboard.resampling import DEFAULT_ITERS, DEFAULT_SEED


@dataclass(frozen=True)
class RunVariance:
    item_var: float  # V_item: the estimate's bootstrap variance over items, runs fixed
    run_part: float  # sigma^2_run * sum w_s^2 / K_s: what the training runs add
    seed_part: float  # the seed spread's term in the estimator, whose noise sets the df
    run_sd: float  # sigma_run, the run-to-run SD of one seed's difference
    run_df: int  # nu

    @property
    def total(self) -> float:
        return self.item_var + self.run_part

    @property
    def df(self) -> float:
        share = min(1.0, self.seed_part / self.total) if self.total > 0 else 0.0
        return self.run_df / share ** 2 if share > 0 else math.inf

    def p(self, delta: float) -> float:
        """Two-sided p of H0: no difference in expectation over items and training runs."""
        from scipy.special import ndtr, stdtr  # imported here: scipy.special costs ~0.4 s

        if delta == 0 or math.isnan(delta):
            return 1.0
        if self.total <= 0:
            return 0.0
        z = -abs(delta) / math.sqrt(self.total)
        return float(2 * (ndtr(z) if math.isinf(self.df) else stdtr(self.df, z)))

    def widen(self, delta: float, low: float, high: float, confidence: float) -> tuple[float, float]:
        """The bootstrap CI (low, high) at ``confidence`` widened to carry the run variance."""
        from scipy.special import ndtri, stdtrit

        if any(math.isnan(v) for v in (delta, low, high)) or self.run_part <= 0 and math.isinf(self.df):
            return low, high
        upper = 0.5 + confidence / 2
        t = float(ndtri(upper) if math.isinf(self.df) else stdtrit(self.df, upper))
        if self.item_var <= 0:
            half = t * math.sqrt(self.total)
            return delta - half, delta + half
        scale = t * math.sqrt(self.total) / (float(ndtri(upper)) * math.sqrt(self.item_var))
        return delta - scale * (delta - low), delta + scale * (high - delta)

    def describe(self) -> str:
        df = "∞" if math.isinf(self.df) else f"{self.df:.1f}"
        return f"run-to-run SD {self.run_sd:.3f} in p and CI (t, {df} df)"


def run_to_run(pair_deltas: np.ndarray, pair_boot: np.ndarray, owner: np.ndarray, seeds: np.ndarray,
               stratum_item_var: np.ndarray) -> tuple[float, float, int] | None:
    """(sigma^2_run, the pooled seed spread s^2, nu) from each (stratum, seed) pair's difference, their bootstrap
    replicates (iters, pairs) and the pair's stratum; None when no stratum has two seeds."""
    nu = int((seeds - 1).sum())
    if nu < 1:
        return None
    strata = range(len(seeds))
    means = np.array([pair_deltas[owner == i].mean() for i in strata])
    spread = float(((pair_deltas - means[owner]) ** 2).sum())
    one_seed = np.array([pair_boot[:, owner == i].var(axis=0, ddof=1).mean() for i in strata])
    item_noise = float((seeds * (one_seed - stratum_item_var)).sum())  # the spread item noise alone explains
    return max(0.0, (spread - item_noise) / nu), spread / nu, nu


def estimate(pair_deltas: np.ndarray, pair_boot: np.ndarray, owner: list[int] | np.ndarray, seeds: np.ndarray,
             stratum_boot: np.ndarray) -> RunVariance | None:
    """The run variance of the mean over strata of their seed-mean differences. ``stratum_boot``: (iters, strata)
    bootstrap replicates of each stratum's mean, items resampled with all its seeds."""
    owner = np.asarray(owner)
    stratum_item_var = stratum_boot.var(axis=0, ddof=1)
    found = run_to_run(pair_deltas, pair_boot, owner, seeds, stratum_item_var)
    if found is None:
        return None
    run_var, seed_var, nu = found
    spread_weight = float((1 / seeds).sum()) / len(seeds) ** 2  # sum_s w_s^2 / K_s with w_s = 1/S
    return RunVariance(float(stratum_boot.mean(axis=1).var(ddof=1)), run_var * spread_weight,
                       seed_var * spread_weight, math.sqrt(run_var), nu)


def over_seeds(pairs: list[tuple[Any, Any]], registry: dict[str, Any], iters: int = DEFAULT_ITERS,
               seed: int = DEFAULT_SEED) -> RunVariance | None:
    """The run variance of ``member - base`` averaged over the seeds' (base, member) cell ``pairs``: one stratum.
    None with one seed, or when nothing pairs."""
    if len(pairs) < 2:
        return None
    paired = column_replicates(pairs, registry)
    if isinstance(paired, str):
        return None
    _, deltas, replicates = paired
    boot = replicates(False, iters, seed)
    return estimate(deltas, boot, np.zeros(len(pairs), dtype=int), np.array([float(len(pairs))]),
                    boot.mean(axis=1, keepdims=True))
