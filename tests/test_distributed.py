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


def write_spy(tmp_path):
    """The spy's plugin folder, its log, and the environment that turns it on."""
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "write_spy.py").write_text(textwrap.dedent(WRITE_SPY))
    log = tmp_path / "writes.log"
    return spy, log, {**os.environ, "HF_HUB_OFFLINE": "1", "WRITE_LOG": str(log)}


@pytest.mark.timeout(600)
def test_two_process_training_ranks_agree_and_only_rank_zero_writes(tmp_path, tiny_model_dir):
    spy, log, env = write_spy(tmp_path)
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


# --- data-parallel evaluation (`medbench eval --num-processes`) ----------------------------------------------------

def _scored(board):
    """{task: (record, samples)} of a leaderboard folder."""
    out = {}
    for path in sorted((board / "records").glob("*/*/record.json")):
        samples = [json.loads(line) for line in (path.parent / "samples.jsonl").read_text().splitlines()]
        out[path.parent.name] = (json.loads(path.read_text()), samples)
    return out


@pytest.mark.timeout(600)
def test_two_process_eval_equals_one_process_and_only_rank_zero_writes(tmp_path, tiny_model_dir):
    spy, log, env = write_spy(tmp_path)
    # 5 items a task over 2 ranks: uneven shards (3 + 2), so lm-eval pads one rank's requests.
    scored = ["eval", "--model", str(tiny_model_dir), "--tasks", "medqa,hyponatremia", "--limit", "5", "--label", "tiny"]
    one = subprocess.run([sys.executable, "-m", "medbench.cli", *scored, "--leaderboard-dir", "one"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "medbench.cli", "--plugins-dir", str(spy), *scored,
                          "--leaderboard-dir", "two", "--num-processes", "2"], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "launching 2 evaluation processes" in two.stderr
    assert two.stdout.count("results") == 1  # one table, from rank 0

    writes = log.read_text().splitlines()
    assert writes and {line.split()[0] for line in writes} == {"0"}, f"a non-zero rank wrote: {writes}"
    files = {board: sorted(str(p.relative_to(tmp_path / board)) for p in (tmp_path / board).rglob("*") if p.is_file())
             for board in ("one", "two")}
    assert files["one"] == files["two"]  # the same records and pages, no request cache left behind

    one_scored, two_scored = _scored(tmp_path / "one"), _scored(tmp_path / "two")
    assert sorted(one_scored) == ["hyponatremia", "medqa"] and sorted(two_scored) == sorted(one_scored)
    for task, (record, samples) in one_scored.items():
        record2, samples2 = two_scored[task]
        assert record2["n"] == record["n"] == len(samples2) == len(samples)
        assert record2["record_key"] == record["record_key"] and record2["model"] == record["model"]
        for name, metric in record["metrics"].items():  # order restored: bootstrap stderrs agree too
            assert record2["metrics"][name]["value"] == pytest.approx(metric["value"], abs=1e-9)
            if metric["stderr"] is not None:
                assert record2["metrics"][name]["stderr"] == pytest.approx(metric["stderr"], rel=1e-6)
        for row, row2 in zip(samples, samples2):
            assert {k: v for k, v in row2.items() if k != "logliks"} == {k: v for k, v in row.items() if k != "logliks"}
            # another batch composition: the same log-likelihoods up to float rounding
            assert row2["logliks"] == pytest.approx(row["logliks"], abs=1e-4)


def test_eval_num_processes_bad_values_are_one_line_before_any_work(tmp_path, monkeypatch):
    from medbench.testing import invoke_cli

    monkeypatch.chdir(tmp_path)
    base = ["eval", "--model", "unused", "--tasks", "medqa", "--leaderboard-dir", str(tmp_path / "lb")]
    for extra, problem in [(["--num-processes", "0"], "--num-processes must be a positive number of processes, got 0"),
                           (["--num-processes", "two"], "--num-processes must be a whole number, got 'two'"),
                           (["--num-processes", str((os.cpu_count() or 1) + 1)], "CPU core(s)"),
                           (["--num-processes", "2", "--tasks", "medqa,no_such_task"], "no_such_task")]:
        result = invoke_cli(*base, *extra)
        assert result.exit_code == 2, result.output
        assert problem in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "lb").exists()


def test_eval_num_processes_needs_a_device_per_process(monkeypatch):
    import torch

    from medbench.commands.launch import check_processes
    from medbench.errors import MedbenchError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_processes(2, "auto")
    with pytest.raises(MedbenchError, match="--device cuda:0 with --num-processes 2: each process takes a device"):
        check_processes(2, "cuda:0")
    with pytest.raises(MedbenchError, match="--device cpu with --num-processes 2"):
        check_processes(2, "cpu")  # the GPUs' launcher joins processes over NCCL, which a CPU model cannot use
    with pytest.raises(MedbenchError, match="--num-processes 3 but this machine has 2 GPU"):
        check_processes(3, "auto")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MedbenchError, match="inside a launch of 2 processes"):
        check_processes(2, "auto")


def test_gathered_results_come_back_in_document_order():
    from medbench.dataparallel import in_document_order

    # What lm-eval gathers from 2 ranks for 5 documents: rank 0 scored documents 0, 2, 4 and rank 1 documents 1, 3,
    # per-item metrics per (metric, filter), logged samples filter by filter.
    def samples(docs):
        return [{"doc_id": d, "filter": f} for f in ("strict", "flexible") for d in docs]

    per_rank = [{"t": {("acc", "strict"): [0, 2, 4]}, "s": samples([0, 2, 4])},
                {"t": {("acc", "strict"): [1, 3]}, "s": samples([1, 3])}]
    merged = in_document_order(per_rank)
    assert merged["t"] == {("acc", "strict"): [0, 1, 2, 3, 4]}
    assert merged["s"] == samples([0, 1, 2, 3, 4])
    # a rank with no documents (more processes than items) adds nothing
    assert in_document_order([{"t": {("acc", "none"): [7]}}, {"t": {}}]) == {"t": {("acc", "none"): [7]}}
