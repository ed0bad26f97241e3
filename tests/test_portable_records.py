"""Records name files relative to their leaderboard or by reference to a known root, never by this machine's
absolute paths: a copied leaderboard (the committed demo) reads the same, and --baseline still takes a path."""

import json
import shutil
from pathlib import Path

from medbench.evaluation import EvalConfig, evaluate
from medbench.leaderboard import build_table
from medbench.portable import portable_path, portable_paths


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_a_written_record_holds_no_absolute_path(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path / "lb"))
    stored = json.loads(Path(record["_path"]).read_text())
    leaks = [s for s in strings(stored) if s.startswith("/") or str(tmp_path) in s or str(Path.home()) in s]
    assert leaks == []
    assert stored["task"]["yaml"] == "bundled-tasks:medqa/medqa.yaml"
    assert (tmp_path / "lb" / stored["model"]["path"]).resolve() == tiny_model_dir.resolve()  # relative to the board
    # a board moved elsewhere still renders, and --baseline still takes the path as typed on this machine
    moved = tmp_path / "elsewhere" / "lb"
    shutil.copytree(tmp_path / "lb", moved)
    table = build_table(tmp_path / "lb", baseline=str(tiny_model_dir))
    assert table.baseline is not None and table.baseline.model["path"] == stored["model"]["path"]
    assert len(build_table(moved).rows) == 1


def test_portable_path_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    board = tmp_path / "runs" / "demo" / "leaderboard"
    checkpoint = tmp_path / "runs" / "demo" / "sft" / "checkpoint-53"
    checkpoint.mkdir(parents=True)
    assert portable_path(str(checkpoint), board) == "../sft/checkpoint-53"
    assert portable_path("runs/demo/sft/checkpoint-53", board) == "../sft/checkpoint-53"  # relative to the cwd
    assert portable_path("HuggingFaceTB/SmolLM2-135M-Instruct", board) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert portable_path("smollm2-135m-instruct", board) == "smollm2-135m-instruct"
    assert portable_path("bundled-tasks:uti/uti.yaml", board) == "bundled-tasks:uti/uti.yaml"  # already portable
    assert portable_path("/srv/models/llama-8b", board) == "external:llama-8b"  # far away: named, not located
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    assert portable_path(str(tmp_path / "cache" / "models" / "m"), board) == "medbench-cache:models/m"
    nested = portable_paths({"model": {"path": str(checkpoint), "label": str(checkpoint)},
                             "samples_file": "samples.jsonl", "extra": [{"pairs_file": str(checkpoint)}]}, board)
    assert nested == {"model": {"path": "../sft/checkpoint-53", "label": str(checkpoint)},
                      "samples_file": "samples.jsonl", "extra": [{"pairs_file": "../sft/checkpoint-53"}]}


def test_a_users_data_file_is_stored_relative_to_the_board(tiny_model_dir, tmp_path, monkeypatch):
    from medbench.trainingdata import load_training_examples  # noqa: F401  (the bundled task must exist)

    monkeypatch.chdir(tmp_path)
    rows = (Path(__file__).resolve().parents[1] / "tasks" / "medqa" / "data").glob("test*.jsonl")
    source = next(iter(rows))
    mine = tmp_path / "data" / "medqa_test.jsonl"
    mine.parent.mkdir()
    mine.write_text("".join(source.read_text().splitlines(keepends=True)[:3]))
    config = EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path / "lb",
                        task_metadata={"medqa": {"data_files": {"test": str(mine)}}})
    (record,) = evaluate(str(tiny_model_dir), config)
    stored = json.loads(Path(record["_path"]).read_text())
    assert [s for s in strings(stored) if s.startswith("/") or str(tmp_path) in s] == []
    assert "../data/medqa_test.jsonl" in list(strings(stored))


def test_a_name_no_file_system_holds_is_kept_as_written(tmp_path):
    long_label = "m" * 300  # one path part over 255 bytes: exists() raises "File name too long"
    assert portable_path(long_label, tmp_path) == long_label
    assert portable_path("/" + long_label + "/ckpt", tmp_path) == "/" + long_label + "/ckpt"
