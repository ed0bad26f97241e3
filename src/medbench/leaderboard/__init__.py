"""The leaderboard: every record under a directory, as one row per checkpoint and one column per task.

Records (``records/*/*/record.json`` + ``samples.jsonl``) are the source of truth; everything here is derived
from them and can be rebuilt at any time. On top of the scores the table carries the statistics that say which
differences are real (see medbench.leaderboard.stats):

- a 95 % CI per cell: Wilson for a per-item 0/1 metric (acc, exact_match, ...), a percentile bootstrap over
  items otherwise (F1, ROUGE, AUROC, ...), recomputed from the saved samples;
- a paired comparison of every row against a baseline row per column, on the items both scored (same doc_id,
  same data hash): McNemar's exact test for 0/1 metrics, a paired permutation test for the others (with a
  paired bootstrap CI of the difference);
- Benjamini-Hochberg q-values across every comparison in the table; a difference is marked at q <= alpha;
- seed groups: rows whose records differ only by seed, summarised as mean ± sd;
- HELM's mean win rate and an average weighted by items scored, each over the row's own tasks and shown with
  its coverage (k of N tasks); rows are ranked by mean only among rows scored on the same tasks, so a row scored
  on fewer tasks never ranks above one scored on more (see rank_rows).

Beside the rows, reference rows: each task's trivial baselines (majority class, bag-of-words LR, lead-3), kept
apart from the rows so that they are never ranked, counted or tested (see medbench.leaderboard.references).

A record that is not valid (see medbench.records.RecordSchema) is skipped with a one-line warning; a record whose
samples file lies outside its folder is shown without samples, with a note and a warning.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from medbench.errors import MedbenchError
from medbench.leaderboard import stats
# Re-exported: medbench.leaderboard is where callers find data_source, provenance and training_info.
from medbench.leaderboard.provenance import (_signature, cell_factors, column_sources, data_source,
                                             provenance, training_info)
from medbench.plugins import call_register_hook
from medbench.records import RecordWarning, SamplesPathError, read_records, read_samples

if TYPE_CHECKING:
    from medbench.leaderboard.references import ReferenceRow

Renderer = Callable[["LeaderboardTable", Path], Path]

NOTICE = "Research use only, not for clinical decisions."
CONFIDENCE = 0.95
ALPHA = 0.05
LOWER_IS_BETTER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter", "loss"}
# Corpus metrics whose per-item value is known without the metric function.
PER_ITEM_FROM_PRED: dict[str, Callable[[Any, Any], float]] = {"accuracy": lambda gold, pred: float(gold == pred)}


@dataclass
class Comparison:
    """A cell against the baseline row's cell in the same column, on the items both scored."""

    test: str  # "mcnemar-exact", "paired-permutation" or "" (no test; see note)
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
        return {k: _clean(v) for k, v in vars(self).items()}


@dataclass
class Cell:
    score: float | None
    stderr: float | None
    n: int
    metric: str
    record_path: str
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""  # "wilson", "bootstrap", "normal" (from the stderr) or "" (none)
    higher_is_better: bool = True
    comparison: Comparison | None = None
    sd: float | None = None  # seed groups: the sample standard deviation over seeds
    runs: int = 1  # seed groups: how many runs the mean is over
    record: dict[str, Any] | None = field(default=None, repr=False)
    samples: list[dict[str, Any]] = field(default_factory=list, repr=False)
    factors: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: _clean(getattr(self, k)) for k in ("score", "stderr", "n", "metric", "record_path", "ci_low",
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

    def mean_score(self) -> float | None:
        scores = [c.score for c in self.cells.values() if c.score is not None]
        return sum(scores) / len(scores) if scores else None

    def weighted_score(self) -> float | None:
        cells = list(self.cells.values())
        return stats.weighted_average([c.score for c in cells], [c.n for c in cells])

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "weights_hash": self.weights_hash, "model": self.model,
                "kind": self.kind, "is_baseline": self.is_baseline, "seed": self.seed,
                "mean": _clean(self.mean_score()), "weighted_mean": _clean(self.weighted_score()),
                "win_rate": _clean(self.win_rate), "training": self.training, "members": self.members,
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
                "ci": "wilson for per-item 0/1 metrics, percentile bootstrap over items otherwise",
                "tests": "paired on doc_id: mcnemar-exact for 0/1 metrics, paired-permutation otherwise (with a paired "
                         "bootstrap CI of the difference)",
                "win_rate": "HELM mean win rate over the row's task columns (ties count half)",
                "weighted_mean": "mean of the scores weighted by items scored",
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


def _clean(value: Any) -> Any:
    """NaN is not JSON: report it as None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# ----------------------------------------------------------------------------------------- per-cell stats


def _metric_registry():
    try:
        from medbench.metrics import metric_registry

        return metric_registry()
    except Exception:  # a broken metrics plugin must not take the leaderboard down
        return {}


def corpus_metric(name: str, registry: dict[str, Any]) -> Callable[[list[dict[str, Any]]], float] | None:
    """``name`` as a function of a list of samples, from the ``register_metrics`` registry (``per_label_f1:nurse``
    is the ``nurse`` part of ``per_label_f1``); None when no registered metric gives it."""
    metric = registry.get(name.split(":", 1)[0])
    if metric is None:
        return None

    def value(samples: list[dict[str, Any]]) -> float:
        if hasattr(metric, "compute"):
            return float(metric.compute(samples).get(name, math.nan))
        return float(metric.fn([s.get("gold") for s in samples], [s.get("pred") for s in samples]))

    return value


def _vectorised(metric: str, registry: dict[str, Any]) -> stats.Vectorised | None:
    """The all-resamples-at-once form a label metric declares (``register(..., resampled=fn)``), as a function
    of (weights, _, samples); None when it declares none."""
    entry = registry.get(metric)
    fast = getattr(entry, "resampled", None)
    if entry is None or fast is None or getattr(entry, "needs", "labels") != "labels":
        return None
    return lambda weights, _refs, samples: fast(weights, [s.get("gold") for s in samples],
                                                [s.get("pred") for s in samples])


def _higher_is_better(metric: str, registry: dict[str, Any]) -> bool:
    if metric in registry:
        return bool(registry[metric].higher_is_better)
    return metric not in LOWER_IS_BETTER


def per_item_values(metric: str, samples: list[dict[str, Any]]) -> list[float] | None:
    """Each sample's value of ``metric`` (lm-eval saves acc, acc_norm, exact_match per item), or None."""
    if not samples:
        return None
    if all(isinstance(s.get(metric), (int, float)) for s in samples):  # bool is an int too
        return [float(s[metric]) for s in samples]
    if metric in PER_ITEM_FROM_PRED and all("gold" in s and "pred" in s for s in samples):
        return [PER_ITEM_FROM_PRED[metric](s["gold"], s["pred"]) for s in samples]
    return None


def _is_binary(values: list[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def cell_interval(cell: Cell, registry: dict[str, Any], *, confidence: float = CONFIDENCE,
                  iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED) -> None:
    """Fill ``cell.ci_low/ci_high/ci_method`` from its samples (Wilson or bootstrap), else from its stderr."""
    values = per_item_values(cell.metric, cell.samples)
    lo = hi = None
    if values:
        if _is_binary(values):
            lo, hi = stats.wilson_interval(sum(values), len(values), confidence)
            cell.ci_method = "wilson"
        else:
            lo, hi = stats.bootstrap_mean_ci(values, iters=iters, seed=seed, confidence=confidence)
            cell.ci_method = "bootstrap"
    elif cell.samples and corpus_metric(cell.metric, registry) is not None:
        value = corpus_metric(cell.metric, registry)
        # Resample the samples themselves (refs and preds are both the sample list; the metric reads what it needs).
        lo, hi = stats.bootstrap_ci(lambda _refs, samples: value(samples), cell.samples, cell.samples, iters=iters,
                                    seed=seed, confidence=confidence, vectorised=_vectorised(cell.metric, registry))
        cell.ci_method = "bootstrap"
    elif cell.score is not None and cell.stderr is not None:
        z = stats.z_value(confidence)
        lo, hi = cell.score - z * cell.stderr, cell.score + z * cell.stderr
        cell.ci_method = "normal"
    cell.ci_low, cell.ci_high = _clean(lo), _clean(hi)
    if cell.ci_low is None or cell.ci_high is None:
        cell.ci_low = cell.ci_high = None
        cell.ci_method = ""


def compare_cells(base: Cell, other: Cell, registry: dict[str, Any], *, confidence: float = CONFIDENCE,
                  iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED) -> Comparison:
    """``other`` against ``base`` on the items both scored (same doc_id; the same data, by its hash)."""
    if base.metric != other.metric:
        return Comparison("", note=f"different metrics ({base.metric} vs {other.metric})")
    base_hash = ((base.record or {}).get("task") or {}).get("data_hash")
    other_hash = ((other.record or {}).get("task") or {}).get("data_hash")
    if base_hash and other_hash and base_hash != other_hash:
        return Comparison("", note="scored on different data (data hashes differ)")
    if not base.samples or not other.samples:
        return Comparison("", note="no per-item samples to pair (samples.jsonl missing)")
    base_items = {s.get("doc_id"): s for s in base.samples if s.get("doc_id") is not None}
    other_items = {s.get("doc_id"): s for s in other.samples if s.get("doc_id") is not None}
    common = sorted(set(base_items) & set(other_items), key=lambda d: (str(type(d)), d))
    if not common:
        return Comparison("", note="no items in common with the baseline")
    a_samples = [base_items[d] for d in common]
    b_samples = [other_items[d] for d in common]
    a_values, b_values = per_item_values(base.metric, a_samples), per_item_values(other.metric, b_samples)
    comparison: Comparison
    if a_values is not None and b_values is not None and _is_binary(a_values) and _is_binary(b_values):
        b = sum(1 for x, y in zip(a_values, b_values) if x == 1 and y == 0)
        c = sum(1 for x, y in zip(a_values, b_values) if x == 0 and y == 1)
        delta = (sum(b_values) - sum(a_values)) / len(common)
        comparison = Comparison("mcnemar-exact", len(common), delta, stats.mcnemar_exact(b, c), b=b, c=c)
    elif a_values is not None and b_values is not None:
        result = stats.paired_bootstrap(None, None, a_values, b_values, iters=iters, seed=seed, confidence=confidence)
        comparison = Comparison("paired-permutation", len(common), _clean(result["delta"]), _clean(result["p"]),
                                ci_low=_clean(result["ci_low"]), ci_high=_clean(result["ci_high"]))
    elif corpus_metric(base.metric, registry) is not None:
        if [s.get("gold") for s in a_samples] != [s.get("gold") for s in b_samples]:
            return Comparison("", len(common), note="the gold answers differ on shared doc_ids")
        value = corpus_metric(base.metric, registry)
        result = stats.paired_bootstrap(lambda _refs, samples: value(samples), list(range(len(common))), a_samples,
                                        b_samples, iters=iters, seed=seed, confidence=confidence,
                                        vectorised=_vectorised(base.metric, registry))
        comparison = Comparison("paired-permutation", len(common), _clean(result["delta"]), _clean(result["p"]),
                                ci_low=_clean(result["ci_low"]), ci_high=_clean(result["ci_high"]))
    else:
        return Comparison("", len(common), note="no per-item values to pair")
    if comparison.delta is not None and comparison.delta != 0:
        better = comparison.delta > 0 if other.higher_is_better else comparison.delta < 0
        comparison.direction = "better" if better else "worse"
    return comparison


# --------------------------------------------------------------------------------------------- baseline


def _parent_of(row: Row) -> str | None:
    if row.training and row.training.get("parent_model"):
        return str(row.training["parent_model"])
    return row.model.get("base_ref")


def default_baseline(rows: list[Row]) -> Row | None:
    """The model the other rows were trained from: the untrained row named as parent by the most rows."""
    untrained = [r for r in rows if not r.training]
    counts: dict[str, int] = {}
    for row in rows:
        parent = _parent_of(row)
        if not parent:
            continue
        for candidate in untrained:
            if candidate is not row and parent in (candidate.model.get("ref"), candidate.label,
                                                   candidate.model.get("path")):
                counts[candidate.key] = counts.get(candidate.key, 0) + 1
    if counts:
        best = max(counts.values())
        keys = [k for k, v in counts.items() if v == best]
        candidates = [r for r in untrained if r.key in keys]
        return max(candidates, key=_row_created)
    if len(untrained) == 1 and len(rows) > 1:
        return untrained[0]
    return None


def _row_created(row: Row) -> str:
    return max(((c.record or {}).get("created") or "" for c in row.cells.values()), default="")


def resolve_baseline(rows: list[Row], ref: str | None, root: Path | None = None) -> Row | None:
    """``ref``: a row label, a weights-hash prefix, or a model reference (a path as typed here, or as the records
    store it relative to ``root``); None: the default; 'none': no baseline."""
    from medbench.portable import portable_path

    if ref is None:
        return default_baseline(rows)
    if ref.strip().lower() in ("", "none"):
        return None
    stored = portable_path(ref, root) if root is not None else ref
    for matcher in (lambda r: r.label == ref or r.key == ref,
                    lambda r: len(ref) >= 4 and r.weights_hash.lower().startswith(ref.lower()),
                    lambda r: r.model.get("ref") in (ref, stored)):
        found = [r for r in rows if matcher(r)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise MedbenchError(f"--baseline {ref!r} matches {len(found)} rows "
                                f"({', '.join(r.label + ' ' + r.weights_hash[:12] for r in found)})",
                                "pass a longer weights-hash prefix to pick one")
    labels = ", ".join(f"{r.label} ({r.weights_hash[:12]})" for r in rows)
    raise MedbenchError(f"--baseline {ref!r} matches no leaderboard row",
                        f"pass a row label or a weights-hash prefix (at least 4 characters): {labels}")


# --------------------------------------------------------------------------------------------- ranking


def rank_rows(rows: list[Row], columns: list[str]) -> list[Row]:
    """Rows ordered so that an aggregate is compared only where it is comparable: rows are grouped by the exact set
    of columns they have a score on; groups with more columns come first (among equals, the group whose best mean
    is higher); inside a group, by mean. Sets each row's coverage and tier."""
    by_columns: dict[frozenset[str], list[Row]] = {}
    for row in rows:
        scored = frozenset(col for col, cell in row.cells.items() if _finite(cell.score))
        by_columns.setdefault(scored, []).append(row)

    def mean(row: Row) -> float:
        value = row.mean_score()
        return value if value is not None else float("-inf")

    ordered = sorted(by_columns.items(), key=lambda kv: (-len(kv[0]), -max(mean(r) for r in kv[1]), sorted(kv[0])))
    ranked = []
    for tier, (scored, members) in enumerate(ordered):
        for row in members:
            row.coverage, row.coverage_of, row.tier = len(scored), len(columns), tier
        ranked += sorted(members, key=lambda r: (-mean(r), r.label))
    return ranked


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------- seed groups


def _common_label(labels: list[str]) -> str:
    prefix = os.path.commonprefix(labels)
    suffix = os.path.commonprefix([label[len(prefix):][::-1] for label in labels])[::-1]
    return f"{prefix}*{suffix}" if any(len(label) > len(prefix) + len(suffix) for label in labels) else prefix


def seed_groups(rows: list[Row]) -> list[Row]:
    """Rows with the same signature and at least two different seeds, as mean ± sd rows."""
    by_signature: dict[str, list[Row]] = {}
    for row in rows:
        by_signature.setdefault(row.signature, []).append(row)
    groups = []
    for signature, members in sorted(by_signature.items()):
        if len(members) < 2 or len({m.seed for m in members}) < 2:
            continue
        members = sorted(members, key=lambda m: (m.seed is None, m.seed or 0, m.label))
        label = f"{_common_label([m.label for m in members])} ({len(members)} seeds)"
        group = Row(f"seed-group:{signature}", label, "", {"seeds": [m.seed for m in members]}, kind="seed-group",
                    training=members[0].training, signature=signature, members=[m.key for m in members])
        columns = sorted({col for m in members for col in m.cells})
        for col in columns:
            scored = [m.cells[col] for m in members if col in m.cells and m.cells[col].score is not None]
            if not scored:
                continue
            mean, sd = stats.mean_sd([c.score for c in scored])
            group.cells[col] = Cell(mean, None, round(sum(c.n for c in scored) / len(scored)), scored[0].metric, "",
                                    higher_is_better=scored[0].higher_is_better, sd=sd, runs=len(scored),
                                    factors={k: v for k, v in scored[0].factors.items()})
        group.coverage, group.coverage_of = len(group.cells), len({col for r in rows for col in r.cells})
        groups.append(group)
    return groups


# --------------------------------------------------------------------------------------------- the table


def build_table(root: Path, baseline: str | None = None, *, with_stats: bool = True,
                iters: int = stats.DEFAULT_ITERS, seed: int = stats.DEFAULT_SEED, confidence: float = CONFIDENCE,
                alpha: float = ALPHA, references: str = "cached",
                notify: Callable[[str], None] | None = None) -> LeaderboardTable:
    """Every record under ``root`` as a table, newest record per (row, column); with ``with_stats``, CIs,
    comparisons against ``baseline`` (see resolve_baseline), BH q-values, seed groups and win rates, and the
    tasks' trivial baselines as reference rows: ``references`` "compute" (fit what is not cached yet), "cached"
    (only what an earlier "compute" cached: no fitting) or "off"; ``notify`` hears of each fit."""
    rows: dict[str, Row] = {}
    columns: set[str] = set()
    registry = _metric_registry() if with_stats else {}
    # Newest record wins when a checkpoint was scored on the same task twice.
    # Every record here is valid (medbench.records.RecordSchema); invalid ones were skipped with a warning.
    for record in sorted(read_records(root), key=lambda r: r.get("created") or ""):
        model = record["model"]
        key = f"{model['label']}|{model['weights_hash']}"
        row = rows.setdefault(key, Row(key, model["label"], model["weights_hash"], model))
        column = record["record_key"]
        columns.add(column)
        metric = record.get("primary_metric") or ""
        score, stderr = record["score"], record.get("stderr")
        # A NaN or infinite score is no score: it would poison the means and the ranking.
        row.cells[column] = Cell(score if _finite(score) else None, stderr if _finite(stderr) else None,
                                 record["n"], metric, record.get("_board_path") or record["_path"],
                                 higher_is_better=_higher_is_better(metric, registry), record=record)
        row.model = model
    table = LeaderboardTable(sorted(columns), [], bootstrap_iters=iters, seed=seed, confidence=confidence,
                             alpha=alpha)
    for row in rows.values():
        newest = max((c.record for c in row.cells.values()), key=lambda r: r.get("created") or "")
        row.training = training_info(newest)
        row.seed = (row.training or {}).get("seed", newest.get("seed"))
        row.signature = _signature(newest, row.training)
        for cell in row.cells.values():
            cell.factors = cell_factors(cell.record)
    table.rows = rank_rows(list(rows.values()), table.columns)
    if not with_stats:
        return table

    for row in table.rows:
        for cell in row.cells.values():
            try:
                cell.samples = read_samples(cell.record)
            except (OSError, ValueError) as exc:
                cell.samples = []
                why = str(exc) if isinstance(exc, SamplesPathError) else f"samples unreadable ({exc})"
                table.notes.append(f"{row.label} / {cell.record.get('record_key')}: {why}; "
                                   "no CI from samples and no paired test")
                if isinstance(exc, SamplesPathError):  # a record pointing elsewhere is suspicious: say so loudly
                    warnings.warn(f"record {cell.record.get('_path')}: {exc} — shown without its samples", RecordWarning,
                                  stacklevel=2)
            cell_interval(cell, registry, confidence=confidence, iters=iters, seed=seed)

    table.baseline = resolve_baseline(table.rows, baseline, Path(root))
    comparisons: list[Comparison] = []
    if table.baseline is not None:
        table.baseline.is_baseline = True
        for row in table.rows:
            if row is table.baseline:
                continue
            for col, cell in row.cells.items():
                base_cell = table.baseline.cells.get(col)
                if base_cell is None or cell.score is None or base_cell.score is None:
                    continue
                cell.comparison = compare_cells(base_cell, cell, registry, confidence=confidence, iters=iters,
                                                seed=seed)
                if cell.comparison.p is not None:
                    comparisons.append(cell.comparison)
    for comparison, q in zip(comparisons, stats.benjamini_hochberg([c.p for c in comparisons])):
        comparison.q = q
        comparison.significant = q is not None and q <= alpha and comparison.direction != ""

    matrix = [[row.cells[col].score if col in row.cells else None for col in table.columns] for row in table.rows]
    higher = [all(r.cells[col].higher_is_better for r in table.rows if col in r.cells) for col in table.columns]
    for row, rate in zip(table.rows, stats.mean_win_rate(matrix, higher)):
        row.win_rate = rate
    table.groups = seed_groups(table.rows)
    from medbench.leaderboard.references import reference_rows

    table.references, table.reference_notes = reference_rows(table, root, references, notify)
    return table


# --------------------------------------------------------------------------------------------- rendering


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """An exclusive lock on a leaderboard directory while it is read and rendered, so that of several processes
    scoring into one leaderboard at once, the last to render sees every record (the records themselves never
    need it: each is its own file, written atomically). The lock is flock(2) on the directory itself, so no lock
    file lands in the committed leaderboard."""
    try:
        import fcntl

        fd = os.open(root, os.O_RDONLY)
    except (ImportError, OSError):  # no such directory (nothing to render) or not POSIX: nothing to lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def renderers() -> dict[str, Renderer]:
    from medbench.plugins import claim, plugin_callable  # a renderer that raises names its plugin and package

    found: dict[str, Renderer] = {}
    owners: dict[str, str] = {}

    def register_for(plugin: str):
        def register(name: str, fn: Renderer) -> None:
            if claim(owners, "leaderboard renderer", name, plugin):
                found[name] = plugin_callable(plugin, f"leaderboard renderer {name!r}", fn)

        return register

    call_register_hook("register_leaderboard_renderers", register_for)
    return found


def render_table(root: Path, formats: list[str] | None = None, baseline: str | None = None,
                 references: str = "cached", notify: Callable[[str], None] | None = None
                 ) -> tuple[LeaderboardTable, list[Path]]:
    """Build the table from every record under ``root`` and write it in ``formats`` (default: every registered
    renderer), under a lock on the directory; returns the table and the files written. ``references``: see
    build_table."""
    available = renderers()
    formats = list(dict.fromkeys(formats or sorted(available)))
    unknown = [f for f in formats if f not in available]
    if unknown:
        raise MedbenchError(f"unknown leaderboard format(s) {', '.join(unknown)}",
                            f"use one of {', '.join(sorted(available))}")
    root = Path(root)
    with locked(root):
        table = build_table(root, baseline, references=references, notify=notify)
        if not table.rows:
            raise MedbenchError(f"no records under {root}/records",
                                "run `medbench eval --tasks medqa` first, or pass --leaderboard-dir to a leaderboard with records")
        return table, _render_staged(table, root, [available[name] for name in formats])


def _render_staged(table: LeaderboardTable, root: Path, chosen: list[Renderer]) -> list[Path]:
    """Every renderer writes into a staging folder inside ``root``; only when all of them succeed are their files
    moved into place, so a renderer that fails leaves the leaderboard's files as they were."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=".medbench-render-", dir=root))
    except OSError as exc:
        raise MedbenchError(f"cannot write to {root} ({exc.strerror or exc})",
                            "check free disk space and write permission, or pass another --dir") from None
    try:
        written = [Path(renderer(table, staging)) for renderer in chosen]
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = root / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        return [root / p.relative_to(staging) if p.is_relative_to(staging) else p for p in written]
    except OSError as exc:
        raise MedbenchError(f"cannot write the leaderboard in {root} ({exc.strerror or exc})",
                            "check free disk space and write permission, or pass another --dir") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render(root: Path, formats: list[str] | None = None, baseline: str | None = None,
           references: str = "cached") -> list[Path]:
    """Render every record under ``root`` in ``formats`` (default: every registered renderer); trivial baselines
    only as far as ``medbench leaderboard`` cached them (``references``: see build_table)."""
    return render_table(root, formats, baseline, references)[1]


# Re-scoring lives in its own module; imported last because it uses the helpers above.
from medbench.leaderboard.rescoring import rescore, rescore_all  # noqa: E402

__all__ = ["NOTICE", "Cell", "Comparison", "LeaderboardTable", "Row", "build_table", "compare_cells", "data_source",
           "per_item_values", "provenance", "render", "render_table", "renderers", "rescore", "rescore_all",
           "resolve_baseline", "training_info"]
