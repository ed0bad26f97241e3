"""Records are the leaderboard's source of truth: concurrent writers, merging new runs, re-scoring from samples."""

import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from leaderboard_helpers import answers, make_record, render_worker, same_record_worker, write_worker
from medbench.errors import MedbenchError
from medbench.leaderboard import build_table, locked, render, rescore, rescore_all
from medbench.records import read_records

REPO = Path(__file__).resolve().parents[1]


def test_several_processes_writing_at_once_lose_nothing(tmp_path):
    workers, per_worker = 6, 3
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    processes = [context.Process(target=write_worker, args=(str(tmp_path), w, per_worker, barrier))
                 for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * workers
    paths = sorted(tmp_path.glob("records/*/*/record.json"))
    assert len(paths) == workers * per_worker
    for path in paths:
        record = json.loads(path.read_text())  # every record whole, none half-written
        samples = [json.loads(line) for line in (path.parent / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == record["n"] == 20
    assert not list(tmp_path.rglob("*.tmp"))
    # The last process to render saw every record: renders are serialised by a lock on the directory.
    table = json.loads((tmp_path / "leaderboard.json").read_text())
    assert len(table["rows"]) == workers * per_worker
    assert {r["label"] for r in table["rows"]} == {f"w{w}-m{k}" for w in range(workers) for k in range(per_worker)}
    assert len((tmp_path / "leaderboard.csv").read_text().splitlines()) == workers * per_worker + 1
    assert (tmp_path / "leaderboard.md").read_text().count("\n| w") == workers * per_worker


def test_a_render_waits_while_another_holds_the_leaderboard(tmp_path):
    golds, preds = answers(10, 4)
    make_record(tmp_path, "m", "medqa", golds, preds)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=render_worker, args=(str(tmp_path), ready))
    with locked(tmp_path):
        process.start()
        assert ready.wait(120)
        process.join(timeout=1.5)
        assert process.is_alive() and not (tmp_path / "leaderboard.json").exists()
    process.join(timeout=120)
    assert process.exitcode == 0 and (tmp_path / "leaderboard.json").exists()


def test_processes_rewriting_one_record_leave_a_valid_record(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(same_record_worker, [(str(tmp_path), w) for w in range(4)])
    (path,) = tmp_path.glob("records/*/*/record.json")
    record = json.loads(path.read_text())
    assert record["model"]["label"] == "shared" and record["n"] == 30
    assert len((path.parent / "samples.jsonl").read_text().splitlines()) == 30
    assert not list(tmp_path.rglob("*.tmp"))


def test_new_runs_merge_into_the_existing_leaderboard(tmp_path):
    golds, preds = answers(20, 5)
    make_record(tmp_path, "base", "medqa", golds, preds, created="2026-01-01T00:00:00Z")
    render(tmp_path, ["json"])
    assert [r["label"] for r in json.loads((tmp_path / "leaderboard.json").read_text())["rows"]] == ["base"]

    golds, preds = answers(20, 10)
    make_record(tmp_path, "tuned", "medqa", golds, preds, created="2026-01-02T00:00:00Z", base_ref="base")
    make_record(tmp_path, "tuned", "medmcqa", golds, preds, created="2026-01-02T00:00:00Z", base_ref="base")
    render(tmp_path, ["json", "md"])
    table = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [r["label"] for r in table["rows"]] == ["tuned", "base"] and table["columns"] == ["medmcqa", "medqa"]
    assert table["baseline"]["label"] == "base"

    # The same checkpoint scored again on a task: the newest record is the one shown.
    golds, preds = answers(20, 20)
    make_record(tmp_path, "tuned", "medqa", golds, preds, created="2026-01-03T00:00:00Z", base_ref="base")
    rows = {r.label: r for r in build_table(tmp_path).rows}
    assert rows["tuned"].cells["medqa"].score == 1.0 and rows["base"].cells["medqa"].score == 0.25
    assert len(read_records(tmp_path)) == 3  # one record per (checkpoint, task): rewritten atomically in place


def test_rescore_from_samples_equals_the_original(tmp_path):
    golds, preds = answers(40, 13)
    path = make_record(tmp_path, "m", "medqa", golds, preds)
    original = json.loads(path.read_text())
    rescored = rescore(path.parent)
    for name, metric in original["metrics"].items():
        assert rescored["metrics"][name]["value"] == pytest.approx(metric["value"], abs=1e-12)
        if metric["stderr"] is not None:
            assert rescored["metrics"][name]["stderr"] == pytest.approx(metric["stderr"], abs=1e-12)
    assert rescored["score"] == pytest.approx(original["score"]) and rescored["n"] == 40 and rescored["rescored"]
    assert json.loads(path.read_text())["metrics"] == rescored["metrics"]  # written back

    # A record whose numbers were damaged is repaired from its samples; a new registered metric can be added.
    damaged = {**original, "score": 0.99, "metrics": {**original["metrics"], "acc": {"value": 0.99, "stderr": 0}}}
    path.write_text(json.dumps(damaged))
    repaired = rescore(path.parent, metrics=["accuracy"])
    assert repaired["score"] == pytest.approx(13 / 40) and repaired["metrics"]["accuracy"]["value"] == pytest.approx(13 / 40)


def test_rescore_needs_the_samples(tmp_path):
    golds, preds = answers(10, 3)
    path = make_record(tmp_path, "m", "medqa", golds, preds)
    (path.parent / "samples.jsonl").unlink()
    with pytest.raises(MedbenchError, match="samples"):
        rescore(path.parent)


def test_committed_demo_records_rescore_to_their_own_numbers(tmp_path):
    source = REPO / "docs" / "demo"
    assert list(source.glob("records/*/*/record.json")), "the demo's records are committed under docs/demo/records"
    shutil.copytree(source / "records", tmp_path / "records")
    before = {r["_path"]: r for r in read_records(tmp_path)}
    for record in rescore_all(tmp_path):
        old = before[record["_path"]]
        assert record["score"] == pytest.approx(old["score"], abs=1e-12)
        for name, metric in old["metrics"].items():
            assert record["metrics"][name]["value"] == pytest.approx(metric["value"], abs=1e-12), name
