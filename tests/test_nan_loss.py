"""A NaN or infinite loss stops training: no checkpoint with broken weights is saved or scored, the last good one is
kept with its manifest, the failure goes into the run manifest, and the user gets one line naming the step, the
kept checkpoint and the fix.

The NaN is real and deterministic: a LoRA learning rate of 1e30 moves every B matrix to about ±1e30 in the first
Adam step (its update is lr × sign(gradient)); the second forward pass overflows, so step 2's loss is NaN.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from medbench.cli import main
from medbench.trainers.callbacks import nonfinite_guard
from medbench.training import TrainingDiverged, build_config
from medbench.run_dirs import RUN_MANIFEST_NAME


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--run-name", "nan",
              "--output-dir", "runs", "--leaderboard-dir", "lb", "--eval-limit", "2", "--learning-rate", "1e30",
              "--max-steps", "4", "--save-steps", "1", "--max-examples", "8", "--train-batch-size", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "training diverged at step 2: loss nan" in error
    assert "last good checkpoint runs/nan/checkpoint-1 is kept" in error
    assert "lower --learning-rate (this run: 1e+30)" in error and "medbench eval --model runs/nan/checkpoint-1" in error

    run = tmp_path / "runs" / "nan"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]  # step 2 was never saved
    good = run / "checkpoint-1"
    weights = load_file(good / "adapter_model.safetensors")
    assert weights and all(torch.isfinite(t).all() for t in weights.values())
    assert not [p.name for p in good.iterdir() if p.suffix in (".pt", ".pth", ".bin")]  # weights only, no resume state
    manifest = json.loads((good / "medbench_manifest.json").read_text())
    assert manifest["step"] == 1 and manifest["final"] is False and math.isfinite(manifest["train_metrics"]["loss"])

    run_manifest = json.loads((run / RUN_MANIFEST_NAME).read_text())
    assert run_manifest["status"] == "diverged"
    failure = run_manifest["failure"]
    assert failure["step"] == 2 and failure["reason"] == "non-finite loss" and "loss nan" in failure["detail"]
    assert failure["last_good_checkpoint"].endswith("checkpoint-1")
    assert not list((tmp_path / "lb").glob("records/*/*/record.json"))  # nothing was scored

    from medbench.models import resolve_model

    assert resolve_model(str(good)).kind == "peft"  # the kept checkpoint still loads

    with pytest.raises(SystemExit):  # and the diverged run is not resumed into the same NaN
        main(["train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--run-name", "nan",
              "--output-dir", "runs", "--leaderboard-dir", "lb", "--resume", "--learning-rate", "1e30",
              "--max-steps", "4", "--save-steps", "1", "--max-examples", "8", "--train-batch-size", "2"])
    assert "diverged (non-finite loss); resuming it would repeat that" in capsys.readouterr().err


def test_dpo_gets_the_same_guard(tiny_model_dir, tmp_path):
    """The guard sits in the shared TRL run, so every TRL-based trainer stops the same way."""
    from medbench.trainingdata import load_training_examples
    from medbench.training import TrainRequest
    from medbench_plugins.dpo import DPO, DPOOptions

    config = build_config(DPOOptions, {}, {"learning_rate": "1e30", "max_steps": "3", "save_steps": "1",
                                           "max_examples": "4", "train_batch_size": "2"}, "dpo")
    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                           examples=load_training_examples("medqa"))
    with pytest.raises(TrainingDiverged) as info:
        DPO().train(request)
    assert info.value.step == 2 and [c.step for c in info.value.checkpoints] == [1]
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-1"]


def _control():
    return SimpleNamespace(should_training_stop=False, should_save=True, should_evaluate=False, should_log=False)


def test_guard_stops_at_non_finite_weights_before_the_save():
    guard = nonfinite_guard()
    state = SimpleNamespace(global_step=7)
    model = torch.nn.Linear(2, 2)
    control = _control()
    guard.on_step_end(None, state, control, model=model)
    assert guard.failure is None and control.should_save and not control.should_training_stop

    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    guard.on_step_end(None, state, control, model=model)
    assert guard.failure[0] == 7 and "NaN or infinite" in guard.failure[1]
    assert control.should_training_stop and not control.should_save and control.should_log


def test_guard_stops_at_a_logged_nan_loss():
    guard = nonfinite_guard()
    control = _control()
    guard.on_log(None, SimpleNamespace(global_step=3), control, logs={"loss": 1.25, "grad_norm": 0.5})
    assert guard.failure is None and control.should_save
    guard.on_log(None, SimpleNamespace(global_step=4), control, logs={"loss": float("nan"), "learning_rate": 1e-4})
    assert guard.failure == (4, "loss nan") and control.should_training_stop and not control.should_save
