"""Records are untrusted input: the leaderboard reads a training manifest only from the record's own folder.

medbench copies the checkpoint's medbench_manifest.json beside the record when it writes it, so its own records
keep their training details on the page; a crafted record naming any other folder gets nothing from there.
"""

import json
import os
from pathlib import Path

import pytest

from medbench.leaderboard import build_table, render, training_info
from medbench.records import MANIFEST_COPY, read_records, write_record

SECRET = "secret-config-value-from-elsewhere"


def _manifest(run_id: str, **config) -> dict:
    return {"run_id": run_id, "plugin": "sft", "parent_model": "base-model", "task": "medqa", "kind": "lora",
            "step": 4, "final": True, "config": {"learning_rate": 2e-4, **config}, "data_hash": "abc123",
            "seed": 7, "train_metrics": {"loss": 1.25}, "created": "2026-01-01T00:00:00Z"}


def _record(label: str, checkpoint: Path | str, run_id: str) -> dict:
    samples_n = 4
    return {
        "record_key": "medqa",
        "task": {"name": "medqa", "version": 1.0, "plugin": "test", "split": "test", "num_fewshot": 0,
                 "data_hash": "data-medqa", "split_size": samples_n},
        "model": {"label": label, "ref": str(checkpoint), "kind": "local", "path": str(checkpoint),
                  "base_ref": None, "weights_hash": f"w-{label}", "parameters": 1000},
        "metrics": {"acc": {"value": 0.5, "stderr": 0.1}}, "primary_metric": "acc", "score": 0.5,
        "stderr": 0.1, "n": samples_n,
        "config": {"batch_size": 8, "label": label, "limit": None, "num_fewshot": None, "seed": 1,
                   "task_metadata": {}, "chat_template": False},
        "seed": 1, "versions": {"medbench": "0.1.0"}, "created": "2026-01-02T00:00:00Z",
        "extra": {"run_id": run_id, "plugin": "sft", "checkpoint": str(checkpoint), "step": 4, "final": True},
    }


def _samples(n: int = 4) -> list[dict]:
    return [{"doc_id": i, "gold": i % 4, "pred": 0, "acc": float(i % 4 == 0), "prompt": f"q{i}"} for i in range(n)]


def _checkpoint(folder: Path, manifest: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "medbench_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_a_record_medbench_writes_keeps_its_training_details(tmp_path):
    checkpoint = _checkpoint(tmp_path / "runs" / "sft" / "checkpoint-4", _manifest("run-1"))
    board = tmp_path / "board"
    path = write_record(board, _record("sft-run", checkpoint, "run-1"), _samples())
    assert json.loads((path.parent / MANIFEST_COPY).read_text())["run_id"] == "run-1"

    # the checkpoint folder may go away later: the page keeps what trained it
    (checkpoint / "medbench_manifest.json").unlink()
    [record] = read_records(board)
    info = training_info(record)
    assert info["source"] == "checkpoint manifest"
    assert info["config"]["learning_rate"] == 2e-4 and info["data_hash"] == "abc123" and info["seed"] == 7


def test_a_crafted_record_cannot_make_the_leaderboard_read_another_folder(tmp_path, monkeypatch):
    elsewhere = _checkpoint(tmp_path / "someone-elses" / "run", _manifest("run-x", note=SECRET))
    board = tmp_path / "board"
    folder = board / "records" / "crafted-0123456789ab" / "medqa"
    folder.mkdir(parents=True)
    crafted = _record("crafted", elsewhere, "run-x")
    crafted.update(schema=1, samples_file="samples.jsonl")
    (folder / "record.json").write_text(json.dumps(crafted), encoding="utf-8")
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in _samples()), encoding="utf-8")

    opened: list[Path] = []
    real_read_text, real_open = Path.read_text, Path.open

    def spy_read_text(self, *args, **kwargs):
        opened.append(Path(self).resolve())
        return real_read_text(self, *args, **kwargs)

    def spy_open(self, *args, **kwargs):
        opened.append(Path(self).resolve())
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", spy_read_text)
    monkeypatch.setattr(Path, "open", spy_open)
    [record] = read_records(board)
    info = training_info(record)
    build_table(board)
    paths = render(board, ["md", "json", "html"])
    monkeypatch.undo()

    assert info["plugin"] == "sft" and "config" not in info and "source" not in info
    outside = elsewhere.resolve()
    assert not [p for p in opened if p.is_relative_to(outside)]
    for page in paths:
        assert SECRET not in page.read_text(encoding="utf-8")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_manifest_link_out_of_the_record_folder_is_not_followed(tmp_path):
    checkpoint = _checkpoint(tmp_path / "runs" / "ok", _manifest("run-1"))
    board = tmp_path / "board"
    path = write_record(board, _record("linked", checkpoint, "run-1"), _samples())
    elsewhere = _checkpoint(tmp_path / "elsewhere", _manifest("run-1", note=SECRET))
    copy = path.parent / MANIFEST_COPY
    copy.unlink()
    copy.symlink_to(elsewhere / "medbench_manifest.json")
    [record] = read_records(board)
    info = training_info(record)
    assert "config" not in info


def test_rescoring_another_checkpoint_into_the_folder_drops_a_stale_copy(tmp_path):
    checkpoint = _checkpoint(tmp_path / "runs" / "a", _manifest("run-1"))
    board = tmp_path / "board"
    path = write_record(board, _record("same", checkpoint, "run-1"), _samples())
    assert (path.parent / MANIFEST_COPY).exists()
    write_record(board, _record("same", tmp_path / "runs" / "no-manifest", "run-1"), _samples())
    assert not (path.parent / MANIFEST_COPY).exists()
