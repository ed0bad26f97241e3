"""medbench.engine: the one train-then-score path of `medbench train` and sweeps, one shape of training info."""

import json
from pathlib import Path

from click.testing import CliRunner

from medbench.engine import ScoredCheckpoint, score_checkpoints
from medbench.evaluation import EvalConfig
from medbench.leaderboard import training_info

TRAINING_KEYS = {"plugin", "run_id", "checkpoint", "step", "final", "trainer_config"}


def test_score_checkpoints_labels_each_and_says_what_trained_it(tmp_path):
    seen = []

    def score(ref, config):
        seen.append((ref, config.label, config.extra))
        return [{"ref": ref}]

    config = EvalConfig(tasks=["medqa"], output_dir=tmp_path)
    checkpoints = [ScoredCheckpoint("base-model"),
                   ScoredCheckpoint("runs/r/checkpoint-2", 2, True, "sft", "r", {"lora_r": 8})]
    records = score_checkpoints(checkpoints, config, lambda c: f"cell/{Path(c.path).name}", score, {"sweep": "s"})
    assert records == [{"ref": "base-model"}, {"ref": "runs/r/checkpoint-2"}]
    (_, label0, extra0), (_, label1, extra1) = seen
    assert (label0, extra0) == ("cell/base-model", {"sweep": "s"})
    assert label1 == "cell/checkpoint-2" and extra1["sweep"] == "s"
    assert extra1["training"] == {"plugin": "sft", "run_id": "r", "checkpoint": "runs/r/checkpoint-2", "step": 2,
                                  "final": True, "trainer_config": {"lora_r": 8}}
    assert config.label is None and config.extra == {}  # the caller's config is not changed


def test_train_command_records_the_training_in_the_shared_shape(tiny_model_dir, tmp_path):
    from medbench.cli import cli

    result = CliRunner().invoke(cli, [
        "train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "2",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--max-steps", "1",
        "--max-examples", "2", "--train-batch-size", "2", "--run-name", "one"])
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "lb").glob("records/*/medqa/record.json")
    record = {**json.loads(path.read_text()), "_path": str(path)}
    training = record["extra"]["training"]
    assert set(training) == TRAINING_KEYS and training["plugin"] == "sft" and training["run_id"] == "one"
    assert training["checkpoint"] == "../runs/one/checkpoint-1"  # relative to the leaderboard
    assert training["trainer_config"]["max_steps"] == 1
    info = training_info(record)
    assert info["plugin"] == "sft" and info["step"] == 1 and info["final"] is True
