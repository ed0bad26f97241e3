"""A task YAML's generation settings and filters, checked before any model loads. lm-eval hands them to
model.generate and its filters as written: `num_beams: 1000000` exhausted memory (the process was killed),
`take_first_k` with `k: -5` wrote a record of NaN scores, and a wrong type failed only after the model had scored."""

from __future__ import annotations

import math
from typing import Any

from medbench.console import short_repr
from medbench.errors import MedbenchError

MAX_BEAMS = 64  # memory grows with beams x batch x length; lm-eval's own tasks use at most 10
MAX_FILTER_K = 1000  # take_first_k keeps k of an item's repeats, which medbench bounds the same way


def _whole(low: int, high: int | None = None) -> Any:
    def ok(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= (high or value)
    return ok, f"a whole number from {low}" + (f" to {high}" if high else " up")


def _real(low: float, high: float, open_low: bool = False) -> Any:
    def ok(value: Any) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and (low < value if open_low else low <= value) and value <= high)
    if high == math.inf:
        return ok, "a number" if low == -math.inf else f"a number {'above' if open_low else 'of at least'} {low:g}"
    return ok, f"a number in {'(' if open_low else '['}{low:g}, {high:g}]"


_FLAG = (lambda value: isinstance(value, bool), "true or false")
_STOPS = (lambda value: isinstance(value, str) or (isinstance(value, list)
                                                   and all(isinstance(stop, str) for stop in value)),
          "a stop sequence or a list of them")
_GENERATION = {"max_gen_toks": _whole(1), "max_new_tokens": _whole(1), "top_k": _whole(0),
               "num_beams": _whole(1, MAX_BEAMS), "no_repeat_ngram_size": _whole(0), "temperature": _real(0, math.inf),
               "top_p": _real(0, 1, True),
               "min_p": _real(0, 1), "typical_p": _real(0, 1, True), "repetition_penalty": _real(0, math.inf, True),
               "length_penalty": _real(-math.inf, math.inf), "do_sample": _FLAG, "until": _STOPS,
               "early_stopping": (lambda value: isinstance(value, bool) or value == "never", "true, false or never")}


# The types lm-eval reads each template field as; any other ends in a bare TypeError while the task is built.
_FIELDS = {"doc_to_text": ((str, int), "a template, a field name or an index"),
           "doc_to_target": ((str, int, list), "a template, a field name, an index or a list of them"),
           "doc_to_choice": ((str, list, dict), "a template, a field name, or a list or mapping of choices"),
           "description": ((str,), "text"), "target_delimiter": ((str,), "text"), "fewshot_delimiter": ((str,), "text")}


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or value.startswith("!function "))


def check_task_settings(entry: Any) -> None:
    """The generation_kwargs and filter_list of ``entry``'s config (and of a group's inline tasks)."""
    configs = [("", entry.config)]
    members = entry.config.get("task")
    if isinstance(members, list):
        configs += [(f"task[{i}].", member) for i, member in enumerate(members) if isinstance(member, dict)]
    for where, config in configs:
        _check_fields(entry, where, config)
        _check_generation(entry, where, config.get("generation_kwargs"))
        _check_filters(entry, where, config.get("filter_list"))


def _refuse(entry: Any, key: str, value: Any, should: str, optional: bool = True) -> MedbenchError:
    return MedbenchError(f"task {entry.name!r} ({entry.path}) sets {key}: {short_repr(value)}, not {should}",
                         f"write {key} as {should}" + (", or leave it out" if optional else ""))


def _check_fields(entry: Any, where: str, config: dict[str, Any]) -> None:
    for key, (types, should) in _FIELDS.items():
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):  # !!binary, !!set, ...
            raise _refuse(entry, f"{where}{key}", value, should)
    if config.get("output_type") == "multiple_choice" and "doc_to_choice" in config and config["doc_to_choice"] is None:
        raise _refuse(entry, f"{where}doc_to_choice", None, _FIELDS["doc_to_choice"][1], optional=False)


def _check_generation(entry: Any, where: str, settings: Any) -> None:
    if not isinstance(settings, dict):
        return
    for key, value in settings.items():
        check = _GENERATION.get(str(key))
        if check is not None and value is not None and not _templated(value) and not check[0](value):
            raise _refuse(entry, f"{where}generation_kwargs.{key}", value, check[1])


def _check_filters(entry: Any, where: str, pipelines: Any) -> None:
    if not isinstance(pipelines, list):
        return
    for i, pipeline in enumerate(pipelines):
        steps = pipeline.get("filter") if isinstance(pipeline, dict) else None
        for j, step in enumerate(steps if isinstance(steps, list) else []):
            if not isinstance(step, dict):
                continue
            key = f"{where}filter_list[{i}].filter[{j}]"
            function = step.get("function")
            if function == "custom" and not _templated(step.get("filter_fn")):
                raise _refuse(entry, f"{key}.filter_fn", step.get("filter_fn"),
                              "a function: `!function module.name`, from a folder you trust")
            if function == "take_first_k" and not _whole(1, MAX_FILTER_K)[0](step.get("k")):
                raise _refuse(entry, f"{key}.k", step.get("k"), _whole(1, MAX_FILTER_K)[1])
