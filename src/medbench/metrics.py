"""Metrics registered through the ``register_metrics`` hook, computed over saved per-sample predictions.

Because they read only ``samples.jsonl``, a record can be re-scored without running the model again.
A metric either compares labels (``fn(references, predictions)``, the default) or reads whole samples
(``needs="samples"``: ``fn(samples)``, for metrics such as AUROC that need the per-choice log-likelihoods).
It returns a float, or a mapping of sub-names to floats (per-label F1 -> ``per_label_f1:nurse``...).
"""

from __future__ import annotations

import hashlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from medbench.errors import MedbenchError
from medbench.plugin_calls import plugin_call, plugin_callable
from medbench.registries import call_register_hook, claim

METRIC_INPUTS = ("labels", "samples")


@dataclass
class Metric:
    name: str
    fn: Callable[..., float | Mapping[str, float]]
    higher_is_better: bool = True
    description: str = ""
    plugin: str = ""
    needs: str = "labels"
    # Optional fast form for the leaderboard's bootstrap and permutation tests: resampled(weights, references,
    # predictions) -> the metric under each row of item weights (a k x n array), all rows at once.
    resampled: Callable[..., Any] | None = None

    def compute(self, samples: list[dict[str, Any]]) -> dict[str, float]:
        if self.needs == "samples":
            value = self.fn(samples)
        else:
            value = self.fn([s.get("gold") for s in samples], [s.get("pred") for s in samples])
        # A value that is no number is the plugin's fault: named like an exception it raised.
        with plugin_call(self.plugin, f"metric {self.name!r}"):
            if isinstance(value, Mapping):
                return {f"{self.name}:{key}": _as_number(v) for key, v in value.items()}
            return {self.name: _as_number(value)}


def _as_number(value: Any) -> float:
    if not hasattr(value, "__float__"):  # numbers, numpy scalars and 0-d arrays have it; "0.5" does not
        raise TypeError(f"returned {value!r} ({type(value).__name__}), not a number")
    return float(value)


def metric_registry() -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    owners: dict[str, str] = {}

    def register_for(plugin: str):
        def register(name, fn, higher_is_better=True, description="", needs="labels", resampled=None):
            if needs not in METRIC_INPUTS:
                raise ValueError(f"metric {name!r}: needs must be one of {METRIC_INPUTS}, got {needs!r}")
            # plugin_callable: a metric that raises names its plugin and package (never a silent skip).
            if not claim(owners, "metric", name, plugin):
                return
            fast = plugin_callable(plugin, f"metric {name!r} (resampled)", resampled) if resampled else None
            metrics[name] = Metric(name, plugin_callable(plugin, f"metric {name!r}", fn), higher_is_better,
                                   description, plugin, needs, fast)

        return register

    call_register_hook("register_metrics", register_for)
    return metrics


def get_metric(name: str, registry: dict[str, Metric] | None = None) -> Metric:
    registry = registry if registry is not None else metric_registry()
    if name not in registry:
        raise MedbenchError(f"unknown metric {name!r}",
                            f"use one of {', '.join(sorted(registry))}, or install the plugin that provides it")
    return registry[name]


def metric_code(names: list[str], registry: dict[str, Metric]) -> dict[str, str]:
    """Which code computes each named metric (its plugin and a hash of its function's source file), recorded with
    the library versions: a plugin whose metric changed scores again rather than serve its old value."""
    out = {}
    for name in names:
        metric = registry.get(name)
        if metric is None:
            continue
        try:
            source = Path(inspect.getfile(inspect.unwrap(metric.fn))).read_bytes()
        except (TypeError, OSError):  # a builtin or a function made at run time: its text stands in
            source = repr(metric.fn).encode()
        out[f"metric:{name}"] = f"{metric.plugin or '?'}@{hashlib.sha256(source).hexdigest()[:16]}"
    return out


def score_samples(names: list[str], samples: list[dict[str, Any]],
                  registry: dict[str, Metric] | None = None) -> dict[str, float]:
    """Every named metric over ``samples``; NaN results (a metric that does not apply) are left out."""
    registry = registry if registry is not None else metric_registry()
    out: dict[str, float] = {}
    for name in names:
        for key, value in get_metric(name, registry).compute(samples).items():
            if not math.isnan(value):
                out[key] = value
    return out
