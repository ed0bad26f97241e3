"""End-to-end on the embedded SmolLM2-135M-Instruct (converted once into the user cache)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_eval_medqa_limit_20_on_the_default_model(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "medbench.cli", "eval", "--tasks", "medqa", "--limit", "20"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "smollm2-135m-instruct" in result.stdout and "medqa" in result.stdout
    (record_path,) = (tmp_path / "leaderboard" / "records").glob("smollm2-135m-instruct-*/medqa/record.json")
    record = json.loads(record_path.read_text())
    assert record["n"] == 20 and record["model"]["kind"] == "embedded"
    assert record["model"]["parameters"] == 134_515_008
    samples = (record_path.parent / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 20
    assert (tmp_path / "leaderboard" / "leaderboard.md").exists()


CLINICAL_TASKS = ["uti", "hyponatremia", "clinical_reasoning", "triage", "discharge_summary", "adrd_prediction",
                  "instruction_following"]


def test_every_clinical_task_runs_on_the_default_model(tmp_path):
    """`medbench eval --tasks <each>` on the embedded model: one load, two items per task (the triage group
    expands to its two subtasks), every record with its primary metric."""
    from medbench.evaluation import EvalConfig, evaluate

    records = evaluate(None, EvalConfig(tasks=CLINICAL_TASKS, limit=2, output_dir=tmp_path))
    keys = [r["record_key"] for r in records]
    assert keys == ["uti", "hyponatremia", "clinical_reasoning", "triage_personnel", "triage_urgency",
                    "discharge_summary", "adrd_prediction", "instruction_following"]
    primary = {r["record_key"]: r["primary_metric"] for r in records}
    assert primary["discharge_summary"] == "rougeL"
    assert primary["instruction_following"] == "prompt_level_strict_acc"
    for record in records:
        assert record["n"] == 2 and record["score"] is not None, record["record_key"]


def test_generate_mode_with_the_chat_template_extracts_answers(tmp_path):
    """The instruct model answers in words under its chat template; the filter maps them to choices."""
    from medbench.evaluation import EvalConfig, evaluate
    from medbench.records import read_samples

    (record,) = evaluate(None, EvalConfig(tasks=["uti"], limit=4, output_dir=tmp_path, mode="generate",
                                          chat_template=True))
    assert record["record_key"] == "uti@gen@chat"
    samples = read_samples(record)
    assert all(s["response"] for s in samples)  # the model said something
    assert any(s["pred"] is not None for s in samples)  # and at least one answer named a choice
