"""Metrics registered through the ``register_metrics`` hook, computed over saved per-sample predictions.

Because they read only ``samples.jsonl`` (each sample's ``pred`` and ``gold``), a record can be re-scored
without running the model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.plugins import call_register_hook


@dataclass
class Metric:
    name: str
    fn: Callable[[list[Any], list[Any]], float]
    higher_is_better: bool = True
    description: str = ""
    plugin: str = ""


def metric_registry() -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}

    def register_for(plugin: str):
        def register(name, fn, higher_is_better=True, description=""):
            metrics.setdefault(name, Metric(name, fn, higher_is_better, description, plugin))

        return register

    call_register_hook("register_metrics", register_for)
    return metrics


def get_metric(name: str, registry: dict[str, Metric] | None = None) -> Metric:
    registry = registry if registry is not None else metric_registry()
    if name not in registry:
        raise MedbenchError(f"unknown metric {name!r}",
                            f"use one of {', '.join(sorted(registry))}, or install the plugin that provides it")
    return registry[name]


def score_samples(names: list[str], samples: list[dict[str, Any]],
                  registry: dict[str, Metric] | None = None) -> dict[str, float]:
    registry = registry if registry is not None else metric_registry()
    refs = [s["gold"] for s in samples]
    preds = [s["pred"] for s in samples]
    return {name: float(get_metric(name, registry).fn(refs, preds)) for name in names}
