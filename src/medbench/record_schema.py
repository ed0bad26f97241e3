"""The record's schema, defined once: the typed :class:`Record` that evaluation builds, that
:func:`medbench.records.write_record` serialises, and that every reader (records, leaderboard, re-scoring) checks
a record.json against.

On disk a record is JSON (``Record.to_json``); ``Record.from_json`` checks a JSON object and gives the typed
record back. A field without a default must be present; ``X | None`` may be null; the few fields most records do
not have (judges, re-scoring, ...) are left out of the JSON when None. Keys the schema does not name are kept as written, in ``other``: newer writers and
backend plugins add some (a served model's ``server``, vLLM's ``parallel``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

SCHEMA_VERSION = 1

Number = float  # in the schema: an int or a float, never a bool
NON_EMPTY = {"record_key", "task.name", "model.label", "model.weights_hash"}
NON_NEGATIVE = {"n", "task.split_size", "model.parameters", "resumed_requests", "duration_s"}

Part = TypeVar("Part", bound="SchemaPart")


class RecordError(ValueError):
    """A record.json that is not a valid record; the message says what is wrong, in a few words."""


@dataclass
class SchemaPart:
    """A JSON object of the record: typed fields, plus the keys the schema does not name (``other``)."""

    @classmethod
    def from_json(cls: type[Part], data: Any, where: str = "") -> Part:
        """``data`` checked against this part of the schema and typed; RecordError naming what is wrong."""
        _check(data, cls, where)
        return _build(cls, data)

    @classmethod
    def of(cls: type[Part], data: dict[str, Any]) -> Part:
        """``data`` typed without checking: for the writer, whose record write_record checks as a whole."""
        return _build(cls, data)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.other)
        for spec in _fields(type(self)):
            value = _dump(getattr(self, spec.name))
            if value is None and spec.metadata.get("absent_when_none"):
                out.pop(spec.name, None)
                continue
            out[spec.name] = value
        return out


def _other() -> Any:
    return field(default_factory=dict, repr=False, compare=False, kw_only=True)


def _only_when_set() -> Any:
    """A field the JSON carries only when it has a value (most records have no judges, no re-scoring, ...)."""
    return field(default=None, metadata={"absent_when_none": True})


@dataclass
class MetricValue(SchemaPart):
    value: Number | None
    stderr: Number | None = None
    other: dict[str, Any] = _other()


@dataclass
class ModelInfo(SchemaPart):
    """What was scored. Backends add their own keys (kept in ``other``): a served model's server and ids."""

    label: str
    weights_hash: str  # the content hash records and request caches are keyed by (medbench.weights_identity)
    backend: str | None = None  # where it ran: in this process, a server, vLLM, a plugin's backend
    ref: str | None = None
    kind: str | None = None
    path: str | None = None
    base_ref: str | None = None  # an adapter's base model
    parameters: int | None = None
    other: dict[str, Any] = _other()


@dataclass
class ScoringInfo(SchemaPart):
    mode: str  # "loglikelihood" or "generate" (medbench.scoring)
    fewshot_rationales: bool = False
    rationale_field: str | None = _only_when_set()  # the document field the demonstrations' rationales came from
    other: dict[str, Any] = _other()


@dataclass
class TaskInfo(SchemaPart):
    name: str
    data_hash: str | None = None
    split: str | None = None
    num_fewshot: int | None = None
    split_size: int | None = None
    plugin: str | None = None
    version: Any = None  # the task's metadata.version, as its YAML spells it
    yaml: str | None = None
    config_hash: str | None = None  # the task's resolved configuration: a changed YAML is a new record
    fewshot_hash: str | None = _only_when_set()  # the demonstrations' pool of a few-shot run: a changed one rescores
    output_type: str | None = None
    scoring: ScoringInfo | None = None
    other: dict[str, Any] = _other()


@dataclass
class DataSource(SchemaPart):
    """Where a task's evaluated data came from: bundled with medbench, a user's file, the hub, or lm-eval."""

    kind: str
    name: str | None = None
    sha256: str | None = None
    revision: str | None = _only_when_set()  # a hub dataset's pinned revision
    description: str | None = None
    other: dict[str, Any] = _other()


@dataclass
class Record(SchemaPart):
    """One (checkpoint, task, scoring variant) scored: ``<board>/records/<model>/<task>/record.json``."""

    record_key: str  # the leaderboard column: task plus its variant (``medqa@gen@chat``)
    task: TaskInfo
    model: ModelInfo
    metrics: dict[str, MetricValue]
    primary_metric: str | None
    score: Number | None
    n: int
    stderr: Number | None = None
    schema: int | None = None  # SCHEMA_VERSION of the writer
    created: str | None = None
    samples_file: str | None = None
    seed: int | None = None
    config: dict[str, Any] | None = None  # the evaluation options (medbench.records.recorded_config)
    extra: dict[str, Any] | None = _only_when_set()  # what made the checkpoint (a training run's plugin, step, config)
    versions: dict[str, Any] | None = None
    data_source: DataSource | None = None
    judges: dict[str, dict[str, Any]] | None = _only_when_set()  # per judge: its plugin, model, method, rubric
    generation: dict[str, Any] | None = _only_when_set()  # what generating tasks ran with (medbench.generation)
    resumed_requests: int | None = _only_when_set()  # requests served from a killed run's request cache
    duration_s: Number | None = None
    rescored: str | None = _only_when_set()  # when medbench leaderboard --rescore last recomputed the metrics
    rescore_kept: list[str] | None = _only_when_set()  # metrics re-scoring could not recompute and kept
    other: dict[str, Any] = _other()


MAX_DEPTH = 64  # JSON nesting no writer produces; deeper would overflow the recursive readers (the page's data)
_SURROGATE = re.compile("[\ud800-\udfff]")


def sane_json(value: Any, depth: int = 0) -> Any:
    """Parsed JSON (a record, a samples row) as every reader can take it: NaN and infinities become None (NaN is
    what writers put for no value), a lone surrogate (``"\\ud800"``: valid JSON, not encodable text) becomes
    U+FFFD; RecordError for an integer no float can hold or nesting deeper than MAX_DEPTH."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            digits = len(str(abs(value)))
            raise RecordError(f"holds a number of {digits} digits, too large to compare or plot") from None
        return value
    if isinstance(value, (dict, list)) and depth >= MAX_DEPTH:
        raise RecordError(f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {sane_json(k): sane_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [sane_json(v, depth + 1) for v in value]
    return value


# Metrics that are shares, 0 to 1 (a normal-approximation CI of one is clipped to that range; a record holding one
# outside it is damaged), and name prefixes of such metrics (pass@k, per_label_f1:nurse).
PROPORTIONS = {"acc", "acc_norm", "exact_match", "accuracy", "f1", "macro_f1", "micro_f1", "auroc", "precision",
               "recall"}
PROPORTION_PREFIXES = ("pass@", "per_label_f1:")


def is_proportion(metric: str) -> bool:
    """Whether ``metric`` is a share between 0 and 1 (accuracy, F1, AUROC, pass@k, ...)."""
    return metric in PROPORTIONS or metric.startswith(PROPORTION_PREFIXES)


def validate_record(data: Any) -> dict[str, Any]:
    """``data`` itself when it is a valid record (see Record); RecordError naming what is wrong otherwise."""
    if not isinstance(data, dict):
        raise RecordError(f"{json_type_name(data)}, not a record object")
    _check(data, Record, "")
    _check_consistent(data)
    return data


def _finite_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _check_consistent(data: dict[str, Any]) -> None:
    """A record's fields agree: writers set ``score`` to its primary metric's value, and a share lies in 0-1.
    One that disagrees was edited or forged, and would be ranked on a number its own metrics contradict."""
    metrics, primary = data["metrics"], data["primary_metric"]
    if primary is not None:
        if primary not in metrics:
            raise RecordError(f"primary_metric {_shown(primary)} is not one of its metrics "
                              f"({_shown(sorted(metrics))})")
        score, value = _finite_or_none(data["score"]), _finite_or_none(metrics[primary]["value"])
        if (score is None) != (value is None) or (score is not None and not math.isclose(score, value, rel_tol=1e-9,
                                                                                           abs_tol=1e-12)):
            raise RecordError(f"score {_shown(data['score'])} is not its primary metric {_shown(primary)}'s value "
                              f"{_shown(metrics[primary]['value'])}")
    for name, metric in metrics.items():
        value = _finite_or_none(metric["value"])
        if value is not None and is_proportion(name) and not -1e-9 <= value <= 1 + 1e-9:
            raise RecordError(f"metric {_shown(name)} is {_shown(value)}, but it is a share between 0 and 1")


# ------------------------------------------------------------------------------------------- checking


def json_type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


@functools.cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


@functools.cache
def _fields(schema: type) -> tuple[dataclasses.Field, ...]:
    return tuple(spec for spec in dataclasses.fields(schema) if spec.name != "other")


def _unwrap(hint: Any) -> Any:
    """``X | None`` -> X (the schema unions only with None)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return options[0] if len(options) == 1 else hint
    return hint


def _check(value: Any, hint: Any, where: str) -> None:
    """Raise RecordError when ``value`` does not match the type ``hint`` (from the dataclasses above)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return
        hint = _unwrap(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecordError(f"{where} is {json_type_name(value)}, not an object")
        for spec in _fields(hint):
            inner = f"{where}.{spec.name}" if where else spec.name
            if spec.name not in value:
                if spec.default is dataclasses.MISSING:
                    raise RecordError(f"{inner} is missing")
                continue
            _check(value[spec.name], _hints(hint)[spec.name], inner)
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where} is {json_type_name(value)}, not an object")
        if args and args[1] is not Any:
            for key, item in value.items():
                _check(item, args[1], f"{where}[{key!r}]")
        return
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where} is {json_type_name(value)}, not a list")
        for number, item in enumerate(value):
            _check(item, args[0], f"{where}[{number}]")
        return
    if hint is Number:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"{where} is {_shown(value)} ({json_type_name(value)}), not a number")
        if where in NON_NEGATIVE and value < 0:
            raise RecordError(f"{where} is {value}, below 0")
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise RecordError(f"{where} is {_shown(value)} ({json_type_name(value)}), not true or false")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"{where} is {_shown(value)} ({json_type_name(value)}), not a whole number")
        if where in NON_NEGATIVE and value < 0:
            raise RecordError(f"{where} is {value}, below 0")
        return
    if hint is str:
        if not isinstance(value, str):
            raise RecordError(f"{where} is {_shown(value)} ({json_type_name(value)}), not a string")
        if where in NON_EMPTY and not value.strip():
            raise RecordError(f"{where} is empty")
        return
    raise TypeError(f"the record schema uses an unsupported type {hint!r} at {where}")  # a bug in this module


# ------------------------------------------------------------------------------------------- typing and dumping


def _build(schema: type, data: dict[str, Any]) -> Any:
    """A checked JSON object as the dataclass ``schema``; nested parts typed too."""
    names = {spec.name for spec in _fields(schema)}
    values = {name: _typed(data[name], _hints(schema)[name]) for name in names if name in data}
    return schema(**values, other={k: v for k, v in data.items() if k not in names})


def _typed(value: Any, hint: Any) -> Any:
    hint = _unwrap(hint)
    if value is None:
        return None
    if isinstance(hint, type) and issubclass(hint, SchemaPart):
        return _build(hint, value)
    if typing.get_origin(hint) is dict:
        inner = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return {key: _typed(item, inner) for key, item in value.items()}
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, SchemaPart):
        return value.to_json()
    if isinstance(value, dict):
        return {key: _dump(item) for key, item in value.items()}
    return value
