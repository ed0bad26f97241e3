"""Train, then score: the one path `medbench train` and sweeps share.

`medbench eval` scores a model (score_with_progress: medbench.evaluation.evaluate with progress); `medbench
train` trains a run and scores every checkpoint it saved; a sweep trains a cell's steps (each reused when already
done) and scores the checkpoints of its last step. Both go through :func:`score_checkpoints`, so every record of a trained checkpoint
says what trained it in one shape, ``extra["training"]`` (read back by medbench.leaderboard.training_info).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from medbench.errors import MedbenchError
from medbench.training import CheckpointInfo, TrainRequest, process_rank, train

# score(model reference, EvalConfig) -> records: score_with_progress below, or medbench.evaluation.evaluate.
Scorer = Callable[[str, Any], list[dict[str, Any]]]


@dataclass
class ScoredCheckpoint:
    """A checkpoint to score: where it is and what trained it (no plugin: the cell's untrained model)."""

    path: str
    step: int | None = None
    final: bool = True
    plugin: str | None = None
    run_id: str | None = None
    trainer_config: dict[str, Any] | None = None

    @classmethod
    def of(cls, checkpoint: CheckpointInfo, plugin: str, run_id: str, config: Any) -> "ScoredCheckpoint":
        trainer_config = checkpoint.trainer_config or (dataclasses.asdict(config)
                                                       if dataclasses.is_dataclass(config) else None)
        return cls(str(checkpoint.path), checkpoint.step, checkpoint.final, plugin, run_id, trainer_config)

    def training(self) -> dict[str, Any] | None:
        if not self.plugin:
            return None
        return {"plugin": self.plugin, "run_id": self.run_id, "checkpoint": self.path, "step": self.step,
                "final": self.final, "trainer_config": self.trainer_config}


def score_with_progress(model_ref: str | None, config: Any, load_options: Any = None,
                        loaded: Any = None, data_parallel: bool = False) -> list[dict[str, Any]]:
    """medbench.evaluation.evaluate with a progress bar per task (plain timestamped lines when piped): the scorer
    of `eval`, `train` and sweeps alike, so no scoring phase is silent."""
    from medbench.evaluation import evaluate
    from medbench.models import DEFAULT_MODEL
    from medbench.progress import new_progress

    with new_progress() as progress:
        bars: dict[str, Any] = {}

        def report(task: str, done: int, total: int) -> None:
            if task not in bars:
                bars[task] = progress.add_task(f"{config.label or model_ref or DEFAULT_MODEL} · {task}", total=total,
                                               status="")
            progress.update(bars[task], completed=done, total=total)

        return evaluate(model_ref, config, loaded=loaded, load_options=load_options, progress=report,
                        data_parallel=data_parallel)


def score_checkpoints(checkpoints: list[ScoredCheckpoint], config: Any, label: Callable[[ScoredCheckpoint], str],
                      score: Scorer, extra: dict[str, Any] | None = None,
                      report_to: list[str] | None = None) -> list[dict[str, Any]]:
    """Score each checkpoint with ``config`` (an EvalConfig, copied per checkpoint), labelled by ``label``; each
    record's ``extra`` holds ``extra`` and, for a trained checkpoint, ``training``. With ``report_to``, a trained
    checkpoint's scores also go to the tracker runs that trained it, at its step (medbench.tracking)."""
    from medbench.tracking import ScoreLogger

    records: list[dict[str, Any]] = []
    tracker_log = ScoreLogger(list(report_to or []))
    try:
        for position, checkpoint in enumerate(checkpoints):
            training = checkpoint.training()
            scored = dataclasses.replace(config, label=label(checkpoint),
                                         extra={**(extra or {}), **({"training": training} if training else {})})
            scored_records = score(checkpoint.path, scored)
            if training:  # a merge saves points, not steps: they are logged at 0, 1, ... in order
                step = checkpoint.step if checkpoint.step is not None else position
                tracker_log.log(Path(checkpoint.path).parent, step, scored_records)
            records += scored_records
    finally:
        tracker_log.close()
    return records


def train_tracked(plugin: str, request: TrainRequest, run_id: str, report_to: list[str] | None = None
                  ) -> list[CheckpointInfo]:
    """medbench.training.train, reporting to the trackers ``report_to`` names (medbench.tracking): their runs are
    fixed in the run directory first, so the Trainer's callbacks and the later scores log to the same run."""
    request.report_to = list(report_to or [])
    if not request.report_to or process_rank() != 0:  # the callbacks of other ranks log nothing
        return train(plugin, request, run_id)
    from medbench.tracking import start_tracking

    try:
        tracked = start_tracking(request.report_to, request.output_dir, run_id)
    except MedbenchError:
        run_dir = Path(request.output_dir)
        if run_dir.is_dir() and not any(run_dir.iterdir()):  # as a run that fails before saving anything
            run_dir.rmdir()
        raise
    with tracked.training():
        return train(plugin, request, run_id)


def train_and_score(plugin: str, request: TrainRequest, run_id: str, config: Any, score: Scorer,
                    label: Callable[[ScoredCheckpoint], str] | None = None, report_to: list[str] | None = None
                    ) -> tuple[list[CheckpointInfo], list[dict[str, Any]]]:
    """Train one run, then score every checkpoint it saved (on rank 0 only under data parallelism); with
    ``report_to``, the training metrics and the scores go to the same tracker runs."""
    checkpoints = train_tracked(plugin, request, run_id, report_to)
    if process_rank() != 0:  # every rank trains; rank 0 alone scores and writes
        return checkpoints, []
    label = label or (lambda c: f"{plugin}:{run_id}/{Path(c.path).name}")
    to_score = [ScoredCheckpoint.of(c, plugin, run_id, request.config) for c in checkpoints]
    return checkpoints, score_checkpoints(to_score, config, label, score, report_to=report_to)
