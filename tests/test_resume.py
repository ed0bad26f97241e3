"""Interrupted work resumes and finished work is reused, never served stale.

- `medbench train --resume` continues a run a SIGKILL stopped, from its last complete checkpoint, without redoing
  finished steps, and ends with the weights an uninterrupted run ends with.
- A checkpoint a kill left half-written is never resumed from.
- Evaluation reuses a record only for the same weights (content hash, not path), task, data and options.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from medbench.cli import main
from medbench.training import TrainRequest, build_config
from medbench.run_dirs import RUN_MANIFEST_NAME, complete_checkpoints, prepare_resume

# Every optimizer step of the run that gets killed takes at least a second, so the kill lands mid-run.
SLOW_STEPS_PLUGIN = '''
import time

import transformers

_step = transformers.Trainer.training_step


def training_step(self, *args, **kwargs):
    time.sleep(1.0)
    return _step(self, *args, **kwargs)


transformers.Trainer.training_step = training_step
'''

SFT_OPTIONS = ["--max-steps", "6", "--save-steps", "2", "--max-examples", "8", "--train-batch-size", "2"]


def train_args(model_dir: Path, *extra: str) -> list[str]:
    return ["train", "--plugin", "sft", "--model", str(model_dir), "--task", "medqa", "--run-name", "killed",
            "--output-dir", "runs", "--leaderboard-dir", "lb", "--eval-limit", "2", *SFT_OPTIONS, *extra]


def test_resume_continues_a_killed_run_without_redoing_steps(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "slow_steps.py").write_text(SLOW_STEPS_PLUGIN)
    # The killed run computes with the thread count of this process (conftest: 1), which the resumed and reference
    # runs use: on a CPU the float sums in matmuls and reductions, and so the weights' last bits, depend on it.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    run = tmp_path / "runs" / "killed"
    process = subprocess.Popen([sys.executable, "-m", "medbench.cli", "--plugins-dir", "slow",
                                *train_args(tiny_model_dir)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint-2" / "trainer_state.json").exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the run never saved checkpoint-2"
            time.sleep(0.2)
        process.kill()  # SIGKILL: no cleanup of any kind runs
        assert process.wait(timeout=60) == -9
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()

    assert not (run / "checkpoint-6").exists()
    assert json.loads((run / RUN_MANIFEST_NAME).read_text())["status"] == "running"
    resumed_step = complete_checkpoints(run)[-1][0]
    assert resumed_step in (2, 4)
    # What a kill in the middle of a save leaves: weights cut short and no trainer_state.json.
    partial = run / "checkpoint-5"
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(
        (run / f"checkpoint-{resumed_step}" / "adapter_model.safetensors").read_bytes()[:100])
    kept = run / "checkpoint-2" / "adapter_model.safetensors"
    kept_before = (kept.read_bytes(), kept.stat().st_mtime_ns)

    import transformers

    steps_run = []
    original_step = transformers.Trainer.training_step

    def counting_step(self, *args, **kwargs):
        steps_run.append(self.state.global_step)
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", counting_step)
    main(train_args(tiny_model_dir, "--resume"))  # returns normally: exit code 0

    assert steps_run == list(range(resumed_step, 6))  # only the steps the killed run had not finished
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == kept_before  # checkpoint-2 was not written again
    assert not partial.exists()
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    state = json.loads((run / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == [2, 4, 6]
    manifest = json.loads((run / RUN_MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete" and manifest["resumed"][0]["from"] == f"checkpoint-{resumed_step}"
    assert manifest["checkpoints"] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    for step in (2, 4, 6):
        checkpoint = run / f"checkpoint-{step}"
        assert json.loads((checkpoint / "medbench_manifest.json").read_text())["step"] == step
        assert not [p.name for p in checkpoint.iterdir() if p.suffix in (".pt", ".pth", ".bin")]  # no resume state
    assert len(list((tmp_path / "lb").glob("records/*/medqa/record.json"))) == 3  # every checkpoint scored

    # The interrupted-and-resumed run ends where an uninterrupted one does: same weights, bit for bit.
    monkeypatch.setattr(transformers.Trainer, "training_step", original_step)
    from medbench.training import parse_plugin_args
    from medbench_plugins.sft import SFT, SFTOptions

    config = build_config(SFTOptions, {}, parse_plugin_args(SFT_OPTIONS), "sft")
    (reference,) = [c for c in SFT().train(TrainRequest(model_ref=str(tiny_model_dir), task="medqa",
                                                        output_dir=tmp_path / "reference", config=config))
                    if c.final]
    resumed = load_file(run / "checkpoint-6" / "adapter_model.safetensors")
    uninterrupted = load_file(reference.path / "adapter_model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in resumed)


def _checkpoint(run: Path, step: int, *, state: str | None = None, weights: bytes | None = None) -> Path:
    path = run / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.ones(64)}, str(path / "adapter_model.safetensors"))
    if weights is not None:
        (path / "adapter_model.safetensors").write_bytes(weights)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []})
                                             if state is None else state)
    return path


def test_resume_never_picks_a_checkpoint_a_kill_cut_short(tmp_path, tiny_model_dir):
    from medbench_plugins.sft import SFTOptions

    run = tmp_path / "run"
    good = _checkpoint(run, 2)
    _checkpoint(run, 4, state='{"global_step": 4, "log_hist')  # killed while writing trainer_state.json
    (_checkpoint(run, 6) / "trainer_state.json").unlink()  # killed before trainer_state.json
    _checkpoint(run, 8, weights=(good / "adapter_model.safetensors").read_bytes()[:-10])  # weights cut short
    _checkpoint(run, 10, state=json.dumps({"global_step": 9}))  # not the state of this checkpoint
    assert complete_checkpoints(run) == [(2, good)]

    config = SFTOptions(max_steps=12)
    (run / RUN_MANIFEST_NAME).write_text(json.dumps({"plugin": "sft", "model_ref": str(tiny_model_dir),
                                                     "task": "medqa", "seed": 1234, "config": asdict(config),
                                                     "status": "running"}))
    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=run, config=config)
    prepare_resume(run, "sft", request)
    assert request.resume_from == good
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2"]  # the partial ones are removed


def test_the_final_checkpoint_never_writes_resume_state(tmp_path, tiny_model_dir, monkeypatch):
    """A finished run keeps no optimizer state, so the last step's checkpoint does not write it only to delete it
    (for full fine-tuning that is twice the weights in fp32); the checkpoints before it still do, for --resume."""
    import transformers

    from medbench.training import parse_plugin_args
    from medbench_plugins.sft import SFT, SFTOptions

    written = []
    original = transformers.Trainer._save_optimizer_and_scheduler

    def spy(self, output_dir):
        written.append(Path(output_dir).name)
        return original(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_optimizer_and_scheduler", spy)
    options = ["--max-steps", "4", "--save-steps", "2", "--max-examples", "8", "--train-batch-size", "2",
               "--method", "full"]
    config = build_config(SFTOptions, {}, parse_plugin_args(options), "sft")
    checkpoints = SFT().train(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run",
                                           config=config))
    assert [(c.step, c.final) for c in checkpoints] == [(2, False), (4, True)]
    assert written == ["checkpoint-2"]
    for checkpoint in checkpoints:
        assert list(checkpoint.path.glob("*.safetensors"))
        assert not [p.name for p in checkpoint.path.iterdir() if p.suffix in (".pt", ".pth", ".bin")]


def test_trainers_that_cannot_resume_say_so(tmp_path, tiny_model_dir):
    from medbench.errors import MedbenchError
    from medbench_plugins.merge import MergeConfig

    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path, config=MergeConfig())
    with pytest.raises(MedbenchError, match="trainer 'merge' cannot resume a run.*without --resume"):
        prepare_resume(tmp_path, "merge", request)


# --- the evaluation cache -----------------------------------------------------------------------------------------

def test_eval_cache_is_keyed_by_the_weights_never_the_path(tmp_path, monkeypatch, capsys):
    from medbench.evaluation import EvalConfig, evaluate
    from medbench.records import read_samples
    from medbench.testing import make_tiny_model

    model = make_tiny_model(tmp_path / "model", seed=0)
    lb = tmp_path / "lb"

    def config(**kwargs):
        return EvalConfig(tasks=["medqa"], limit=4, output_dir=lb, label="my-checkpoint", **kwargs)

    (first,) = evaluate(str(model), config())
    assert not first.get("_reused")
    record_file = Path(first["_path"])
    written = record_file.read_bytes()

    (again,) = evaluate(str(model), config())  # same weights, data and options: served from disk
    assert again["_reused"] and again["_path"] == first["_path"] and again["created"] == first["created"]
    assert record_file.read_bytes() == written

    (other_options,) = evaluate(str(model), config(num_fewshot=1))  # another option is another record
    assert not other_options.get("_reused")

    make_tiny_model(model, seed=1)  # retrained in place: same path, same label, new weights
    (retrained,) = evaluate(str(model), config())
    assert not retrained.get("_reused")
    assert retrained["model"]["weights_hash"] != first["model"]["weights_hash"]
    assert retrained["_path"] != first["_path"] and record_file.read_bytes() == written  # the old record is kept
    old_logliks = [s["logliks"] for s in read_samples({**first, "_path": str(record_file)})]
    new_logliks = [s["logliks"] for s in read_samples(retrained)]
    assert new_logliks != old_logliks  # scored anew, not the stale samples

    monkeypatch.chdir(tmp_path)  # --no-cache scores again even when a record matches
    main(["eval", "--model", str(model), "--tasks", "medqa", "--limit", "4", "--leaderboard-dir", str(lb), "--label",
          "my-checkpoint", "--no-cache"])
    capsys.readouterr()
    rescored = json.loads(Path(retrained["_path"]).read_text())
    assert rescored["config"]["reuse_records"] is False  # written again by the --no-cache run
