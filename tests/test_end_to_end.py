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
