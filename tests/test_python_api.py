"""The Python API (medbench.evaluate / train / sweep): typed results, the same path as the command line, one
MedbenchError for bad input, a cheap ``import medbench``, and the README's example run as written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import medbench
from medbench.errors import MedbenchError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_evaluate_returns_records_and_shares_the_command_line_path(tiny_model_dir, tmp_path, medbench_cli):
    board = tmp_path / "lb"
    result = medbench.evaluate(str(tiny_model_dir), "medqa", limit=4, batch_size=2, leaderboard_dir=board)
    assert isinstance(result, medbench.EvalResult)
    assert list(result.scores()) == ["medqa"] and 0 <= result.scores()["medqa"] <= 1
    assert result.records[0]["n"] == 4 and all(path.exists() for path in result.leaderboard)
    # the command line finds the record the API wrote: same weights, data and options, so the same record
    cli = medbench_cli("eval", "--model", str(tiny_model_dir), "--tasks", "medqa", "--limit", "4", "--batch-size",
                       "2", "--leaderboard-dir", str(board))
    assert cli.exit_code == 0, cli.output
    assert "records: 0 written, 1 reused (same weights, data and options" in " ".join(cli.output.split())


def test_train_returns_its_checkpoints_and_their_scores(tiny_model_dir, tmp_path):
    result = medbench.train("sft", "medqa", str(tiny_model_dir), options={"max_steps": 1, "max_examples": 4,
                                                                         "train_batch_size": 2},
                            eval_limit=3, output_dir=tmp_path / "runs", leaderboard_dir=tmp_path / "lb",
                            run_name="api")
    assert isinstance(result, medbench.TrainResult)
    assert result.run_id == "api" and result.run_dir == tmp_path / "runs" / "api"
    (checkpoint,) = result.checkpoints
    assert checkpoint.final and checkpoint.step == 1 and Path(checkpoint.path).parent == result.run_dir
    (record,) = result.records
    assert record["extra"]["training"]["run_id"] == "api" and record["n"] == 3


def test_sweep_plans_as_the_command_line_does(medbench_cli, tmp_path):
    planned = medbench.sweep("sft_vs_dpo", scale="toy", output_dir=tmp_path / "s", dry_run=True)
    assert isinstance(planned, medbench.SweepResult) and planned.cells == [] and planned.failed == []
    cli = medbench_cli("sweep", "sft_vs_dpo", "--scale", "toy", "--output-dir", str(tmp_path / "s"), "--dry-run",
                       "--json")
    assert cli.exit_code == 0, cli.output
    assert [c.key for c in planned.plan.cells] == [c["id"] for c in json.loads(cli.output)["cells"]]


@pytest.mark.parametrize("call,message", [
    (lambda: medbench.evaluate(tasks=[]), "no tasks given"),
    (lambda: medbench.evaluate(tasks="medqa", limt=4), "evaluate\\(\\) has no option limt .*limit"),
    (lambda: medbench.evaluate(tasks="medqa", device="tpu9"), "tpu9"),
    (lambda: medbench.train("no_such_trainer", "medqa"), "no_such_trainer"),
    (lambda: medbench.train("sft", "medqa", eval_limt=4), "train\\(\\) has no option eval_limt .*eval_limit"),
    (lambda: medbench.train("sft", "medqa", options={"max_stepz": 2}), "has no option max_stepz"),
    (lambda: medbench.train("sft", "medqa", report_to="comet"), "'comet' is not a tracker"),
    (lambda: medbench.sweep("no_such_recipe", dry_run=True), "no_such_recipe"),
])
def test_bad_input_raises_one_medbench_error(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written before the error; if it were, not into the checkout
    with pytest.raises(MedbenchError, match=message) as raised:
        call()
    assert raised.value.fix and "\n" not in raised.value.one_line()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options,message", [
    ({"max_steps": 0}, "max_steps must be 1 to .* train num_epochs, got 0 — pass max_steps 1 or more"),
    ({"max_examples": 99999}, "max_examples 99999 but .* — pass max_examples 60 or fewer"),  # a check made later
    ({"lora_dropout": 2}, r"lora_dropout must lie in \[0, 1\), got 2 — pass lora_dropout 0.05"),
])
def test_a_trainers_own_checks_spell_options_as_python_keys(options, message, tmp_path, monkeypatch):
    """The docs promise ``max_steps``, not ``--max-steps``, in the Python API: the checks of TrlOptions and of
    every trainer (which spell flags) are respelt for the options of the trainers built."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MedbenchError, match=message) as raised:
        medbench.train("sft", "medqa", options=options)
    assert "--" not in raised.value.one_line()


def test_import_medbench_stays_cheap():
    code = ("import sys, medbench; medbench.evaluate, medbench.train, medbench.sweep; "
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def readme_python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


@pytest.mark.e2e
def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_python_example(), "README.md", "exec"), {})
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list((tmp_path / "leaderboard" / "records").rglob("record.json"))) == 2
