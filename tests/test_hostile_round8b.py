"""Hostile input, round 8b: a run folder holding what medbench did not write (a user's `checkpoint-best`, a FIFO
as a state file, a damaged manifest, a file where the run folder goes), command-line text that is not UTF-8, an
output folder under a file, LoRA target modules that match nothing, and JSON-lines errors that name their line.
Each is one line and exit 2 (or left alone), before any model loads where it can be, and nothing is lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from medbench.cli import main
from medbench.errors import MedbenchError
from medbench.run_dirs import RUN_MANIFEST_NAME, prepare_resume


def refused(argv: list, capsys, started: str | None = None) -> str:
    """The one line a refused command writes (after the ``started`` line it may print before the model loads)."""
    with pytest.raises(SystemExit) as stopped, no_hang():
        main([str(arg) for arg in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    if started is not None and lines and lines[0].startswith(started):
        lines = lines[1:]
    assert stopped.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in lines[0], lines
    return lines[0]


class Blocked(BaseException):
    """Not an OSError (TimeoutError is one), so no reader's ``except OSError`` can swallow it."""


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """A read that blocks on a FIFO fails the test instead of hanging the suite."""
    def stop(*_):
        raise Blocked("blocked on a read")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _checkpoint(run: Path, step: int, name: str | None = None) -> Path:
    path = run / (name or f"checkpoint-{step}")
    path.mkdir(parents=True)
    save_file({"w": torch.ones(8)}, str(path / "adapter_model.safetensors"))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return path


def _resumable(run: Path, model: Path):
    from medbench.training import TrainRequest
    from medbench_plugins.sft import SFTOptions

    config = SFTOptions(max_steps=12)
    (run / RUN_MANIFEST_NAME).write_text(json.dumps({"plugin": "sft", "model_ref": str(model), "task": "medqa",
                                                     "seed": 1234, "config": asdict(config), "status": "running"}))
    return TrainRequest(model_ref=str(model), task="medqa", output_dir=run, config=config)


def resume_args(model: Path, name: str = "r1") -> list:
    return ["train", "--plugin", "sft", "--model", model, "--task", "medqa", "--max-steps", "1", "--run-name", name,
            "--output-dir", "runs", "--leaderboard-dir", "lb", "--resume"]


# ---------------------------------------------------------------- 1. resume removes only the Trainer's partial folders


def test_resume_leaves_folders_it_did_not_write(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    good = _checkpoint(run, 2)
    for name in ("checkpoint-1-keep", "checkpoint-best", "checkpoint-20.bak"):
        (run / name).mkdir()
        (run / name / "NOTES.txt").write_text("mine")
    (run / "checkpoint-4").mkdir()  # the Trainer's own, cut short by a kill: removed
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "optimizer.pt").write_text("mine")
    (run / "checkpoint-6").symlink_to(outside)  # a link in the Trainer's name: never followed into
    request = _resumable(run, tiny_model_dir)
    prepare_resume(run, "sft", request)
    assert request.resume_from == good
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1-keep", "checkpoint-2",
                                                                "checkpoint-20.bak", "checkpoint-6", "checkpoint-best"]
    assert all((run / n / "NOTES.txt").read_text() == "mine" for n in ("checkpoint-1-keep", "checkpoint-best"))
    assert (outside / "optimizer.pt").exists()


def test_dropping_resume_state_skips_folders_it_did_not_write(tmp_path):
    from medbench.trainers.run import drop_resume_state

    for name in ("checkpoint-2", "checkpoint-best", "checkpoint-4"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "optimizer.pt").write_text("x")
    drop_resume_state(tmp_path, keep=tmp_path / "checkpoint-4")
    assert not (tmp_path / "checkpoint-2" / "optimizer.pt").exists()
    assert (tmp_path / "checkpoint-best" / "optimizer.pt").exists()
    assert (tmp_path / "checkpoint-4" / "optimizer.pt").exists()


# ---------------------------------------------------------------- 2. a FIFO as run state never blocks


def test_a_fifo_manifest_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    os.mkfifo(tmp_path / "runs" / "r1" / RUN_MANIFEST_NAME)
    line = refused(resume_args(tiny_model_dir), capsys)
    assert RUN_MANIFEST_NAME in line and "not a regular file" in line


def test_a_fifo_trainer_state_is_one_line_and_nothing_is_removed(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    _checkpoint(run, 2)
    (run / "checkpoint-4").mkdir()
    os.mkfifo(run / "checkpoint-4" / "trainer_state.json")
    with pytest.raises(MedbenchError, match="trainer_state.json is not a regular file"), no_hang():
        prepare_resume(run, "sft", _resumable(run, tiny_model_dir))
    assert (run / "checkpoint-4").is_dir()


def test_other_run_state_files_never_block(tmp_path):
    from medbench.checkpoint_pruning import freed_so_far
    from medbench.tracking import TRACKING_FILE, read_tracking

    os.mkfifo(tmp_path / TRACKING_FILE)
    with pytest.raises(MedbenchError, match="unreadable"), no_hang():
        read_tracking(tmp_path)
    (tmp_path / "steps" / "s" / "c").mkdir(parents=True)
    os.mkfifo(tmp_path / "steps" / "s" / "c" / "PRUNED.json")
    with no_hang():
        assert freed_so_far(tmp_path / "steps") == (1, 0)


# ---------------------------------------------------------------- 3. a damaged manifest


@pytest.mark.parametrize("content", [b"\xff\xfe{", b"[1, 2]\n", b'{"status": "running", "config": [1]}',
                                     b'{"status": "running", "resumed": 5}', b"[" * 100000])
def test_a_damaged_manifest_is_one_line(content, tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / RUN_MANIFEST_NAME).write_bytes(content)
    line = refused(resume_args(tiny_model_dir), capsys)
    assert f"run manifest runs/r1/{RUN_MANIFEST_NAME} is unreadable" in line and "--run-name" in line


# ---------------------------------------------------------------- 4. --run-name naming a file


def test_a_run_name_naming_a_file_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "notes").write_text("keep")
    args = [a for a in resume_args(tiny_model_dir, "notes") if a != "--resume"]
    line = refused(args, capsys)
    assert "runs/notes is a file" in line and "--run-name" in line
    assert (tmp_path / "runs" / "notes").read_text() == "keep"


# ---------------------------------------------------------------- 5. command-line text that is not UTF-8


@pytest.mark.parametrize("option", [["--system-prompt", "Be concise \udce9"],
                                    ["--mode", "generate", "--gen-kwargs", "until=\udce9"],
                                    ["--gen-kwargs", 'until=["a","\udce9"]']])
def test_command_line_text_that_is_not_utf8_is_refused_before_the_model_loads(option, tmp_path, capsys,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(["eval", "--model", tmp_path / "no-such-model", "--tasks", "medqa", "--limit", "1", *option],
                   capsys)  # the model does not exist: the line comes before it is looked for
    assert "not UTF-8" in line and ("--system-prompt" in line or "--gen-kwargs until" in line)
    assert "no-such-model" not in line


# ---------------------------------------------------------------- 6. plugin new --dir under a file


def test_plugin_new_under_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    line = refused(["plugin", "new", "cardio", "--dir", "afile/sub"], capsys)
    assert "cannot write to afile/sub (Not a directory)" in line and "--dir" in line
    assert (tmp_path / "afile").read_text() == "x"


# ---------------------------------------------------------------- 7. trainer options the model or the type refuses


def train_args(model: Path, *extra) -> list:
    return ["train", "--plugin", "sft", "--model", model, "--task", "medqa", "--max-steps", "1", "--max-examples", "2",
            "--output-dir", "runs", "--leaderboard-dir", "lb", "--eval-limit", "1", *extra]


def test_lora_target_modules_matching_nothing_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(train_args(tiny_model_dir, "--lora-target-modules", "no_such_module"), capsys, "training sft")
    assert "--lora-target-modules no_such_module names no module" in line and "q_proj" in line
    assert "lm_head" not in line
    assert not list((tmp_path / "runs").glob("*/checkpoint-*"))


def test_a_lora_rank_wider_than_the_model_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    # 4294967295 passes the integer bound; PEFT would try to allocate it and the run would die out of memory.
    monkeypatch.chdir(tmp_path)
    line = refused(train_args(tiny_model_dir, "--lora-r", "4294967295"), capsys, "training sft")
    assert "--lora-r 4294967295 is larger than any layer" in line and "pass --lora-r 16" in line
    assert not list((tmp_path / "runs").glob("*/checkpoint-*"))


@pytest.mark.parametrize("yaml_text, flag", [("lora_target_modules: [1, 2]\n", "--lora-target-modules"),
                                             ("lora_target_modules: 5\n", "--lora-target-modules"),
                                             ("learning_rate: [1]\n", "--learning-rate"),
                                             ("lora_r: {a: 1}\n", "--lora-r")])
def test_config_values_of_the_wrong_type_are_one_line(yaml_text, flag, tmp_path, tiny_model_dir, capsys,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "opts.yaml").write_text(yaml_text)
    line = refused(train_args(tiny_model_dir, "--config", "opts.yaml"), capsys)
    assert line.startswith(f"Error: {flag} ") and "not" in line and "invalid options" not in line


# ---------------------------------------------------------------- 8. a JSON-lines error names its line


def test_a_json_lines_error_names_the_line_it_is_on(tmp_path):
    from medbench.data_reading import read_records

    rows = "".join(f'{{"text": "note {i}", "label": "yes"}}\n' for i in range(1, 6))
    (tmp_path / "d.jsonl").write_text(rows + "\n" + '{"text": garbage}\n')
    with pytest.raises(MedbenchError) as refused_file:
        read_records(tmp_path / "d.jsonl")
    assert "line 7 column 10" in refused_file.value.one_line()
