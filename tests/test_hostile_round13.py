"""Hostile inputs, round 13: stale scores and overwritten records.

- A task folder's few-shot split (its train file) changed after scoring: `eval --num-fewshot N` served the old record
  ("reused: same weights, data and options") although every prompt it would score now differs.
- A task folder's YAML changed (prompt, choices) between two models' evals: both records sat in one column, compared
  and ranked as if scored on one task, with no word that one was scored on the older definition.
- Two levels of a sweep factor with one name (`{name: medqa, limit: 2}`, `{name: medqa, limit: 3}`): two cells, one
  record folder; the second cell overwrote the first's record and the first cell's marker still said done.
- A recipe seed no run accepts (-1, 2**64) passed --dry-run and failed every cell with numpy's ValueError.

Each test states the behaviour expected once fixed; they fail until then."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from test_hostile_round10 import _run
from test_task_inputs import one_line_error

TASK = {"task": "t", "dataset_path": "json", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Q: {{q}}", "doc_to_choice": ["no", "yes"], "doc_to_target": "{{label}}",
        "metric_list": [{"metric": "acc"}]}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _fewshot_folder(tmp_path: Path, demo: str) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir(exist_ok=True)
    _write_jsonl(folder / "test.jsonl", [{"q": f"question {i}", "label": i % 2} for i in range(4)])
    _write_jsonl(folder / "train.jsonl", [{"q": f"{demo} {i}", "label": i % 2} for i in range(6)])
    config = {**TASK, "training_split": "train", "fewshot_split": "train",
              "dataset_kwargs": {"data_files": {"test": str(folder / "test.jsonl"),
                                                "train": str(folder / "train.jsonl")}}}
    (folder / "t.yaml").write_text(json.dumps(config))
    return folder


def _samples(board: Path) -> list[dict]:
    [path] = board.glob("records/*/*/samples.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_changed_fewshot_split_is_scored_again_never_served_from_the_old_record(tmp_path, tiny_model_dir, capsys):
    """Expected: the second eval scores again (its prompts carry the new demonstrations); reuse needs the few-shot
    documents' hash to match too, not only the test split's (medbench.records.find_reusable)."""
    board = tmp_path / "lb"
    args = ["eval", "--model", str(tiny_model_dir), "--tasks", "t", "--limit", "2", "--num-fewshot", "2",
            "--leaderboard-dir", str(board)]
    folder = _fewshot_folder(tmp_path, "old demonstration")
    code, _ = _run(capsys, *args, "--include-path", str(folder))
    assert code == 0 and "old demonstration" in _samples(board)[0]["prompt"]
    _fewshot_folder(tmp_path, "NEW demonstration")
    code, err = _run(capsys, *args, "--include-path", str(folder))
    assert code == 0
    assert "reused" not in err, err
    assert all("NEW demonstration" in row["prompt"] for row in _samples(board))


def test_records_of_two_definitions_of_a_task_are_not_ranked_as_one_column(tmp_path, tiny_model_dir, capsys):
    """Expected: after the task YAML changed between model A's and model B's evals, the leaderboard keeps their
    records in separate columns, or the column carries a note that A was scored on an older definition."""
    from medbench.testing import make_tiny_model

    other = make_tiny_model(tmp_path / "other", seed=1)
    folder = tmp_path / "tasks"
    folder.mkdir()
    _write_jsonl(folder / "test.jsonl", [{"q": f"question {i}", "label": i % 2} for i in range(4)])
    board = tmp_path / "lb"

    def evaluate(model: Path, label: str, **overrides) -> None:
        config = {**TASK, "dataset_kwargs": {"data_files": {"test": str(folder / "test.jsonl")}}, **overrides}
        (folder / "t.yaml").write_text(json.dumps(config))
        code, err = _run(capsys, "eval", "--model", str(model), "--tasks", "t", "--include-path", str(folder),
                         "--limit", "4", "--label", label, "--leaderboard-dir", str(board), "--json")
        assert code == 0, err

    evaluate(tiny_model_dir, "A")
    evaluate(other, "B", doc_to_text="Is this right? {{q}}", doc_to_choice=["yes", "no"])
    table = json.loads((board / "leaderboard.json").read_text())
    notes = " ".join(str(note) for note in table.get("notes", []))
    assert len(table["columns"]) == 2 or ("A" in notes and "definition" in notes.lower()), (table["columns"], notes)


RECIPE = """\
name: twins
scales:
  toy:
    model: {model}
    seeds: [1]
grid:
  task:
    - {{name: medqa, limit: 2}}
    - {{name: medqa, limit: 3}}
  seed: "{{seeds}}"
cell:
  model: "{{model}}"
  steps: []
  eval:
    tasks: ["{{task}}"]
    limit: "{{limit}}"
"""


def test_two_grid_levels_of_one_name_never_share_a_record(tmp_path, tiny_model_dir, capsys):
    """Expected: either the plan refuses the two levels named 'medqa' of factor 'task' in one line (exit 2, nothing
    written), or each cell keeps a record of its own (each marker names a different record file)."""
    recipe = tmp_path / "twins.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir))
    out = tmp_path / "sweep"
    code, err = _run(capsys, "sweep", str(recipe), "--output-dir", str(out))
    if code == 2:
        line = one_line_error(code, err)
        assert "medqa" in line and "task" in line
        assert not list(out.glob("leaderboard/records/*/*/record.json"))
        return
    assert code == 0, err
    markers = [json.loads(path.read_text()) for path in sorted((out / "cells").glob("*.json"))]
    assert len(markers) == 2
    records = [tuple(marker["records"]) for marker in markers]
    assert records[0] != records[1], records  # one record per cell, neither overwritten by the other


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_a_recipe_seed_no_run_accepts_is_refused_at_plan_time(tmp_path, tiny_model_dir, capsys, seed):
    """Expected: `sweep --dry-run` stops in one line naming the seed and the range eval --seed takes (0 to
    4294967295), as `eval --seed -1` does; it had planned the cell and failed it later with numpy's ValueError."""
    recipe = tmp_path / "seeds.yaml"
    recipe.write_text(RECIPE.format(model=tiny_model_dir).replace("    - {name: medqa, limit: 3}\n", ""))
    code, err = _run(capsys, "sweep", str(recipe), "--dry-run", "--set", f"seeds=[{seed}]",
                     "--output-dir", str(tmp_path / "sweep"))
    line = one_line_error(code, err)
    assert "seed" in line and "4294967295" in line


@pytest.mark.parametrize("options", ["max_steps=1,max_steps=2", "max-steps=1,max_steps=2",
                                     '{"max_steps": 1, "max_steps": 2}'])
def test_a_wrapped_trainers_option_given_twice_is_refused_not_last_wins(tmp_path, tiny_model_dir, capsys, options):
    """Expected: one line naming max_steps given twice (as `--max-steps 1 --max-steps 2` is refused), exit 2,
    before any run folder is made; it had trained 2 steps silently (medbench.trainer_options._mapping)."""
    code, err = _run(capsys, "train", "--plugin", "curriculum", "--model", str(tiny_model_dir), "--task", "medqa",
                     "--ordering", "random", "--base", "sft", "--base-options", options, "--eval-limit", "1",
                     "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"))
    line = one_line_error(code, err)
    assert "max_steps" in line and ("twice" in line or "two values" in line)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


PLUGIN = '''from medbench import hookimpl


def constant(golds, preds):
    return {value}


@hookimpl
def register_metrics(register):
    register("constant_metric", constant, higher_is_better=True, description="a constant")
'''


def test_a_changed_metric_plugin_scores_again_never_serving_the_old_value(tmp_path, tiny_model_dir):
    """Expected: after the metric's plugin code changed (a --plugins-dir file edited, or an entry-point plugin
    upgraded), the record is not reused: its metric reads 0.9, not the 0.1 the old code gave. Reuse compares
    medbench's and the libraries' versions only, never the metric plugins' (medbench.records.find_reusable)."""
    import subprocess
    import sys

    folder = tmp_path / "tasks"
    folder.mkdir()
    _write_jsonl(folder / "test.jsonl", [{"q": f"question {i}", "label": i % 2} for i in range(4)])
    config = {**TASK, "dataset_kwargs": {"data_files": {"test": str(folder / "test.jsonl")}},
              "metadata": {"medbench_metrics": ["constant_metric"]}}
    (folder / "t.yaml").write_text(json.dumps(config))
    plugins, board = tmp_path / "plugins", tmp_path / "lb"
    plugins.mkdir()
    values = []
    for value in (0.1, 0.9):
        (plugins / "constant_plugin.py").write_text(PLUGIN.format(value=value))
        result = subprocess.run([sys.executable, "-m", "medbench.cli", "--plugins-dir", str(plugins), "eval",
                                 "--model", str(tiny_model_dir), "--tasks", "t", "--include-path", str(folder),
                                 "--limit", "4", "--leaderboard-dir", str(board)],
                                capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr
        [record] = board.glob("records/*/t/record.json")
        values.append(json.loads(record.read_text())["metrics"]["constant_metric"]["value"])
    assert values == [pytest.approx(0.1), pytest.approx(0.9)], values


def test_a_long_include_chain_is_refused_or_read_in_linear_work(tmp_path, capsys, monkeypatch):
    """A folder of 40 one-line YAMLs, each including the previous one: `tasks --include-path` parsed YAML 27,521
    times for 50 files (100 files: 133 s; 200: past 5 minutes, so an untrusted folder hangs medbench), since every
    file re-reads its whole chain, in medbench's vetting and in lm-eval's index, rebuilt once per task listed.
    Expected: either one line (exit 2) naming the include chain as too deep, or every file parsed a bounded number
    of times (here: at most 20 parses per file, no timing involved)."""
    import yaml

    folder = tmp_path / "chain"
    folder.mkdir()
    _write_jsonl(folder / "test.jsonl", [{"q": "a", "label": 1}])
    files = 40
    first = {k: v for k, v in TASK.items() if k != "task"}
    first["dataset_kwargs"] = {"data_files": {"test": str(folder / "test.jsonl")}}
    (folder / "i0.yaml").write_text(json.dumps(first))
    for i in range(1, files):
        (folder / f"i{i}.yaml").write_text(f"include: i{i - 1}.yaml\n")
    (folder / "t.yaml").write_text(f"include: i{files - 1}.yaml\ntask: t\n")
    parses = []
    real_load = yaml.load

    def counting_load(*args, **kwargs):
        parses.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(yaml, "load", counting_load)
    code, err = _run(capsys, "tasks", "--include-path", str(folder))
    if code == 2:
        assert "include" in one_line_error(code, err)
        return
    assert code == 0, err
    assert len(parses) <= 20 * (files + 1), f"{len(parses)} YAML parses for {files + 1} files"
