"""Data-parallel training through accelerate: a real 2-process run on CPU (gloo)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Loaded into every process from --plugins-dir: logs which rank writes medbench's files (the test's spy, not medbench).
WRITE_SPY = """
import os
import medbench.records as records

_write = records.atomic_write_text

def spying_write(path, text):
    with open(os.environ["WRITE_LOG"], "a") as log:
        log.write(f"{os.environ.get('RANK', '0')} {path}\\n")
    return _write(path, text)

records.atomic_write_text = spying_write
"""


@pytest.mark.timeout(600)
def test_two_process_training_ranks_agree_and_only_rank_zero_writes(tmp_path, tiny_model_dir):
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "write_spy.py").write_text(textwrap.dedent(WRITE_SPY))
    log = tmp_path / "writes.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WRITE_LOG": str(log)}
    command = [sys.executable, "-m", "medbench.cli", "--plugins-dir", str(spy), "train", "--plugin", "sft",
               "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "2",
               "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--run-name", "ddp",
               "--num-processes", "2", "--max-steps", "2", "--max-examples", "8", "--train-batch-size", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "launching 2 training processes" in done.stderr
    manifest = json.loads((tmp_path / "runs" / "ddp" / "medbench_run.json").read_text())
    assert manifest["status"] == "complete" and manifest["world_size"] == 2
    assert len(manifest["ranks"]) == 2 and manifest["ranks"][0] == manifest["ranks"][1]  # DDP kept them equal
    writes = log.read_text().splitlines()
    assert writes, "the spy saw no writes"
    assert {line.split()[0] for line in writes} == {"0"}, f"a non-zero rank wrote: {writes}"
    records = list((tmp_path / "lb" / "records").glob("*/*/record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["n"] == 2


def test_disagreeing_ranks_are_refused(tmp_path, monkeypatch):
    import dataclasses

    from medbench import training
    from medbench.errors import MedbenchError

    @dataclasses.dataclass
    class NoOptions:
        pass

    class Lying:
        name, description, config_class = "lying", "returns ranks that disagree", NoOptions

        def train(self, request):
            path = request.output_dir / "checkpoint-1"
            path.mkdir(parents=True)
            return [training.CheckpointInfo(path=path, kind="model", step=1, final=True,
                                            metrics={"rank_weights_hashes": ["aaaa", "bbbb"]})]

    monkeypatch.setattr(training, "get_trainer", lambda name: Lying())
    request = training.TrainRequest(model_ref="m", task="medqa", output_dir=tmp_path / "run",
                                    config=Lying.config_class())
    (tmp_path / "run").mkdir()
    with pytest.raises(MedbenchError, match="ended with different weights"):
        training.train("lying", request, "run")
    manifest = json.loads((tmp_path / "run" / "medbench_run.json").read_text())
    assert manifest["status"] == "failed" and manifest["ranks"] == ["aaaa", "bbbb"]
    assert not (tmp_path / "run" / "checkpoint-1" / "medbench_manifest.json").exists()
