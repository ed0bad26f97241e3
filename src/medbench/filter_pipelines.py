"""lm-eval's results for one task as a record holds them, for a task scored through several filter pipelines (the
MMLU flan variants: ``strict-match`` and ``flexible-extract``). lm-eval logs every item once per pipeline and
reports each metric per pipeline (``exact_match,strict-match``, ``exact_match,flexible-extract``); a record has one
row per item (its ``n``, paired statistics and re-scoring count items). So the first pipeline's samples are the
rows and its metrics keep their plain names, as a one-pipeline task's do; every other pipeline's metrics keep
lm-eval's own keys, in the record and on each row (re-scoring reads them there)."""

from __future__ import annotations

import math
from typing import Any


def split_pipelines(samples: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The first pipeline's samples (all of them when there is one pipeline), and the others' by pipeline."""
    by_pipeline: dict[Any, list[dict[str, Any]]] = {}
    for sample in samples:
        by_pipeline.setdefault(sample.get("filter"), []).append(sample)
    if len(by_pipeline) <= 1:
        return list(samples), {}
    first, *others = by_pipeline
    return by_pipeline[first], {str(name): by_pipeline[name] for name in others}


def first_pipeline(samples: list[dict[str, Any]]) -> str | None:
    """The name of the pipeline whose metrics keep their plain names; None for a one-pipeline task."""
    names = list(dict.fromkeys(sample.get("filter") for sample in samples))
    return str(names[0]) if len(names) > 1 else None


def add_pipeline_metrics(rows: list[dict[str, Any]], others: dict[str, list[dict[str, Any]]]) -> None:
    """Each row gets the other pipelines' per-item metrics, as ``metric,pipeline``."""
    for pipeline, samples in others.items():
        by_doc = {sample.get("doc_id"): sample for sample in samples}
        for row in rows:
            sample = by_doc.get(row.get("doc_id")) or {}
            for metric in sample.get("metrics") or ():
                if isinstance(sample.get(metric), (int, float)):
                    row[f"{metric},{pipeline}"] = sample[metric]


def metrics_from_results(task_results: dict[str, Any], directions: dict[str, Any] | None,
                         first: str | None = None) -> dict[str, dict]:
    """lm-eval's metrics for one task, with the direction its metric_list gave where lower is better; with several
    pipelines, ``first``'s under their plain names and the others' under lm-eval's keys."""
    metrics: dict[str, dict[str, Any]] = {}
    for key, value in task_results.items():
        if "," not in key or key.startswith("alias"):
            continue
        name, pipeline = key.split(",", 1)
        if name.endswith("_stderr"):
            continue
        stderr = task_results.get(f"{name}_stderr,{pipeline}")
        label = name if first is None or pipeline == first else key
        metrics[label] = {"value": float(value),
                          "stderr": float(stderr) if isinstance(stderr, (int, float)) and not math.isnan(stderr)
                          else None}
        if (directions or {}).get(name) is False:
            metrics[label]["higher_is_better"] = False
    return metrics
