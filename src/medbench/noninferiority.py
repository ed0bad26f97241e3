"""One-sided readings of a comparison: non-inferiority within a margin, and superiority.

A recipe comparison with ``noninferiority: m`` (medbench.recipe_comparisons) asks "is the compared cell no worse
than its baseline by more than m?", the honest reading of "retains" where doing better is welcome: a two-sided
equivalence test (``margin``) would call a cell that retains MORE "not shown equivalent". The test is the usual
one-sided test at alpha, read off the same 1 - 2*alpha paired bootstrap CI that TOST reads (90% at alpha 0.05): in
the metric's better direction, the CI's worse end must lie above -m (non-inferior); where it also lies above 0 the
cell is superior at one-sided alpha. Lower-is-better metrics are read with the sign turned.

Like TOST (medbench.sweep_statistics.equivalence), the verdict is at the unadjusted alpha and needs at least
MIN_EQUIVALENCE_ITEMS paired items; the report's q column adjusts the two-sided difference tests only. It is
written into the comparison's note: "non-inferior within 0.05 (superior); one-sided 95% bound +0.012" and so on.
"""

from __future__ import annotations

from typing import Any

from medbench.leaderboard.table import Comparison
from medbench.sweep_statistics import ALPHA, MIN_EQUIVALENCE_ITEMS, finite, paired_run


def _add_note(comparison: Comparison, text: str) -> None:
    comparison.note = (comparison.note + "; " if comparison.note else "") + text


def verdict(narrow: dict[str, Any], margin: float, higher_is_better: bool, alpha: float = ALPHA) -> str:
    """The note for a difference (member - base) whose 1 - 2*alpha CI is ``narrow`` (ci_low, ci_high)."""
    lo, hi = finite(narrow.get("ci_low")), finite(narrow.get("ci_high"))
    worst = lo if higher_is_better else (-hi if hi is not None else None)  # the CI's worse end, better-positive
    if worst is None:
        return f"no CI: non-inferiority within {margin:g} not tested"
    level = f"one-sided {1 - alpha:.0%} bound {worst:+.3f}"
    if worst > 0:
        return f"non-inferior within {margin:g} (superior); {level}"
    if worst > -margin:
        return f"non-inferior within {margin:g}; {level}"
    return f"not shown non-inferior within {margin:g}; {level}"


def one_sided(comparison: Comparison, n: int, narrow: dict[str, Any], margin: float, higher_is_better: bool,
              alpha: float = ALPHA) -> None:
    """Write the verdict read off a 1 - 2*alpha CI ``narrow`` (ci_low, ci_high) of a difference on ``n`` paired
    items into ``comparison``'s note (the stratified row pooled over factors reads it this way too)."""
    if n < MIN_EQUIVALENCE_ITEMS:
        _add_note(comparison, f"too few items ({n}) for a non-inferiority verdict ({MIN_EQUIVALENCE_ITEMS} needed)")
        return
    _add_note(comparison, verdict(narrow, margin, higher_is_better, alpha))


def noninferiority(comparison: Comparison, pairs: list[tuple[Any, Any]], registry: dict[str, Any], margin: float,
                   alpha: float = ALPHA) -> None:
    """Write the non-inferiority verdict of ``member - base`` over the seeds' (base, member) ``pairs`` (one pair:
    a single seed) into ``comparison``'s note. The CI is the paired bootstrap that the two-sided row uses
    (medbench.sweep_statistics.paired_run), at 1 - 2*alpha."""
    paired = paired_run(pairs, registry)
    if isinstance(paired, Comparison):
        _add_note(comparison, paired.note or "nothing paired: non-inferiority not tested")
        return
    n, run, _ = paired
    one_sided(comparison, n, run(1 - 2 * alpha) if n >= MIN_EQUIVALENCE_ITEMS else {}, margin,
              bool(pairs[0][1].higher_is_better), alpha)
