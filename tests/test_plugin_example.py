"""The example plugin package (examples/medbench-plugin-example), installed into the venv the way a third-party
plugin is (`make setup` runs `pip install -e examples/medbench-plugin-example`). Its own tests, in its tests/
folder, run with this suite too (pyproject's testpaths)."""

import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medbench.testing import read_leaderboard
from medbench.training import MANIFEST_NAME

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "medbench-plugin-example"
TASK, TRAINER, METRIC = "drug_interaction", "orpo", "cohen_kappa"


@pytest.fixture(scope="module", autouse=True)
def example_installed():
    try:
        dist = md.distribution("medbench-plugin-example")
    except md.PackageNotFoundError:
        pytest.fail("the example plugin is not installed: run `make setup`, or "
                    ".venv/bin/pip install --no-deps --no-build-isolation -e examples/medbench-plugin-example")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct_url.get("url", "").endswith("examples/medbench-plugin-example"), direct_url  # this checkout's
    return dist


def test_plugins_lists_the_example_with_its_package_and_hooks(medbench_cli):
    result = medbench_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["example"] == {"name": "example", "version": "0.1.0", "package": "medbench-plugin-example",
                               "source": "entry point",
                               "hooks": ["register_metrics", "register_tasks", "register_trainers"],
                               "provides": {"tasks": ["drug_interaction"], "trainers": ["orpo"],
                                            "metrics": ["cohen_kappa"]}}
    table = medbench_cli("plugins")
    assert table.exit_code == 0 and "example" in table.output


def test_eval_runs_the_example_task_and_its_metric(medbench_cli, tiny_model_dir, leaderboard_dir):
    result = medbench_cli("eval", "--model", tiny_model_dir, "--tasks", TASK, "--limit", "6",
                          "--leaderboard-dir", leaderboard_dir)
    assert result.exit_code == 0, result.output
    (record,) = read_leaderboard(leaderboard_dir)
    assert record["task"]["name"] == TASK and record["task"]["plugin"] == "example"
    assert record["n"] == 6 and len(record["samples"]) == 6
    assert record["primary_metric"] == "acc" and {"acc", METRIC, "f1"} <= set(record["metrics"])
    assert [sample["gold"] for sample in record["samples"]] == [0, 1, 1, 0, 1, 0]  # the test file's order


def test_train_with_the_example_trainer_scores_its_checkpoint(medbench_cli, tiny_model_dir, tmp_path,
                                                              leaderboard_dir):
    result = medbench_cli("train", "--plugin", TRAINER, "--model", tiny_model_dir, "--task", TASK,
                          "--eval-limit", "4", "--output-dir", tmp_path / "runs", "--leaderboard-dir",
                          leaderboard_dir, "--max-steps", "2", "--train-batch-size", "2", "--max-examples", "4",
                          "--beta", "0.2")
    assert result.exit_code == 0, result.output
    (checkpoint,) = (tmp_path / "runs").glob("*/checkpoint-2")
    manifest = json.loads((checkpoint / MANIFEST_NAME).read_text())
    assert manifest["plugin"] == TRAINER and manifest["kind"] == "adapter" and manifest["final"]
    assert manifest["config"]["beta"] == 0.2 and manifest["train_metrics"]["loss"] > 0
    assert "log_odds_ratio" in manifest["train_metrics"]  # ORPO's own term, logged by TRL
    adapter_config = json.loads((checkpoint / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    (record,) = read_leaderboard(leaderboard_dir)
    assert record["model"]["kind"] == "peft" and record["model"]["label"].startswith(f"{TRAINER}:")
    assert record["n"] == 4 and METRIC in record["metrics"]


def test_the_example_trainer_refuses_a_task_without_wrong_answers(tiny_model_dir, tmp_path):
    from medbench.errors import MedbenchError
    from medbench.training import TrainRequest, build_config, get_trainer
    from medbench.trainingdata import TrainingExample

    trainer = get_trainer(TRAINER)
    config = build_config(trainer.config_class, {}, {"max_steps": "1"}, TRAINER)
    request = TrainRequest(model_ref=str(tiny_model_dir), task="free_text", output_dir=tmp_path / "run",
                           config=config, examples=[TrainingExample(0, "Q: ?\nA:", " text", answer="text")])
    with pytest.raises(MedbenchError, match="task 'free_text' gives no wrong answers .*multiple_choice"):
        trainer.train(request)
    with pytest.raises(MedbenchError, match="--beta must be positive, got -1.0 .*--beta"):
        build_config(trainer.config_class, {}, {"beta": "-1"}, TRAINER)


@pytest.mark.e2e
def test_eval_of_the_example_task_on_the_default_model(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "medbench.cli", "eval", "--tasks", TASK, "--limit", "10"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = read_leaderboard(tmp_path / "leaderboard")
    assert record["model"]["kind"] == "embedded" and record["n"] == 10
    assert -1 <= record["metrics"][METRIC]["value"] <= 1


def test_the_example_data_cannot_be_answered_from_a_drug_name():
    """Each drug is in one interacting and one non-interacting pair of its split, and in one split only, so
    the answer is in the pair: word-level baselines trained on the train split score chance on the test split."""
    from medbench.baselines import task_baseline

    data = EXAMPLE / "src" / "medbench_plugin_example" / "tasks" / TASK / "data"
    split_of = {}
    for split in ("train", "validation", "test"):
        answers: dict[str, list[str]] = {}
        for line in (data / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            for drug in (row["drug_a"], row["drug_b"]):
                answers.setdefault(drug, []).append(row["interaction"])
                assert split_of.setdefault(drug, split) == split, f"{drug} is in {split_of[drug]} and {split}"
        assert all(sorted(found) == ["no", "yes"] for found in answers.values()), answers
    result = task_baseline(TASK)
    assert result.n_test == 20 and result.majority == 0.5
    assert result.bow_lr <= 0.6 and result.rule2 <= 0.6, result


def test_the_example_trainer_trains_in_the_chat_template_it_is_scored_in(tiny_model_dir, tmp_path):
    """--chat-template and --system-prompt, which every TrlOptions trainer takes, reach the pairs: the example
    (and so every scaffolded plugin) once trained raw whatever they said."""
    from medbench.training import TrainRequest, build_config, get_trainer
    from medbench.trainingdata import load_training_examples
    from medbench_plugin_example.trainer import prepare

    trainer = get_trainer(TRAINER)
    config = build_config(trainer.config_class, {}, {"max_steps": "1", "max_examples": "2", "chat_template": "true",
                                                     "system_prompt": "Be brief."}, TRAINER)
    request = TrainRequest(model_ref=str(tiny_model_dir), task=TASK, output_dir=tmp_path / "run", config=config,
                           examples=load_training_examples(TASK))
    run = prepare(request)
    first = run.trainer.processing_class.decode(run.trainer.train_dataset[0]["prompt_input_ids"])
    assert "Be brief." in first and "<|user|>" in first and first.rstrip().endswith("<|assistant|>")
