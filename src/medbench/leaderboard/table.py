"""The leaderboard's data model: cells, rows, comparisons and the table that renderers receive."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from medbench.leaderboard import stats
from medbench.leaderboard.provenance import column_sources, data_source, provenance

if TYPE_CHECKING:
    from medbench.leaderboard.references import ReferenceRow

Renderer = Callable[["LeaderboardTable", Path], Path]

NOTICE = "Research use only, not for clinical decisions."
CONFIDENCE = 0.95
ALPHA = 0.05
LOWER_IS_BETTER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter", "loss", "brier_score"}
# Corpus metrics whose per-item value is known without the metric function.
PER_ITEM_FROM_PRED: dict[str, Callable[[Any, Any], float]] = {"accuracy": lambda gold, pred: float(gold == pred)}


@dataclass
class Comparison:
    """A cell against the baseline row's cell in the same column, on the items both scored."""

    test: str  # "mcnemar-exact", "paired-permutation", "cluster-permutation" or "" (no test; see note)
    n_paired: int = 0
    delta: float | None = None  # this row minus the baseline, on the paired items
    p: float | None = None
    q: float | None = None  # Benjamini-Hochberg across the whole table
    significant: bool = False
    direction: str = ""  # "better", "worse" or "" (by the metric's direction)
    b: int | None = None  # McNemar: items the baseline got right and this row wrong
    c: int | None = None  # McNemar: items this row got right and the baseline wrong
    ci_low: float | None = None  # paired-permutation comparisons: paired bootstrap CI of delta
    ci_high: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: nan_to_none(v) for k, v in vars(self).items()}


@dataclass
class Cell:
    score: float | None
    stderr: float | None
    n: int
    metric: str
    record_path: str
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""  # "wilson", "bootstrap", "cluster-bootstrap", "normal" (from the stderr) or "" (none)
    higher_is_better: bool = True
    comparison: Comparison | None = None
    sd: float | None = None  # seed groups: the sample standard deviation over seeds
    runs: int = 1  # seed groups: how many runs the mean is over
    record: dict[str, Any] | None = field(default=None, repr=False)
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)
    factors: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: nan_to_none(getattr(self, k)) for k in ("score", "stderr", "n", "metric", "record_path", "ci_low",
                                                     "ci_high", "ci_method", "higher_is_better", "sd", "runs")}
        out["comparison"] = self.comparison.as_dict() if self.comparison else None
        if self.record is not None:
            out["provenance"] = provenance(self.record)
        out["factors"] = self.factors
        out["data_source"] = data_source(self.record)
        return out


@dataclass
class Row:
    key: str  # label + weights hash: the same weights under another name are another row
    label: str
    weights_hash: str
    model: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)
    kind: str = "run"  # "run" or "seed-group"
    training: dict[str, Any] | None = None  # what trained this checkpoint (plugin, config, ...), if known
    seed: int | None = None
    signature: str = ""  # equal for rows that differ only by seed
    members: list[str] = field(default_factory=list)  # seed groups: the member rows' keys
    win_rate: float | None = None
    is_baseline: bool = False
    coverage: int = 0  # task columns this row has a score on ...
    coverage_of: int = 0  # ... of the table's columns
    tier: int = 0  # rank of this row's set of scored columns (see rank_rows): 0 = the most complete

    @property
    def complete(self) -> bool:
        return self.coverage == self.coverage_of

    def averaged_cells(self) -> list[Cell]:
        """The cells an average is over: higher-is-better ones (acc, F1, ROUGE); a perplexity runs the other way
        on another scale, so it counts in the win rate only."""
        return [c for c in self.cells.values() if c.higher_is_better]

    def mean_score(self) -> float | None:
        scores = [c.score for c in self.averaged_cells() if c.score is not None]
        return sum(scores) / len(scores) if scores else None

    def weighted_score(self) -> float | None:
        cells = self.averaged_cells()
        return stats.weighted_average([c.score for c in cells], [c.n for c in cells])

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "weights_hash": self.weights_hash, "model": self.model,
                "kind": self.kind, "is_baseline": self.is_baseline, "seed": self.seed,
                "mean": nan_to_none(self.mean_score()), "weighted_mean": nan_to_none(self.weighted_score()),
                "win_rate": nan_to_none(self.win_rate), "training": self.training, "members": self.members,
                "coverage": {"tasks": self.coverage, "of": self.coverage_of, "complete": self.complete,
                             "tier": self.tier},
                "cells": {col: cell.as_dict() for col, cell in self.cells.items()}}


@dataclass
class LeaderboardTable:
    columns: list[str]
    rows: list[Row]
    groups: list[Row] = field(default_factory=list)  # seed groups (mean ± sd over runs differing only by seed)
    baseline: Row | None = None
    confidence: float = CONFIDENCE
    alpha: float = ALPHA
    bootstrap_iters: int = stats.DEFAULT_ITERS
    seed: int = stats.DEFAULT_SEED
    notes: list[str] = field(default_factory=list)
    # Trivial baselines per column: not rows (never ranked, counted or tested); their notes say what was skipped.
    references: list[ReferenceRow] = field(default_factory=list)
    reference_notes: list[str] = field(default_factory=list)

    def column_info(self) -> dict[str, dict[str, Any]]:
        info: dict[str, dict[str, Any]] = {}
        for col in self.columns:
            cells = [r.cells[col] for r in self.rows if col in r.cells]
            record = next((c.record for c in cells if c.record), None) or {}
            task = record.get("task") or {}
            info[col] = {"task": task.get("name", col), "metrics": sorted({c.metric for c in cells}),
                         "higher_is_better": all(c.higher_is_better for c in cells),
                         "num_fewshot": task.get("num_fewshot"), "split": task.get("split"),
                         "data_hashes": sorted({(c.record or {}).get("task", {}).get("data_hash") or ""
                                                for c in cells} - {""}),
                         "data_sources": column_sources(cells)}
        return info

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "column_info": self.column_info(),
            "baseline": ({"key": self.baseline.key, "label": self.baseline.label,
                          "weights_hash": self.baseline.weights_hash} if self.baseline else None),
            "statistics": {
                "confidence": self.confidence, "alpha": self.alpha, "correction": "benjamini-hochberg",
                "bootstrap_iters": self.bootstrap_iters, "bootstrap_seed": self.seed,
                "ci": "wilson for per-item 0/1 metrics, percentile bootstrap over items otherwise; over clusters "
                      "(cluster-bootstrap) where the task names each item's cluster (metadata.cluster_field)",
                "tests": "paired on doc_id: mcnemar-exact for 0/1 metrics, paired-permutation otherwise (with a paired "
                         "bootstrap CI of the difference); cluster-permutation (whole clusters swapped and resampled) "
                         "where the task names each item's cluster",
                "win_rate": "HELM mean win rate over the row's task columns (ties count half)",
                "mean": "mean of the higher-is-better scores (lower-is-better ones count in the win rate only)",
                "weighted_mean": "mean of the higher-is-better scores weighted by items scored",
                "coverage": "mean, weighted mean and win rate are over the row's own k of N tasks; rows are "
                            "ranked by mean only among rows scored on the same tasks, more tasks first",
            },
            "notes": self.notes,
            "rows": [r.as_dict() for r in self.rows],
            "seed_groups": [g.as_dict() for g in self.groups],
            "references": self.references_dict(),
            "notice": NOTICE,
        }

    def references_dict(self) -> dict[str, Any]:
        from medbench.leaderboard.references import BADGE, DESCRIPTION

        return {"badge": BADGE, "description": DESCRIPTION, "rows": [r.as_dict() for r in self.references],
                "notes": self.reference_notes}


def nan_to_none(value: Any) -> Any:
    """NaN and infinities are not JSON (nor a CI bound anyone can plot): report them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
