"""Progress for every long phase: plain timestamped lines when stderr is a pipe or a log, bars on a terminal."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medbench import progress
from medbench.evaluation import EvalConfig, evaluate
from medbench.models import resolve_model
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench.trainers.hf import Formatter
from medbench_plugins.dpo import DPOOptions, prepare
from medbench_plugins.dpo_sampling import sample_answers

LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<what>.+) (?P<done>\d+)/(?P<total>\d+) \((?P<pct>\d+)%\).*, \d+ s$")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def test_plain_progress_prints_at_start_at_most_once_per_interval_and_at_the_end(capsys):
    clock = Clock()
    plain = progress.PlainProgress(interval=30, clock=clock)
    bar = plain.add_task("eval · medqa", total=10, status="")
    for step in range(1, 10):
        clock.now = step * 7  # 7 s a step: a line at 35 s only (the next would be due at 65 s)
        plain.update(bar, completed=step)
    clock.now = 70
    plain.update(bar, completed=10, status="loss 0.5")
    plain.update(bar, completed=10)  # already ended: no second end line
    printed = lines(capsys.readouterr().err)
    matches = [LINE.match(line) for line in printed]
    assert all(matches), printed
    assert [(m["done"], m["pct"]) for m in matches] == [("0", "0"), ("5", "50"), ("10", "100")]
    assert all(m["what"].startswith("eval · medqa") for m in matches)
    assert "loss 0.5" in printed[-1] and printed[-1].endswith(", 70 s")


def test_plain_progress_advances_and_takes_totals_late(capsys):
    plain = progress.PlainProgress(interval=1e9, clock=Clock())
    bar = plain.add_task("sampling", total=None)
    plain.update(bar, total=3)
    plain.advance(bar, 2)
    plain.advance(bar)
    printed = lines(capsys.readouterr().err)
    assert printed[0].split(" ", 1)[1].startswith("sampling 0")
    assert LINE.match(printed[-1])["done"] == "3" and len(printed) == 2


def test_a_pipe_gets_plain_lines_and_a_terminal_gets_bars(monkeypatch):
    assert not progress.console.is_terminal  # pytest captures stderr: a pipe
    assert isinstance(progress.new_progress(), progress.PlainProgress)
    monkeypatch.setattr(type(progress.console), "is_terminal", property(lambda self: True))
    assert not isinstance(progress.new_progress(), progress.PlainProgress)


def test_generation_reports_after_every_batch(tiny_model_dir, tmp_path):
    seen = []
    evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=6, batch_size=2, mode="generate",
                                             output_dir=tmp_path),
             progress=lambda task, done, total: seen.append((done, total)))
    assert seen == [(2, 6), (4, 6), (6, 6)]


@pytest.fixture(scope="module")
def medqa():
    return load_training_examples("medqa")


def test_dpo_sampling_and_reference_pass_show_progress(tiny_model_dir, tmp_path, medqa, capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as the CLI sets it: TRL's own bars off, medbench's lines instead
    loaded = resolve_model(str(tiny_model_dir))
    options = DPOOptions(pairs="sampled", samples_per_prompt=2, sample_max_new_tokens=4)
    sample_answers(loaded.model, Formatter(loaded.tokenizer, use_chat_template=False), medqa[:10], options)
    config = build_config(DPOOptions, {}, {"train_batch_size": 2, "max_steps": 3, "max_examples": 6}, "dpo")
    prepare(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                         examples=list(medqa)))
    ends = [LINE.match(line) for line in lines(capsys.readouterr().err)]
    ends = {m["what"]: (m["done"], m["total"]) for m in ends if m and m["pct"] == "100"}
    assert ends["dpo · sampling 2 answers per prompt"] == ("10", "10")
    assert ends["dpo · reference log-probs (train, batches)"] == ("3", "3")  # 6 pairs (3 steps reach them), 2 a batch


def test_a_piped_training_run_logs_every_phase_with_timestamps(tiny_model_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDBENCH_PROGRESS_SECONDS": "0"}
    medbench = Path(sys.executable).with_name("medbench")
    command = [str(medbench)] if medbench.exists() else [sys.executable, "-m", "medbench.cli"]
    proc = subprocess.run(command + [
        "train", "--plugin", "dpo", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "4",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--max-steps", "2",
        "--max-examples", "4", "--train-batch-size", "2"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    logged = [m for m in map(LINE.match, lines(proc.stderr)) if m]
    phases = {m["what"].split(" · ")[-1] if "reference" not in m["what"] else "reference" for m in logged}
    assert {"reference", "medqa"} <= phases and any(m["what"] == "dpo · medqa" for m in logged), proc.stderr
    assert "━" not in proc.stderr  # no bar drawn into a pipe
