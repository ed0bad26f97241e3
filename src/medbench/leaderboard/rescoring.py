"""Re-scoring: a record's metrics recomputed from its samples.jsonl, no model needed (a fixed metric, a metric a
plugin added later), and every record of a leaderboard at once under its lock."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.leaderboard import locked, stats
from medbench.leaderboard.comparisons import MAX_ITEM_VALUE, metric_registry_or_empty, per_item_values
from medbench.leaderboard.table import PER_ITEM_FROM_PRED
from medbench.record_schema import MetricValue, Record, RecordError, validate_record
from medbench.records import (RecordWarning, atomic_write_json, load_record, read_records, read_samples,
                              refuse_links)


def _compute(name: str, samples: list[dict[str, Any]], registry: dict[str, Any]) -> dict[str, float]:
    """A registered metric over the samples, as {name or name:part: value}, NaN results left out."""
    metric = registry.get(name)
    if metric is None or not samples:
        return {}
    if hasattr(metric, "compute"):
        result = metric.compute(samples)
    else:
        result = {name: metric.fn([s.get("gold") for s in samples], [s.get("pred") for s in samples])}
    return {k: float(v) for k, v in result.items() if not math.isnan(float(v))}


class UnreadableSamples(MedbenchError):
    """A record whose samples.jsonl cannot be read (missing, damaged, crafted): it cannot be re-scored."""


def rescore(record_dir: Path, metrics: list[str] | None = None, registry: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """Recompute a record's metrics from its samples.jsonl (no model needed) and rewrite record.json atomically.

    Metrics with per-item values in the samples (acc, acc_norm, exact_match) are their mean with the standard
    error of the mean (ddof=1, as lm-eval reports it); registered metrics (``register_metrics``) are recomputed
    from each sample's gold and pred. ``metrics`` adds registered metrics the record does not have yet. A metric
    that can be neither is kept as it was and listed under ``rescore_kept``.
    """
    record_dir = Path(record_dir)
    path = record_dir / "record.json" if record_dir.is_dir() else record_dir
    try:
        record = load_record(path)
    except RecordError as exc:
        raise MedbenchError(f"cannot re-score record {path}: {exc}",
                            "pass a directory holding a valid record.json, or fix or delete that file") from None
    try:
        samples = read_samples(record)
    except (OSError, ValueError) as exc:
        raise UnreadableSamples(f"cannot read the samples of {path} ({exc})",
                                "a record can be re-scored only with its samples.jsonl beside it") from None
    if not samples:  # re-scoring would keep every score as it was, over n=0: stale, and said to be fresh
        raise UnreadableSamples(f"cannot re-score {path}: its samples file holds no samples",
                                "a record can be re-scored only with its samples.jsonl beside it")
    registry = registry if registry is not None else metric_registry_or_empty()
    names = list(record.get("metrics") or {})
    names += [m for m in (metrics or []) if m not in names]
    new_metrics: dict[str, dict[str, float | None]] = {}
    kept = []
    for name in names:
        values = per_item_values(name, samples)
        computed = _compute(name.split(":", 1)[0], samples, registry)
        if values is not None and name not in PER_ITEM_FROM_PRED:
            if not all(abs(v) <= MAX_ITEM_VALUE for v in values):  # NaN too: its mean would be written as a score
                raise UnreadableSamples(f"cannot re-score {path}: its samples hold {name} values no score comes from "
                                        f"(beyond +-{MAX_ITEM_VALUE:g})", "fix or delete its samples.jsonl, or "
                                        "score the checkpoint again")
            mean, sd = stats.mean_sd(values)
            new_metrics[name] = {"value": mean, "stderr": sd / math.sqrt(len(values)) if sd is not None else None}
        elif computed and (name in computed or ":" not in name):
            # The metric, or for a metric with named parts (per_label_f1) every part, as medbench.metrics scores it.
            for key, value in computed.items():
                if key == name or (":" not in name and key.startswith(name + ":")):
                    new_metrics[key] = {"value": value, "stderr": None}
        elif name in (record.get("metrics") or {}):
            new_metrics[name] = record["metrics"][name]
            kept.append(name)
        else:
            raise MedbenchError(f"cannot re-score metric {name!r}: no per-item values and no registered metric "
                                "that applies to these samples", "install the plugin that registers it, or leave it out")
    typed = Record.of({k: v for k, v in record.items() if not k.startswith("_")})
    typed.metrics = {name: MetricValue.of(value) for name, value in new_metrics.items()}
    if typed.primary_metric in typed.metrics:
        typed.score = typed.metrics[typed.primary_metric].value
        typed.stderr = typed.metrics[typed.primary_metric].stderr
    typed.n = len(samples)
    typed.rescored = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    typed.rescore_kept = kept or None
    rescored = typed.to_json()
    try:  # a valid record's samples may still be crafted: an acc of -1 or 1e308 gives no score a record may hold
        validate_record(json.loads(json.dumps(rescored)))
    except (RecordError, ValueError) as exc:
        raise UnreadableSamples(f"cannot re-score {path}: its samples give a record that is not valid ({exc})",
                                "fix or delete its samples.jsonl, or score the checkpoint again") from None
    atomic_write_json(path, rescored)
    return {**rescored, "_path": str(path)}


def rescore_all(root: Path, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """Re-score every record under ``root`` from its samples (see rescore); one whose samples cannot be read is
    left as it is, with a warning."""
    registry = metric_registry_or_empty()
    done = []
    with locked(Path(root)):
        for record in read_records(root):
            folder = Path(record["_path"]).parent
            try:
                refuse_links(root, folder)  # a record is never rewritten through a link (out of the leaderboard)
            except MedbenchError as exc:
                warnings.warn(f"record not re-scored: {exc.problem}", RecordWarning, stacklevel=2)
                continue
            try:
                done.append(rescore(folder, metrics, registry))
            except UnreadableSamples as exc:  # one damaged samples file must not stop the others (nor the page)
                warnings.warn(f"record not re-scored: {exc.problem} — fix or delete its samples.jsonl", RecordWarning,
                              stacklevel=2)
                continue
            if done[-1].get("primary_metric") in (done[-1].get("rescore_kept") or ()):  # its score is the old one
                warnings.warn(f"record {done[-1]['_path']}: its score ({done[-1]['primary_metric']}) was kept as it "
                              "was: its samples have no per-item values for it and no registered metric computes it "
                              "— install the plugin that registers that metric, or score the checkpoint again",
                              RecordWarning, stacklevel=2)
    return done
