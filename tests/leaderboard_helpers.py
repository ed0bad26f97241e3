"""Synthetic leaderboard records for the leaderboard tests, written through medbench.records.write_record."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any


def make_record(root: Path, label: str, task: str, golds: list[Any], preds: list[Any], *,
                weights: str | None = None, seed: int = 1234, created: str = "2026-01-01T00:00:00Z",
                training: dict[str, Any] | None = None, prompt: str | None = None, data_hash: str | None = None,
                base_ref: str | None = None, metric: str = "acc", num_fewshot: int = 0) -> Path:
    """One (checkpoint, task) record whose samples are ``golds``/``preds``, scored like medbench.evaluation does:
    acc per item and overall (stderr with ddof=1, as lm-eval), macro_f1 from the registered metric."""
    from medbench.records import write_record
    from medbench_plugins.builtin_metrics import macro_f1

    weights = weights or hashlib.blake2b(label.encode(), digest_size=16).hexdigest()
    samples = []
    for i, (gold, pred) in enumerate(zip(golds, preds)):
        text = (prompt or "Question {i} on {task} asked of {label}").format(i=i, task=task, label=label)
        samples.append({"doc_id": i, "gold": gold, "pred": pred, "acc": float(gold == pred), "prompt": text,
                        "logliks": [-1.0 - 0.5 * j for j in range(4)]})
    n = len(samples)
    acc = sum(s["acc"] for s in samples) / n
    stderr = math.sqrt(sum((s["acc"] - acc) ** 2 for s in samples) / (n - 1)) / math.sqrt(n) if n > 1 else None
    metrics = {"acc": {"value": acc, "stderr": stderr},
               "macro_f1": {"value": macro_f1(golds, preds), "stderr": None}}
    primary = metric
    record = {
        "record_key": task + (f"@{num_fewshot}shot" if num_fewshot else ""),
        "task": {"name": task, "version": 1.0, "plugin": "test", "split": "test", "num_fewshot": num_fewshot,
                 "data_hash": data_hash or f"data-{task}", "split_size": n},
        "model": {"label": label, "ref": label, "kind": "local", "path": None, "base_ref": base_ref,
                  "weights_hash": weights, "parameters": 1000},
        "metrics": metrics, "primary_metric": primary, "score": metrics[primary]["value"],
        "stderr": metrics[primary]["stderr"], "n": n,
        "config": {"batch_size": 8, "label": label, "limit": None, "num_fewshot": None, "seed": seed,
                   "task_metadata": {}, "chat_template": False},
        "seed": seed, "versions": {"medbench": "0.1.0", "python": "3.11"}, "created": created,
        **({"extra": {"training": training}} if training else {}),
    }
    return write_record(Path(root), record, samples)


def answers(n: int, correct: set[int] | int, golds: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Golds cycling 0..3 and predictions right exactly on the items in ``correct`` (or the first ``correct``)."""
    golds = golds or [i % 4 for i in range(n)]
    right = set(range(correct)) if isinstance(correct, int) else correct
    return golds, [g if i in right else (g + 1) % 4 for i, g in enumerate(golds)]


def write_worker(root: str, worker: int, count: int, barrier) -> None:
    """For the concurrency test: one process writes ``count`` checkpoints' records, rendering after each."""
    from medbench.leaderboard import render

    barrier.wait()  # every process starts writing at the same moment
    for k in range(count):
        golds, preds = answers(20, (worker * 3 + k) % 20)
        make_record(Path(root), f"w{worker}-m{k}", "medqa", golds, preds, created=f"2026-01-01T00:00:{k:02d}Z")
        render(Path(root), ["md", "json", "csv"])


def same_record_worker(args: tuple[str, int]) -> int:
    """For the concurrency test: many processes rewrite the same (checkpoint, task) record."""
    root, worker = args
    for _ in range(5):
        golds, preds = answers(30, worker)
        make_record(Path(root), "shared", "medqa", golds, preds, created=f"2026-01-01T00:00:{worker:02d}Z")
    return worker


def render_worker(root: str, ready) -> None:
    """For the lock test: signal, then render (which must wait for the lock the test holds)."""
    from medbench.leaderboard import render

    ready.set()
    render(Path(root), ["json"])


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``medbench ARGS`` in-process as the shell runs it (SystemExit read as the exit code): (code, out, err)."""
    from medbench.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err
