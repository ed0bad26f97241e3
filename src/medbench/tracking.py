"""Experiment tracking (`--report-to tensorboard,mlflow,wandb`): training metrics go through the Hugging Face
Trainer's own integrations (TensorBoardCallback, MLflowCallback, WandbCallback), and the scores of every checkpoint
medbench scores are logged to the same tracker run at that checkpoint's step, as ``eval/<column>/<metric>``.

A run's tracker identity (the TensorBoard folder, the MLflow run id, the wandb run id) is fixed before training and
kept in the run directory (``medbench_tracking.json``), so the scores, a resumed run and a sweep step reused by a
later cell all land in the run that trained it. The Trainer's callbacks find it through the environment variables
they read (TENSORBOARD_LOGGING_DIR, MLFLOW_RUN_ID, WANDB_RUN_ID), set only while the run trains.

Where runs go is each tracker's own setting: TensorBoard writes ``<run>/tensorboard``; MLflow uses
MLFLOW_TRACKING_URI (else its default store) and MLFLOW_EXPERIMENT_NAME (else ``medbench``); wandb uses
WANDB_PROJECT (else ``medbench``), WANDB_MODE (``offline`` works without an account) and keeps its files in the run
directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from medbench.errors import MedbenchError

# tracker -> the module it needs (installed by the pip extra medbench[<tracker>])
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
TRACKING_FILE = "medbench_tracking.json"
DEFAULT_PROJECT = "medbench"  # MLflow experiment / wandb project when the environment names none


def parse_report_to(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"tensorboard,mlflow"`` (or a list) -> the trackers, checked: a known name whose package is installed.
    ``None``, ``""`` and ``"none"`` mean no tracking."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    if names == ["none"]:
        return []
    known = ", ".join(TRACKERS)
    for name in names:
        if name not in TRACKERS:
            raise MedbenchError(f"--report-to {name!r} is not a tracker medbench reports to",
                                f"pass one or more of {known} (comma-separated), or none")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise MedbenchError(f"--report-to {name} needs the {TRACKERS[name]} package, which is not installed",
                                f"pip install 'medbench[{name}]', or drop {name} from --report-to")
    return list(dict.fromkeys(names))


@dataclass
class TrackedRun:
    """One training run's identity in each tracker it reports to (saved as ``medbench_tracking.json``)."""

    run_dir: str
    name: str
    trackers: list[str] = field(default_factory=list)
    tensorboard_dir: str | None = None
    mlflow: dict[str, str] | None = None  # tracking_uri, experiment_id, run_id
    wandb: dict[str, str] | None = None  # id, project, dir

    def save(self) -> None:
        from medbench.records import atomic_write_json

        atomic_write_json(Path(self.run_dir) / TRACKING_FILE, asdict(self))

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """While the run trains: the variables the Trainer's callbacks read to log into this run."""
        variables = {}
        if self.tensorboard_dir:
            variables["TENSORBOARD_LOGGING_DIR"] = self.tensorboard_dir
        if self.mlflow:
            variables.update(MLFLOW_TRACKING_URI=self.mlflow["tracking_uri"], MLFLOW_RUN_ID=self.mlflow["run_id"])
        if self.wandb:
            variables.update(WANDB_RUN_ID=self.wandb["id"], WANDB_RESUME="allow", WANDB_PROJECT=self.wandb["project"],
                             WANDB_DIR=self.wandb["dir"])
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._end_training_runs(failed)

    def _end_training_runs(self, failed: bool) -> None:
        """The callbacks leave a wandb run open, and an MLflow run when training raised: close ours, so the next
        run in this process (a sweep's next step) starts its own."""
        import sys

        if self.wandb and "wandb" in sys.modules:
            wandb = sys.modules["wandb"]
            if wandb.run is not None and wandb.run.id == self.wandb["id"]:
                wandb.finish(exit_code=1 if failed else 0)
        if self.mlflow and "mlflow" in sys.modules:
            mlflow = sys.modules["mlflow"]
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.mlflow["run_id"]:
                mlflow.end_run("FAILED" if failed else "FINISHED")
            elif failed:
                _mlflow_client(self.mlflow["tracking_uri"]).set_terminated(self.mlflow["run_id"], "FAILED")


def read_tracking(run_dir: str | Path) -> TrackedRun | None:
    """The tracker identity saved in a run directory, or None for a run that reported nowhere."""
    from medbench.run_dirs import read_state_json

    path = Path(run_dir) / TRACKING_FILE
    try:
        return TrackedRun(**read_state_json(path))  # never blocks on a FIFO in its place
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise MedbenchError(f"tracking file {path} is unreadable ({exc})",
                            "delete it to start new tracker runs, or restore it from a backup") from None


def start_tracking(trackers: list[str], run_dir: str | Path, name: str) -> TrackedRun:
    """The run's tracker identity: the one saved in ``run_dir`` (a resumed run) with any new tracker added."""
    run_dir = Path(run_dir).resolve()
    tracked = read_tracking(run_dir) or TrackedRun(run_dir=str(run_dir), name=name)
    for tracker in trackers:
        if tracker == "tensorboard" and not tracked.tensorboard_dir:
            tracked.tensorboard_dir = str(run_dir / "tensorboard")
        elif tracker == "mlflow" and not tracked.mlflow:
            tracked.mlflow = _new_mlflow_run(name, run_dir)
        elif tracker == "wandb" and not tracked.wandb:
            import secrets

            tracked.wandb = {"id": secrets.token_hex(6), "project": os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
                             "dir": str(run_dir)}
    tracked.trackers = list(dict.fromkeys([*tracked.trackers, *trackers]))
    tracked.save()
    return tracked


def _mlflow_client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _new_mlflow_run(name: str, run_dir: Path) -> dict[str, str]:
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = mlflow.get_tracking_uri()  # MLFLOW_TRACKING_URI, else MLflow's default store
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
    try:
        client = _mlflow_client(uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name=name, tags={"medbench.run_dir": str(run_dir)})
    except (MlflowException, ImportError, OSError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise MedbenchError(f"MLflow cannot use the tracking store {uri} ({reason})",
                            "set MLFLOW_TRACKING_URI to a tracking server (http://...), or to sqlite:///mlflow.db with "
                            "the full mlflow package (pip install 'medbench[mlflow]'), or to file:./mlruns with "
                            "MLFLOW_ALLOW_FILE_STORE=true") from None
    return {"tracking_uri": uri, "experiment_id": experiment_id, "run_id": run.info.run_id}


def score_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """A checkpoint's records as tracker metrics: ``eval/<column>/<metric>`` for every numeric metric."""
    metrics = {}
    for record in records:
        for metric, entry in (record.get("metrics") or {}).items():
            value = entry.get("value") if isinstance(entry, dict) else entry
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"eval/{record['record_key']}/{metric}"] = float(value)
    return metrics


class ScoreLogger:
    """Logs scored checkpoints to the tracker runs that trained them (the ``trackers`` asked for, among those the
    run reported to); a checkpoint outside a tracked run is skipped."""

    def __init__(self, trackers: list[str]):
        self.trackers = trackers
        self._runs: dict[str, TrackedRun | None] = {}
        self._wandb_runs: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}  # TensorBoard folder -> SummaryWriter

    def log(self, run_dir: str | Path, step: int, records: list[dict[str, Any]]) -> None:
        if not self.trackers:
            return
        key = str(Path(run_dir).resolve())
        if key not in self._runs:
            self._runs[key] = read_tracking(key)
        tracked, metrics = self._runs[key], score_metrics(records)
        if tracked is None or not metrics:
            return
        wanted = set(self.trackers) & set(tracked.trackers)
        if "tensorboard" in wanted and tracked.tensorboard_dir:
            writer = self._writer(tracked.tensorboard_dir)
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)
            writer.flush()
        if "mlflow" in wanted and tracked.mlflow:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            # MLflow takes letters, digits and _-. :/ in a metric name (as the Trainer's callback sanitises them)
            batch = [Metric(re.sub(r"[^0-9A-Za-z_\-. :/]", "_", name), value, now, step)
                     for name, value in metrics.items()]
            _mlflow_client(tracked.mlflow["tracking_uri"]).log_batch(tracked.mlflow["run_id"], metrics=batch)
        if "wandb" in wanted and tracked.wandb:
            # the Trainer's x-axis is train/global_step, so a step logged after training ended still lands at its step
            self._wandb_run(tracked).log({**metrics, "train/global_step": step})

    def _writer(self, directory: str) -> Any:
        if directory not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[directory] = SummaryWriter(log_dir=directory)
        return self._writers[directory]

    def _wandb_run(self, tracked: TrackedRun) -> Any:
        if tracked.wandb["id"] not in self._wandb_runs:
            import wandb

            run = wandb.init(id=tracked.wandb["id"], project=tracked.wandb["project"], dir=tracked.wandb["dir"],
                             name=tracked.name, resume="allow")
            run.define_metric("train/global_step")
            run.define_metric("*", step_metric="train/global_step", step_sync=True)
            self._wandb_runs[tracked.wandb["id"]] = run
        return self._wandb_runs[tracked.wandb["id"]]

    def close(self) -> None:
        """Finish what scoring opened; an MLflow run trained by a trainer without the callback (a merge) is ended."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        for run in self._wandb_runs.values():
            run.finish()
        self._wandb_runs.clear()
        for tracked in filter(None, self._runs.values()):
            if tracked.mlflow and "mlflow" in self.trackers:
                client = _mlflow_client(tracked.mlflow["tracking_uri"])
                if client.get_run(tracked.mlflow["run_id"]).info.status == "RUNNING":
                    client.set_terminated(tracked.mlflow["run_id"], "FINISHED")
