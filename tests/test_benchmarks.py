"""The benchmark scripts run end to end at a tiny size on a CPU (a smoke run: no timing is asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    env.pop("MEDBENCH_PEAK_TFLOPS", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


@pytest.mark.parametrize("trainer", ["sft", "dpo"])
def test_bench_train_tiny_prints_both_rows(tmp_path, trainer):
    out = tmp_path / "figures.json"
    done = run_script(str(BENCHMARKS / "bench_train.py"), "--tiny", "--trainer", trainer, "--threads", "1",
                      "--json", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert any(line.strip().startswith("plain TRL") for line in lines), done.stdout
    assert any(line.strip().startswith("medbench") for line in lines), done.stdout
    assert any(line.strip().startswith("ratio") for line in lines), done.stdout
    figures = json.loads(out.read_text())
    for side in ("plain", "medbench"):
        assert figures[side]["train_tokens_per_s"] > 0 and figures[side]["peak_memory_gb"] > 0
        assert figures[side]["mfu"] is None  # a CPU has no known peak
    # the same first batch from the same weights: the same first loss
    assert figures["medbench"]["first_loss"] == pytest.approx(figures["plain"]["first_loss"], rel=1e-4)
    assert figures["medbench"]["checkpoint_metrics"]["train_tokens_per_s"] == figures["medbench"]["train_tokens_per_s"]


def test_bench_eval_tiny_prints_both_rows(tmp_path):
    done = run_script(str(BENCHMARKS / "bench_eval.py"), "--tiny", "--items", "4", "--repeats", "1",
                      tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert "lm-eval HFLM" in done.stdout and "medbench prefix" in done.stdout, done.stdout
