"""The training engine: config -> trainer plugin -> checkpoint directories + manifests -> evaluation.

The engine never names a method. A trainer (from the ``register_trainers`` hook) gets a TrainRequest holding
the model reference, the task and its own typed config, and returns the checkpoints it saved. The engine
writes each checkpoint's manifest and scores every checkpoint into the leaderboard.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from medbench.errors import MedbenchError
from medbench.models import LoadOptions
from medbench.plugins import call_register_hook
from medbench.records import atomic_write_json, slug

MANIFEST_NAME = "medbench_manifest.json"


@dataclass
class TrainRequest:
    model_ref: str
    task: str
    output_dir: Path  # the run directory; checkpoints go under it
    config: Any  # an instance of the trainer's config_class
    seed: int = 1234
    load_options: LoadOptions = field(default_factory=LoadOptions)
    task_metadata: dict[str, Any] = field(default_factory=dict)
    # Set by a wrapping plugin (e.g. an ordering) to train on these examples instead of the task's training
    # split; None means the trainer loads them with medbench.trainingdata.
    examples: list[Any] | None = None
    # True: the trainer must feed examples in exactly this order (sequential sampler, no re-sorting packing).
    # False: the trainer shuffles with ``seed``.
    keep_order: bool = False

    def training_examples(self) -> list[Any]:
        from medbench.trainingdata import load_training_examples

        if self.examples is None:
            self.examples = load_training_examples(self.task, self.task_metadata or None)
        return self.examples


@dataclass
class CheckpointInfo:
    path: Path
    kind: str  # "adapter" (PEFT) or "model" (full HF model)
    step: int | None = None
    final: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)  # train metrics at this checkpoint
    data_hash: str | None = None
    parent: str | None = None  # the model it was trained or merged from, when not the request's model
    trainer_config: dict[str, Any] | None = None  # a wrapped trainer's own options (the request holds the wrapper's)


class Trainer(Protocol):
    name: str
    description: str
    config_class: type

    def train(self, request: TrainRequest) -> list[CheckpointInfo]: ...


def trainer_registry() -> dict[str, Trainer]:
    trainers: dict[str, Trainer] = {}

    def register_for(plugin: str):
        def register(trainer: Trainer) -> None:
            trainers.setdefault(trainer.name, trainer)

        return register

    call_register_hook("register_trainers", register_for)
    return trainers


def get_trainer(name: str) -> Trainer:
    trainers = trainer_registry()
    if name in trainers:
        return trainers[name]
    known = ", ".join(sorted(trainers)) or "none installed"
    close = difflib.get_close_matches(name, list(trainers), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise MedbenchError(f"unknown trainer plugin {name!r} (known: {known})",
                        f"{hint}pass one of the known names to --plugin, or install the plugin that provides it")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], key) if args else value
    if origin in (list, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else str
        return [_coerce(item, inner, key) for item in items]
    if not isinstance(value, str):
        return value
    try:
        if annotation is bool:
            lowered = value.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes")
        if annotation in (int, float):
            return annotation(value)
    except ValueError:
        raise MedbenchError(f"option {key}={value!r} is not a valid {annotation.__name__}",
                            f"pass a {annotation.__name__} value for --{key.replace('_', '-')}") from None
    return value


def build_config(config_class: type, file_values: dict[str, Any], cli_values: dict[str, Any], plugin: str) -> Any:
    """The trainer's typed config from a YAML file's values overlaid with command-line options."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    merged = {**file_values, **cli_values}
    unknown = [key for key in merged if key not in fields]
    if unknown:
        raise MedbenchError(f"trainer {plugin!r} has no option(s) {', '.join(unknown)}",
                            f"its options are: {', '.join(sorted(fields))}")
    values = {key: _coerce(value, hints.get(key, str), key) for key, value in merged.items()}
    try:
        return config_class(**values)
    except (TypeError, ValueError) as exc:
        raise MedbenchError(f"invalid options for trainer {plugin!r}: {exc}", "check the option values") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MedbenchError(f"config file {path} does not exist", "check the path given to --config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"config file {path} is not valid YAML{where}", "fix the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MedbenchError(f"config file {path} is not a mapping", "write the trainer options as key: value lines")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_plugin_args(args: list[str]) -> dict[str, Any]:
    """``--learning-rate 1e-4 --full`` -> {"learning_rate": "1e-4", "full": "true"} (values typed later)."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise MedbenchError(f"unexpected argument {arg!r}", "plugin options are written --name value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        options[key.replace("-", "_")] = value
        i += 1
    return options


def write_manifest(checkpoint: CheckpointInfo, request: TrainRequest, plugin: str, run_id: str) -> Path:
    from medbench.evaluation import versions

    manifest = {
        "run_id": run_id,
        "plugin": plugin,
        "parent_model": checkpoint.parent or request.model_ref,
        "task": request.task,
        "kind": checkpoint.kind,
        "step": checkpoint.step,
        "final": checkpoint.final,
        "config": dataclasses.asdict(request.config),
        **({"trainer_config": checkpoint.trainer_config} if checkpoint.trainer_config is not None else {}),
        "data_hash": checkpoint.data_hash,
        "seed": request.seed,
        "versions": versions(),
        "train_metrics": checkpoint.metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = Path(checkpoint.path) / MANIFEST_NAME
    atomic_write_json(path, manifest)
    return path


def read_manifest(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    path = Path(checkpoint_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def new_run_dir(root: Path, plugin: str, task: str, name: str | None = None) -> tuple[str, Path]:
    """A fresh run directory: ``root/name``, or ``root/<plugin>-<task>-<time>`` when no name is given."""
    if name:
        run_dir = Path(root) / slug(name)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise MedbenchError(f"run directory {run_dir} already holds a run",
                                "pass another --run-name, or move that directory away first")
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir.name, run_dir
    run_id = f"{slug(plugin)}-{slug(task)}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(root) / run_id
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(root) / f"{run_id}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir.name, run_dir


def train(plugin: str, request: TrainRequest, run_id: str) -> list[CheckpointInfo]:
    """Run one trainer and write a manifest into every checkpoint it returns."""
    trainer = get_trainer(plugin)
    try:
        checkpoints = trainer.train(request)
    except BaseException:
        # A run that failed before saving anything leaves no empty run directory behind.
        if Path(request.output_dir).is_dir() and not any(Path(request.output_dir).iterdir()):
            Path(request.output_dir).rmdir()
        raise
    if not checkpoints:
        raise MedbenchError(f"trainer {plugin!r} returned no checkpoints", "report this to the plugin's author")
    for checkpoint in checkpoints:
        write_manifest(checkpoint, request, plugin, run_id)
    return checkpoints
