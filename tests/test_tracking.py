"""--report-to: a tiny SFT run's training loss and its checkpoints' scores land in real TensorBoard event files and a
real MLflow store (a local file store), at the checkpoints' steps; a sweep step does the same; a tracker that is
missing or misconfigured is one line before anything trains."""

import json
from pathlib import Path

import pytest
import yaml

from medbench.tracking import TRACKING_FILE, parse_report_to, read_tracking, start_tracking


def train_args(model_dir, tmp_path, *extra):
    return ["train", "--plugin", "sft", "--model", str(model_dir), "--task", "medqa", "--eval-limit", "4",
            "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--run-name", "tracked",
            *extra, "--max-steps", "2", "--save-steps", "1", "--max-examples", "4", "--train-batch-size", "2",
            "--logging-steps", "1"]


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A local MLflow file store (mlflow-skinny has no database backend; the file store wants an explicit opt-in)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "medbench-test")
    return uri


def tensorboard_scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def scores_by_step(run_dir: Path) -> dict[int, dict[str, float]]:
    """What the leaderboard records say each checkpoint scored (the values the trackers must show)."""
    from medbench.records import read_records

    found = {}
    for record in read_records(run_dir.parent.parent / "lb"):
        step = record["extra"]["training"]["step"]
        found[step] = {f"eval/medqa/{name}": metric["value"] for name, metric in record["metrics"].items()}
    return found


def test_train_reports_loss_and_checkpoint_scores_to_tensorboard_and_mlflow(tiny_model_dir, tmp_path, mlflow_store,
                                                                            medbench_cli):
    from mlflow.tracking import MlflowClient

    result = medbench_cli(*train_args(tiny_model_dir, tmp_path, "--report-to", "tensorboard,mlflow"))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "tracked"
    tracked = read_tracking(run_dir)
    assert tracked.trackers == ["tensorboard", "mlflow"] and tracked.name == "tracked"
    scores = scores_by_step(run_dir)
    assert sorted(scores) == [1, 2]

    scalars = tensorboard_scalars(run_dir / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == [1, 2]
    assert all(loss > 0 for _, loss in scalars["train/loss"])
    for name in scores[1]:
        assert scalars[name] == [(step, pytest.approx(scores[step][name], abs=1e-6)) for step in (1, 2)]

    client = MlflowClient(mlflow_store)
    run = client.get_run(tracked.mlflow["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    assert client.get_experiment(run.info.experiment_id).name == "medbench-test"
    assert run.data.params["max_steps"] == "2"  # the Trainer's own callback logged the arguments
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in loss] == [1, 2]
    assert [m.value for m in loss] == pytest.approx([v for _, v in scalars["train/loss"]], rel=1e-6)
    for name in scores[1]:
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert history == [(step, pytest.approx(scores[step][name])) for step in (1, 2)]


def test_a_resumed_run_keeps_its_tracker_runs(tmp_path, mlflow_store):
    first = start_tracking(["mlflow", "tensorboard"], tmp_path, "run")
    again = start_tracking(["tensorboard", "mlflow"], tmp_path, "run")
    assert again.mlflow == first.mlflow and again.tensorboard_dir == str(tmp_path.resolve() / "tensorboard")
    assert json.loads((tmp_path / TRACKING_FILE).read_text())["mlflow"]["run_id"] == first.mlflow["run_id"]


def test_a_sweep_step_reports_to_tensorboard(tiny_model_dir, tmp_path):
    import medbench

    recipe = {
        "name": "tracked_sweep", "scales": {"toy": {"model": str(tiny_model_dir)}}, "grid": {"method": ["sft"]},
        "cell": {"model": "{model}", "steps_by": "method",
                 "steps": {"sft": [{"plugin": "sft", "task": "medqa", "options": {
                     "max_steps": 2, "save_steps": 1, "logging_steps": 1, "max_examples": 4, "train_batch_size": 2}}]},
                 "eval": {"tasks": ["medqa"], "limit": 3, "batch_size": 4}}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    swept = medbench.sweep(path, output_dir=tmp_path / "sweep", report_to="tensorboard")
    assert not swept.failed and swept.cells[0].status == "done"
    (step_dir,) = (tmp_path / "sweep" / "steps").iterdir()
    scalars = tensorboard_scalars(step_dir / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == [1, 2]
    assert [step for step, _ in scalars["eval/medqa/acc"]] == [1, 2]


def test_wandb_offline_logs_training_and_scores_to_one_run(tiny_model_dir, tmp_path, monkeypatch, medbench_cli):
    pytest.importorskip("wandb", reason="wandb is optional (medbench[wandb]); its refusal is tested below")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = medbench_cli(*train_args(tiny_model_dir, tmp_path, "--report-to", "wandb"))
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "tracked"
    run_id = read_tracking(run_dir).wandb["id"]
    # offline, wandb writes one folder per process attached to the run: training, then the scores
    attached = sorted(run_dir.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(attached) == 2 and all(f.stat().st_size > 0 for f in attached)


def test_a_tracker_that_is_not_installed_is_one_line_before_training(tiny_model_dir, tmp_path, monkeypatch,
                                                                     medbench_cli):
    import importlib.util

    from medbench import tracking

    real = importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else
                        real(name, *a))
    result = medbench_cli(*train_args(tiny_model_dir, tmp_path, "--report-to", "tensorboard,wandb"))
    assert result.exit_code == 2
    assert "--report-to wandb needs the wandb package" in result.output
    assert "pip install 'medbench[wandb]'" in result.output
    assert not (tmp_path / "runs").exists()


def test_report_to_names_are_checked():
    assert parse_report_to(None) == [] and parse_report_to("none") == [] and parse_report_to("") == []
    assert parse_report_to("TensorBoard, mlflow,tensorboard") == ["tensorboard", "mlflow"]
    from medbench.errors import MedbenchError

    with pytest.raises(MedbenchError, match="'comet' is not a tracker.*tensorboard, mlflow, wandb"):
        parse_report_to("tensorboard,comet")


def test_an_unusable_mlflow_store_is_one_line_and_leaves_no_run(tiny_model_dir, tmp_path, monkeypatch, medbench_cli):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    result = medbench_cli(*train_args(tiny_model_dir, tmp_path, "--report-to", "mlflow"))
    assert result.exit_code == 2
    assert "MLflow cannot use the tracking store" in result.output and "MLFLOW_TRACKING_URI" in result.output
    assert not (tmp_path / "runs" / "tracked").exists()
