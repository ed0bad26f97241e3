"""Hostile input, round 9: a key written twice in a recipe, a --config file or a data row (the parsers silently keep
the second); trainer integers past 32 bits and epoch counts past any run (crashes deep inside torch, reported as a
bug); an adapter folder whose adapter_config.json is no JSON object, not UTF-8, nested past the parser, a FIFO or
megabytes (the same crash); and the files medbench writes by rename, which all came out 0600 and took a shared
leaderboard's own mode away. Each is one line and exit 2, before any model loads, and nothing is lost."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from medbench.cli import main
from test_hostile_round8b import no_hang  # a read blocked on a FIFO fails the test, not the suite


def refused(argv: list, capsys) -> str:
    """The one line a refused command writes; the `training ... →` line train prints first is allowed before it."""
    with pytest.raises(SystemExit) as stopped, no_hang():
        main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("training ")]
    assert stopped.value.code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in err, lines
    return lines[0]


RECIPE = """
name: twice
scales:
  toy: {{model: "{model}", eval_limit: 2}}
grid:
  method: [base, sft]
  seed: [1, 2]
cell:
  model: "{{model}}"
  steps_by: method
  steps:
    base: []
    sft: [{{plugin: sft, task: medqa, options: {{max_steps: 1, max_examples: 4}}}}]
  eval: {{tasks: [medqa], limit: "{{eval_limit}}"}}
baseline: {{method: base}}
report: {{compare: method}}
grid:
  method: [base]
  seed: [7]
"""


def test_a_key_given_twice_in_a_recipe_or_a_config_file_is_one_line(tmp_path, tiny_model_dir, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir))
    out = tmp_path / "sweep"
    line = refused(["sweep", recipe, "--dry-run", "--output-dir", out], capsys)
    assert "'grid' twice (lines 5 and 17)" in line and str(recipe) in line  # was: the second grid, silently
    assert not out.exists()

    runs, board = tmp_path / "runs", tmp_path / "board"
    train = ["train", "--plugin", "sft", "--model", tiny_model_dir, "--task", "medqa", "--output-dir", runs,
             "--run-name", "r", "--leaderboard-dir", board, "--device", "cpu", "--max-steps", "1"]
    config = tmp_path / "options.yaml"
    config.write_text("learning_rate: 0.0001\nlora_r: 4\nlearning_rate: 0.5\n")
    line = refused([*train, "--config", config], capsys)
    assert "'learning_rate' twice (lines 1 and 3)" in line and str(config) in line
    config.write_text("lora_r: 4\nlora-r: 8\n")  # one option in two spellings: the second won
    assert "--lora-r is given twice" in refused([*train, "--config", config], capsys)
    assert not (runs / "r").exists() and not board.exists()


def test_yaml_merges_may_still_be_overridden_and_equal_spellings_agree():
    from medbench.trainer_options import _normalized
    from medbench.unique_keys import load_yaml_unique

    merged = load_yaml_unique("base: &b {lr: 1, r: 2}\nstep:\n  <<: *b\n  lr: 3\n", "a file")
    assert merged["step"] == {"lr": 3, "r": 2}
    assert _normalized({"lora_r": 4, "lora-r": 4}) == {"lora_r": 4}


def test_a_data_row_naming_a_field_twice_is_one_line(tmp_path, tiny_model_dir, capsys):
    row = ('{"question": "q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "A", '
           '"answer_idx": "B"}')
    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps({"question": "p?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
                                "answer_idx": "C"}) + "\n" + row + "\n")
    board = tmp_path / "board"
    line = refused(["eval", "--model", tiny_model_dir, "--tasks", "medqa", "--data-file", f"medqa={data}",
                    "--leaderboard-dir", board, "--device", "cpu"], capsys)
    assert str(data) in line and "line 2" in line and "'answer_idx' is given twice" in line  # was: scored gold B
    assert not (board / "records").exists()
    array = tmp_path / "mine.json"
    array.write_text("[" + row + "]")
    assert "'answer_idx' is given twice" in refused(["eval", "--model", tiny_model_dir, "--tasks", "medqa",
                                                      "--data-file", f"medqa={array}", "--leaderboard-dir", board,
                                                      "--device", "cpu"], capsys)


@pytest.mark.parametrize("option, value, expected", [
    ("--lora-r", str(10**30), "--lora-r 1000000000000000000000000000000 is past any step count"),
    ("--train-batch-size", str(10**30), "--train-batch-size 1000000000000000000000000000000 is past"),
    ("--save-steps", str(2**40), "--save-steps 1099511627776 is past"),
    ("--num-epochs", "1e308", "--num-epochs must be at most 1,000,000,000"),
])
def test_trainer_numbers_past_any_run_are_refused_before_training(tmp_path, tiny_model_dir, capsys, option, value,
                                                                   expected):
    runs = tmp_path / "runs"
    line = refused(["train", "--plugin", "sft", "--model", tiny_model_dir, "--task", "medqa", "--output-dir", runs,
                    "--run-name", "r", "--leaderboard-dir", tmp_path / "board", "--device", "cpu", option, value],
                   capsys)
    assert expected in line  # was: exit 1, "this is a bug in medbench" from torch or islice
    assert not (runs / "r").exists()


def test_a_config_file_integer_past_32_bits_is_refused_too(tmp_path, tiny_model_dir, capsys):
    config = tmp_path / "options.yaml"
    config.write_text(f"lora_r: {10**23}\nmax_steps: 1\n")
    line = refused(["train", "--plugin", "sft", "--model", tiny_model_dir, "--task", "medqa", "--output-dir",
                    tmp_path / "runs", "--leaderboard-dir", tmp_path / "board", "--device", "cpu", "--config", config],
                   capsys)
    assert "--lora-r 100000000000000000000000 is past" in line


def _adapter(folder: Path, config: bytes | None) -> Path:
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    if config is not None:
        (folder / "adapter_config.json").write_bytes(config)
    return folder


@pytest.mark.parametrize("kind, config, expected", [
    ("list", b"[1]", "is a JSON list, not an object"),
    ("latin", b'{"base_model_name_or_path": "\xff"}', "is not UTF-8 text (byte 29)"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
    ("number-base", b'{"base_model_name_or_path": 5}', "names its base model as 5"),
    ("escape-base", b'{"base_model_name_or_path": "m\\u001b[2J"}', "names its base model as 'm\\x1b[2J'"),
    ("fifo", None, "cannot be read (not a regular file)"),
    ("huge", None, "cannot be read (larger than 4,194,304 bytes)"),
])
def test_an_adapter_config_that_is_no_json_object_is_one_line(tmp_path, capsys, kind, config, expected):
    adapter = _adapter(tmp_path / kind, config)
    target = adapter / "adapter_config.json"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "huge":
        with open(target, "wb") as handle:  # sparse: 5 MB without writing them
            handle.truncate(5 << 20)
    line = refused(["eval", "--model", adapter, "--tasks", "medqa", "--limit", "2", "--leaderboard-dir",
                    tmp_path / "board", "--device", "cpu"], capsys)
    assert f"adapter config {target} {expected}" in line  # was: exit 1, "this is a bug in medbench"
    assert not (tmp_path / "board" / "records").exists()


def ran(argv: list) -> None:
    try:
        main([str(arg) for arg in argv])
    except SystemExit as done:
        assert done.code in (0, None), done.code


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_take_the_umask_and_a_rewritten_file_keeps_its_mode(tmp_path, tiny_model_dir):
    board = tmp_path / "board"
    previous = os.umask(0o022)
    try:
        ran(["eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "2", "--leaderboard-dir", board,
             "--device", "cpu"])
        record = next(board.glob("records/*/medqa/record.json"))
        for path in (record, record.with_name("samples.jsonl"), board / "index.html", board / "leaderboard.json"):
            assert _mode(path) == 0o644, path  # was 0600: no one else could read a shared leaderboard
        (board / "index.html").chmod(0o640)
        (board / "leaderboard.md").chmod(0o664)
        ran(["leaderboard", "--dir", board, "--no-baselines"])
        assert _mode(board / "index.html") == 0o640 and _mode(board / "leaderboard.md") == 0o664
    finally:
        os.umask(previous)


@pytest.mark.parametrize("value", [",", " , ,", ""])
def test_a_format_option_naming_no_format_is_one_line(tmp_path, value, capsys):
    line = refused(["leaderboard", "--leaderboard-dir", tmp_path / "lb", "--format", value], capsys)
    assert "names no format" in line and not (tmp_path / "lb" / "leaderboard.md").exists()


def test_a_record_naming_a_key_twice_is_skipped_as_damaged(tmp_path):
    from medbench.records import RecordError, load_record

    path = tmp_path / "record.json"
    path.write_text('{"schema_version": 1, "metrics": {"acc": {"value": 0.2}}, "metrics": {"acc": {"value": 0.9}}}')
    with pytest.raises(RecordError, match="'metrics' is given twice"):
        load_record(path)
