"""LLM-as-judge scorers from the ``register_judges`` hook, run over a generation task's saved samples.

A judge's model can run on any backend (``--judge-model openai:NAME --judge-base-url URL``; see
medbench.backends): the options carry ``model``, ``base_url`` and the backend's options. A task's own rubric
(``metadata.judge_rubric``) reaches the judge as option ``rubric``. A task lists the judges it wants in ``metadata.judges``; ``medbench eval --judge NAME`` adds one to every
generation task. A judge's scores land in the record as metric ``judge:NAME`` (mean, with its standard
error) and per sample, so the leaderboard can compare them like any other metric.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.plugin_calls import plugin_call, plugin_label
from medbench.registries import named_registry, unknown_name


def judge_registry() -> dict[str, Any]:
    return named_registry("register_judges", "judge", ("name", "score"))


def get_judge(name: str, registry: dict[str, Any] | None = None) -> Any:
    registry = registry if registry is not None else judge_registry()
    if name not in registry:
        raise unknown_name("judge", name, registry, "pass --judge with a known name, or install its plugin")
    return registry[name]


def judges_for(task_names: list[str], registry: Any, extra: list[str], mode: str = "loglikelihood",
               options: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Judges per task: the task's ``metadata.judges`` plus ``extra`` for the tasks scored by generation (a
    multiple-choice task too, under ``mode`` generate: its answers are free text). Checked up front: with
    ``options``, a judge that can check its settings (``check(options)``: its model resolves) does so now, not
    after minutes of generation."""
    from medbench.scoring import scored_output_type

    available = judge_registry() if extra or any(registry.get(n).metadata.get("judges") for n in task_names) else {}
    for judge in extra:
        get_judge(judge, available)
    out: dict[str, list[str]] = {}
    for name in task_names:
        entry = registry.get(name)
        wanted = list(entry.metadata.get("judges") or [])
        if scored_output_type(entry.config, mode) == "generate_until":
            wanted += [j for j in extra if j not in wanted]
        for judge in wanted:
            get_judge(judge, available)
        if wanted:
            out[name] = wanted
        for judge in wanted if options is not None else []:
            found = get_judge(judge, available)
            if hasattr(found, "check"):
                with plugin_call(found.plugin, f"judge {judge!r} check()"):
                    found.check(judge_options_for(entry, options))
    return out


def judge_options_for(entry: Any, options: dict[str, str]) -> dict[str, str]:
    """The user's judge options, plus the task's rubric (``metadata.judge_rubric``) unless the user gave one."""
    rubric = entry.metadata.get("judge_rubric")
    return {**({"rubric": " ".join(str(rubric).split())} if rubric else {}), **options}


def describe_judge(name: str, options: dict[str, str]) -> dict[str, Any]:
    """What the record says about a judge: its plugin and, where the judge tells (``describe(options)``), the model
    that judged, the method and the rubric."""
    judge = get_judge(name)
    described: dict[str, Any] = {"name": name, "plugin": judge.plugin}
    if hasattr(judge, "describe"):
        with plugin_call(judge.plugin, f"judge {name!r} describe()"):
            described.update(judge.describe(dict(options)) or {})
    return described


def run_judge(name: str, samples: list[dict[str, Any]], options: dict[str, str],
              progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float | None]]:
    """Score every sample with judge ``name``; write ``judge:NAME`` into each sample and return the metric."""
    judge = get_judge(name)
    items = [{"prompt": s.get("prompt") or "", "reference": s.get("gold"),
              "prediction": s.get("response") or s.get("pred") or ""} for s in samples]
    if progress:
        progress(f"judge:{name}", 0, len(items))
    with plugin_call(judge.plugin, f"judge {name!r} score()"):
        # Converted here, so a score that is no number is blamed on the judge too.
        scores = [None if score is None else float(score) for score in judge.score(items, dict(options))]
    if len(scores) != len(items):
        raise MedbenchError(f"judge {name!r} of {plugin_label(judge.plugin)} returned {len(scores)} scores for "
                            f"{len(items)} samples", "fix the judge's score() to return one score per item")
    key = f"judge:{name}"
    for sample, score in zip(samples, scores):
        sample[key] = score
    if progress:
        progress(f"judge:{name}", len(items), len(items))
    valid = [s for s in scores if s is not None and not math.isnan(s)]
    if not valid:
        return {key: {"value": float("nan"), "stderr": None}}
    mean = sum(valid) / len(valid)
    stderr = (math.sqrt(sum((v - mean) ** 2 for v in valid) / (len(valid) - 1)) / math.sqrt(len(valid))
              if len(valid) > 1 else None)
    return {key: {"value": mean, "stderr": stderr}}


def run_task_judges(names: list[str], entry: Any, samples: list[dict[str, Any]], options: dict[str, str],
                    progress: Callable[[str, int, int], None] | None = None
                    ) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, Any]]]:
    """Every judge of one task over its samples: (metrics, what each judge was) for the record."""
    metrics: dict[str, dict[str, float | None]] = {}
    judged: dict[str, dict[str, Any]] = {}
    for name in names:
        task_options = judge_options_for(entry, options)
        metrics.update(run_judge(name, samples, task_options, progress=progress))
        judged[name] = describe_judge(name, task_options)
    return metrics, judged
