"""The command line: one-line errors that name the problem and the fix, non-zero exits, no tracebacks."""

import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def medbench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "medbench.cli", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=600)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.mark.parametrize("args,fragments", [
    (["eval", "--tasks", "nosuchtask"], ["unknown task 'nosuchtask'", "medbench tasks"]),
    (["eval", "--tasks", "medqa", "--limit", "0"], ["--limit must be a positive"]),
    (["eval", "--tasks", "medqa", "--model", "/no/such/model"], ["'/no/such/model' does not exist"]),
    (["eval", "--tasks", "medqa", "--data-file", "medqa"], ["is not TASK=PATH"]),
    (["train", "--plugin", "nosuch", "--task", "medqa"], ["unknown trainer plugin 'nosuch'", "known:"]),
    (["leaderboard", "--dir", "empty-dir"], ["no records under", "medbench eval"]),
    (["--plugins-dir", "/no/such/dir", "plugins"], ["does not exist"]),
])
def test_bad_input_gets_one_line_error(args, fragments, tmp_path):
    result = medbench(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert result.returncode == 2


def test_debug_shows_the_traceback(tmp_path):
    result = medbench("--debug", "eval", "--tasks", "nosuchtask", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_tasks_command_lists_split_sizes_and_metric():
    result = medbench("tasks", "--json")
    assert result.returncode == 0, result.stderr
    import json

    rows = {row["task"]: row for row in json.loads(result.stdout)["tasks"]}
    assert rows["medqa"]["splits"] == {"train": 60, "validation": 20, "test": 40}
    assert rows["medqa"]["metric"] == "acc" and rows["medqa"]["plugin"] == "builtin_tasks"
    groups = {group["group"]: group for group in json.loads(result.stdout)["groups"]}  # --tasks triage: both
    assert groups["triage"]["tasks"] == ["triage_personnel", "triage_urgency"]
    listed = medbench("tasks")
    assert "group triage (builtin_tasks): triage_personnel, triage_urgency" in listed.stdout
    assert "lm-eval's own tasks, groups and tags also run by name: --tasks pubmedqa, multimedqa" in listed.stdout


def test_eval_command_with_a_user_data_file(tiny_model_dir, tmp_path):
    import json

    rows = [{"question": f"Q{i}?", "answer": "x", "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
             "answer_idx": "A", "meta_info": "step1"} for i in range(3)]
    (tmp_path / "mine.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = medbench("eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--data-file",
                      "medqa=mine.jsonl", "--label", "tiny<script>", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "medqa" in result.stdout
    record = json.loads(next((tmp_path / "leaderboard" / "records").glob("*/medqa-data-*/record.json")).read_text())
    assert record["n"] == 3 and record["model"]["label"] == "tiny<script>"
    markdown = (tmp_path / "leaderboard" / "leaderboard.md").read_text()
    assert "tiny&lt;script&gt;" in markdown and "<script>" not in markdown


def test_json_output_is_for_scripts_and_the_messages_stay_on_stderr(medbench_cli, tiny_model_dir, tmp_path):
    import json

    board = tmp_path / "lb"
    scored = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "3", "--leaderboard-dir",
                          board, "--json")
    assert scored.exit_code == 0, scored.output
    out = json.loads(scored.stdout)  # stdout is JSON and nothing else
    (record,) = out["records"]
    assert record["task"]["name"] == "medqa" and record["n"] == 3 and 0 <= record["score"] <= 1
    assert record["path"].endswith("record.json") and record["reused"] is False and out["leaderboard"]
    again = json.loads(medbench_cli("eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "3",
                                    "--leaderboard-dir", board, "--json").stdout)
    assert again["records"][0]["reused"] is True

    trained = medbench_cli("train", "--plugin", "sft", "--model", tiny_model_dir, "--task", "medqa", "--output-dir",
                           tmp_path / "runs", "--leaderboard-dir", board, "--eval-limit", "3", "--max-steps", "1",
                           "--json")
    assert trained.exit_code == 0, trained.output
    run = json.loads(trained.stdout)
    assert run["checkpoints"] and run["run_dir"] and {r["task"]["name"] for r in run["records"]} == {"medqa"}

    table = json.loads(medbench_cli("leaderboard", "--dir", board, "--no-baselines", "--json").stdout)
    assert table["columns"] == ["medqa"] and len(table["rows"]) == 2
