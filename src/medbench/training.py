"""Training: config -> trainer plugin -> checkpoint directories + manifests (medbench.engine scores them).

This module never names a method. A trainer (from the ``register_trainers`` hook) gets a TrainRequest holding
the model reference, the task and its own typed config, and returns the checkpoints it saved; :func:`train`
writes each checkpoint's manifest and the run's status.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


# Re-exported: plugins and tests build configs through medbench.training, the SDK's trainer module.
from medbench.trainer_options import (  # noqa: E402,F401
    COMMON_NAMES, _coerce, build_config, describe_options, option_flag, parse_plugin_args, read_config_file)


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
    return _launcher_number("RANK", "0", 0)


def world_size() -> int:
    return _launcher_number("WORLD_SIZE", "1", 1)


def _launcher_number(variable: str, default: str, least: int) -> int:
    """A launcher's variable; one left over from another shell (``WORLD_SIZE=abc``) is one line, not a traceback."""
    text = os.environ.get(variable, default)
    try:
        number = int(text)
    except ValueError:
        number = least - 1
    if number < least:
        raise MedbenchError(f"the environment variable {variable} is {text!r}, not a whole number {least} or more",
                            f"unset {variable} (accelerate and torchrun set it for the processes they launch)")
    return number


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
