"""Training: config -> trainer plugin -> checkpoint directories + manifests (medbench.engine scores them).

This module never names a method. A trainer (from the ``register_trainers`` hook) gets a TrainRequest holding
the model reference, the task and its own typed config, and returns the checkpoints it saved; :func:`train`
writes each checkpoint's manifest and the run's status.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from medbench.errors import MedbenchError
from medbench.models import LoadOptions, release_memory
from medbench.plugin_calls import plugin_call
from medbench.registries import named_registry, unknown_name
from medbench.records import atomic_write_json
from medbench.run_dirs import RUN_MANIFEST_NAME, start_run_manifest, update_run_manifest

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
    # A checkpoint of this run to continue from (`medbench train --resume`); the trainer restores its weights,
    # optimizer, scheduler and RNG state and carries on at its step. Only trainers with ``supports_resume``.
    resume_from: Path | None = None
    # Trackers the trainer's Hugging Face Trainer reports to (TrainingArguments.report_to; medbench.tracking): set by
    # medbench.engine, which also fixes the tracker runs they log into. A trainer without a Trainer ignores it.
    report_to: list[str] = field(default_factory=list)

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
    return named_registry("register_trainers", "trainer", ("name", "config_class", "train"))


def get_trainer(name: str) -> Trainer:
    trainers = trainer_registry()
    if name in trainers:
        return trainers[name]
    raise unknown_name("trainer plugin", name, trainers,
                       "pass one of the known names to --plugin, or install the plugin that provides it")


def option_flag(name: str) -> str:
    """A trainer option as users write it on the command line, the one spelling messages use: ``--max-steps``
    (config files and recipes take ``max_steps`` or ``max-steps`` alike)."""
    return "--" + name.replace("_", "-")


def describe_options(config_class: type) -> list[dict[str, str]]:
    """Each option of a trainer's config dataclass: its flag, type, default and the comment beside its field in the
    source (the plugin's own words, read as text: nothing is run), for `medbench train --plugin X --help`."""
    import inspect
    import re

    comments: dict[str, str] = {}
    for cls in reversed(config_class.__mro__):  # a subclass's comment wins over its base's
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        for match in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE):
            comments[match.group(1)] = match.group(2).strip()
    hints = typing.get_type_hints(config_class)
    described = []
    for option in dataclasses.fields(config_class):
        if option.default is not dataclasses.MISSING:
            default = option.default
        elif option.default_factory is not dataclasses.MISSING:
            default = option.default_factory()
        else:
            default = "(required)"
        kind = hints.get(option.name, str)
        kind_name = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        described.append({"flag": option_flag(option.name), "type": kind_name, "default": str(default),
                          "help": comments.get(option.name, "")})
    return described


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
    if (origin is dict or annotation is dict) and isinstance(value, str):
        return _mapping(value, key)
    if not isinstance(value, str):
        return _checked_number(value, annotation, key)
    try:
        if annotation is bool:
            lowered = value.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes")
        if annotation in (int, float):
            return _checked_number(annotation(value), annotation, key)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(annotation.__name__,
                                                                                  annotation.__name__)
        raise MedbenchError(f"{option_flag(key)} {value!r} is not {kind}",
                            f"pass {kind} to {option_flag(key)}") from None
    return value


def _checked_number(value: Any, annotation: Any, key: str) -> Any:
    """A number for an int / float option as the option means it: finite (a NaN learning rate passes every
    `<= 0` check and fails deep inside the optimizer), and whole for an integer option (YAML's `1.7`, `true`)."""
    if annotation not in (int, float) or not isinstance(value, (int, float)):
        return value
    kind = "an integer" if annotation is int else "a number"
    if isinstance(value, bool) or not math.isfinite(value) or (annotation is int and not float(value).is_integer()):
        raise MedbenchError(f"{option_flag(key)} {value!r} is not {'a finite number' if annotation is float else kind}",
                            f"pass {kind} to {option_flag(key)}")
    return int(value) if annotation is int else value


def _mapping(value: str, key: str) -> dict[str, Any]:
    """A mapping option typed on the command line: ``'{"max_steps": 1}'`` (JSON / YAML) or ``max_steps=1,lr=2e-4``;
    the values stay text for the receiving config's own coercion."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, dict):
            return {str(k): v for k, v in parsed.items()}
    else:
        pairs = [part.partition("=") for part in text.split(",") if part.strip()]
        if pairs and all(eq and name.strip() for name, eq, _ in pairs):
            return {name.strip().replace("-", "_"): raw.strip() for name, _, raw in pairs}
    raise MedbenchError(f"{option_flag(key)} {value!r} is not a mapping",
                        f"pass {option_flag(key)} name=value,name=value or a JSON object")


# Names users bring from TRL, transformers and other trainers' command lines, and what medbench's trainers call them.
COMMON_NAMES = {"lr": "learning_rate", "epochs": "num_epochs", "num_train_epochs": "num_epochs",
                "batch_size": "train_batch_size", "per_device_train_batch_size": "train_batch_size",
                "max_seq_length": "max_length", "lora_rank": "lora_r", "rank": "lora_r"}


def build_config(config_class: type, file_values: dict[str, Any], cli_values: dict[str, Any], plugin: str) -> Any:
    """The trainer's typed config from a YAML file's values overlaid with command-line options."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    merged = {str(key).replace("-", "_"): value for key, value in {**file_values, **cli_values}.items()}
    unknown = [key for key in merged if key not in fields]
    if unknown:
        import difflib

        close = [match for key in unknown
                 for match in ([COMMON_NAMES[key]] if COMMON_NAMES.get(key) in fields
                               else difflib.get_close_matches(key, fields, n=1, cutoff=0.75))]
        hint = f"did you mean {', '.join(option_flag(k) for k in close)}? " if close else ""
        if not close and "base_options" in fields:  # a trainer that wraps another (curriculum wraps sft)
            hint = f"the wrapped trainer's options go in --base-options {unknown[0]}=VALUE; "
        raise MedbenchError(f"trainer {plugin!r} has no option {', '.join(option_flag(k) for k in unknown)}",
                            f"{hint}`medbench train --plugin {plugin} --help` lists its options: "
                            f"{', '.join(option_flag(k) for k in sorted(fields))}")
    values = {key: _coerce(value, hints.get(key, str), key) for key, value in merged.items()}
    try:
        return config_class(**values)
    except (TypeError, ValueError) as exc:
        raise MedbenchError(f"invalid options for trainer {plugin!r}: {exc}", "check the option values") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    from medbench.records import read_regular_text
    from medbench.task_yaml import MAX_CONFIG_BYTES, check_expansion

    try:
        data = yaml.safe_load(read_regular_text(path, limit=MAX_CONFIG_BYTES))  # options are a few lines
        check_expansion(data, f"config file {path}")
    except FileNotFoundError:
        raise MedbenchError(f"config file {path} does not exist", "check the path given to --config") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MedbenchError(f"config file {path} is not valid YAML{where}", "fix the YAML syntax") from None
    except UnicodeDecodeError as exc:
        raise MedbenchError(f"config file {path} is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    except OSError as exc:
        raise MedbenchError(f"config file {path} cannot be read ({exc.strerror or exc})",
                            "give a readable YAML file to --config") from None
    except RecursionError:
        raise MedbenchError(f"config file {path} nests deeper than trainer options can",
                            "write the options as flat key: value lines") from None
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
        name = key.replace("-", "_")
        if options.get(name, value) != value:  # the last would silently win
            raise MedbenchError(f"--{key} is given twice, as {options[name]!r} and {value!r}", f"pass --{key} once")
        options[name] = value
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


def process_rank() -> int:
    """This process's rank under accelerate / torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_trainer(trainer: Trainer, request: TrainRequest) -> list[CheckpointInfo]:
    """The plugin's ``train()``: a crash inside it names the plugin and its package (medbench.plugins.plugin_call)."""
    with plugin_call(getattr(trainer, "plugin", None), f"trainer {trainer.name!r} train()"):
        checkpoints = trainer.train(request)
        # What it returned is the plugin's too: a wrong type is named here, not as a crash further on.
        if not isinstance(checkpoints, list) or not checkpoints:
            raise TypeError(f"returned {type(checkpoints).__name__} {str(checkpoints)[:60]!r}, not a non-empty "
                            "list of medbench.training.CheckpointInfo (one per saved checkpoint)")
        wrong = [c for c in checkpoints if not isinstance(c, CheckpointInfo)]
        if wrong:
            raise TypeError(f"returned a list holding {type(wrong[0]).__name__} {str(wrong[0])[:60]!r}, not "
                            "medbench.training.CheckpointInfo")
        return checkpoints


def train(plugin: str, request: TrainRequest, run_id: str) -> list[CheckpointInfo]:
    """Run one trainer and write a manifest into every checkpoint it returns.

    Under data parallelism (accelerate / torchrun) every rank trains; only rank 0 writes manifests, and the
    other ranks return their checkpoints without writing anything.

    The run directory's ``medbench_run.json`` is written first (what was asked for, status ``running``) and
    updated when the run ends: ``complete``, ``diverged`` (non-finite loss: the checkpoints saved before it are
    kept, with manifests), ``interrupted`` or ``failed``.
    """
    trainer = get_trainer(plugin)
    run_dir = Path(request.output_dir)
    if process_rank() != 0:
        checkpoints = run_trainer(trainer, request)
        release_memory()
        return checkpoints
    start_run_manifest(run_dir, plugin, request, run_id)
    try:
        checkpoints = run_trainer(trainer, request)
    except TrainingDiverged as exc:
        for checkpoint in exc.checkpoints:
            write_manifest(checkpoint, request, plugin, run_id)
        update_run_manifest(run_dir, status="diverged", failure=exc.failure(),
                            checkpoints=[Path(c.path).name for c in exc.checkpoints])
        raise exc.explained(run_dir, request) from None
    except BaseException as exc:
        leftovers = [p for p in run_dir.iterdir() if p.name != RUN_MANIFEST_NAME] if run_dir.is_dir() else []
        if run_dir.is_dir() and not leftovers and request.resume_from is None:
            # A run that failed before saving anything leaves no run directory behind.
            (run_dir / RUN_MANIFEST_NAME).unlink(missing_ok=True)
            run_dir.rmdir()
        elif run_dir.is_dir():
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            error = exc.one_line() if isinstance(exc, MedbenchError) else f"{type(exc).__name__}: {exc}"
            update_run_manifest(run_dir, status=status, failure={"error": " ".join(error.split())})
        raise
    release_memory()  # the trained model is saved: free it before its checkpoints are scored (a failed run: run_cell)
    ranks = checkpoints[-1].metrics.get("rank_weights_hashes") or []
    if ranks and len(set(ranks)) > 1:
        update_run_manifest(run_dir, status="failed", ranks=ranks,
                            failure={"error": "data-parallel ranks ended with different weights"})
        raise MedbenchError(f"the {len(ranks)} training processes ended with different weights ({', '.join(ranks)})",
                            "check that every process got the same model and options; run again with "
                            "--num-processes 1 to compare")
    for checkpoint in checkpoints:
        write_manifest(checkpoint, request, plugin, run_id)
    update_run_manifest(run_dir, status="complete", failure=None, checkpoints=[Path(c.path).name for c in checkpoints],
                        **({"world_size": len(ranks), "ranks": ranks} if ranks else {}))
    return checkpoints


# --- stopping on a non-finite loss (the callback that stops it: medbench.trainers.callbacks) --------------------------

class TrainingDiverged(MedbenchError):
    """The loss (or the weights after an optimizer step) became NaN or infinite; training stopped without saving."""

    def __init__(self, step: int, what: str, checkpoints: list[CheckpointInfo]):
        self.step, self.what, self.checkpoints = step, what, checkpoints
        super().__init__(f"training diverged at step {step}: {what}", "lower --learning-rate")

    def failure(self) -> dict[str, Any]:
        last = self.checkpoints[-1].path if self.checkpoints else None
        return {"reason": "non-finite loss", "step": self.step, "detail": self.what,
                "last_good_checkpoint": str(last) if last else None}

    def explained(self, run_dir: Path, request: TrainRequest) -> MedbenchError:
        last = self.checkpoints[-1].path if self.checkpoints else None
        kept = (f"stopped before saving it; last good checkpoint {last} is kept (not scored), failure recorded in "
                f"{Path(run_dir) / RUN_MANIFEST_NAME}") if last else \
            f"stopped before saving it; no checkpoint was saved before step {self.step}"
        rate = getattr(request.config, "learning_rate", None)
        fix = f"lower --learning-rate (this run: {rate:g})" if isinstance(rate, (int, float)) else \
            "lower --learning-rate"
        fix += " and start a new run, or check the training data for broken examples"
        if last:
            fix += f"; score the kept checkpoint with `medbench eval --model {last}`"
        error = MedbenchError(f"training diverged at step {self.step}: {self.what}; {kept}", fix)
        return error
