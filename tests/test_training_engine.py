"""The training engine with a trainer registered the way a third-party plugin would register one."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.training import (
    MANIFEST_NAME,
    CheckpointInfo,
    build_config,
    get_trainer,
    parse_plugin_args,
    trainer_registry,
)


@dataclass
class NudgeConfig:
    scale: float = 0.01
    steps: int = 2
    layers: list[int] | None = None


class NudgeTrainer:
    """Adds a deterministic offset to the final norm: a real weight change, one checkpoint per step."""

    name = "nudge"
    description = "test trainer"
    config_class = NudgeConfig

    def train(self, request):
        from medbench.models import resolve_model

        loaded = resolve_model(request.model_ref, request.load_options)
        checkpoints = []
        for step in range(1, request.config.steps + 1):
            with torch.no_grad():
                loaded.model.model.norm.weight.add_(request.config.scale)
            path = Path(request.output_dir) / f"checkpoint-{step}"
            loaded.model.save_pretrained(path)
            loaded.tokenizer.save_pretrained(path)
            checkpoints.append(CheckpointInfo(path=path, kind="model", step=step,
                                              final=step == request.config.steps, metrics={"loss": 1.0 / step},
                                              data_hash="abc"))
        return checkpoints


class NudgePlugin:
    @hookimpl
    def register_trainers(self, register):
        register(NudgeTrainer())


def test_register_trainers(plugin_registration):
    plugin_registration(NudgePlugin(), "nudge-plugin")
    assert "nudge" in trainer_registry()
    assert get_trainer("nudge").config_class is NudgeConfig


def test_unknown_trainer_lists_the_known_ones(plugin_registration):
    plugin_registration(NudgePlugin(), "nudge-plugin")
    with pytest.raises(MedbenchError, match=r"unknown trainer plugin 'nudg' \(known: .*nudge.*did you mean nudge"):
        get_trainer("nudg")


def test_plugin_options_are_typed_and_checked():
    options = parse_plugin_args(["--scale", "0.5", "--steps=3", "--layers", "1,2"])
    config = build_config(NudgeConfig, {"steps": 9}, options, "nudge")
    assert config == NudgeConfig(scale=0.5, steps=3, layers=[1, 2])
    with pytest.raises(MedbenchError, match="has no option --learning-rate.*lists its options: --layers, --scale, --steps"):
        build_config(NudgeConfig, {}, {"learning_rate": "1"}, "nudge")
    with pytest.raises(MedbenchError, match="--steps 'many' is not an integer — give an integer for --steps"):
        build_config(NudgeConfig, {}, {"steps": "many"}, "nudge")


def test_train_command_writes_manifests_and_scores_every_checkpoint(plugin_registration, tiny_model_dir, tmp_path):
    from medbench.cli import cli
    from medbench.leaderboard import build_table

    plugin_registration(NudgePlugin(), "nudge-plugin")
    config = tmp_path / "nudge.yaml"
    config.write_text("steps: 2\nscale: 0.02\n")
    result = CliRunner().invoke(cli, [
        "train", "--plugin", "nudge", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-tasks",
        "medqa,medmcqa", "--eval-limit", "4", "--config", str(config), "--output-dir", str(tmp_path / "runs"),
        "--leaderboard-dir", str(tmp_path / "lb"), "--scale", "0.05"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifests = [json.loads((run_dir / f"checkpoint-{i}" / MANIFEST_NAME).read_text()) for i in (1, 2)]
    assert manifests[1]["final"] and manifests[1]["config"] == {"scale": 0.05, "steps": 2, "layers": None}
    assert manifests[0]["parent_model"] == str(tiny_model_dir) and manifests[0]["plugin"] == "nudge"
    assert manifests[0]["train_metrics"] == {"loss": 1.0} and manifests[0]["data_hash"] == "abc"
    assert {"torch", "transformers"} <= set(manifests[0]["versions"])
    table = build_table(tmp_path / "lb")
    assert len(table.rows) == 2 and table.columns == ["medmcqa", "medqa"]
    assert all(row.label.startswith("nudge:") for row in table.rows)
    assert len({row.weights_hash for row in table.rows}) == 2


def test_named_run_directory_never_overwrites_a_run(tmp_path):
    from medbench.run_dirs import new_run_dir

    run_id, run_dir = new_run_dir(tmp_path, "nudge", "medqa", "demo")
    assert (run_id, run_dir) == ("demo", tmp_path / "demo")
    (run_dir / "checkpoint-1").mkdir()
    with pytest.raises(MedbenchError, match="already holds a run.*--run-name"):
        new_run_dir(tmp_path, "nudge", "medqa", "demo")
    assert (run_dir / "checkpoint-1").is_dir()
