"""Reference rows on the leaderboard: each task's trivial baselines beside the models, never one of them.

Records are written for the bundled ``uti`` task (binary, F1) with the bundled test split's real data hash, so
the baselines apply; the baselines are fitted once for the module and their cache copied into each board.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from medbench.leaderboard import render, render_table
from medbench.leaderboard import references as refs
from medbench.leaderboard.references import BADGE, CACHE_DIR
from medbench.records import write_record

TASK = "uti"


@pytest.fixture(scope="module")
def uti():
    """The bundled uti test split: gold answers, data hash and data source, as evaluation records them."""
    from medbench.baselines import _split
    from medbench.evaluation import data_hash
    from medbench.task_facts import data_source
    from medbench.tasks import build_registry, load_tasks

    registry = build_registry()
    entry = registry.get(TASK)
    task = load_tasks([TASK], registry, {TASK: {"source": "bundled"}})[TASK]
    gold = _split(task, task.test_docs()).gold
    return {"gold": gold, "hash": data_hash(task.test_docs()), "source": data_source(entry, task), "n": len(gold)}


def write_uti(root: Path, label: str, uti: dict, *, ids=None, source=None, data_hash=None, limit=None,
              metric="f1", created="2026-01-01T00:00:00Z") -> Path:
    """A uti record as medbench.evaluation writes one: predictions right on every third item."""
    from medbench.baselines import score

    ids = list(range(uti["n"])) if ids is None else list(ids)
    gold = [uti["gold"][i] for i in ids]
    preds = [g if i % 3 else 1 - g for i, g in zip(ids, gold)]
    samples = [{"doc_id": i, "gold": g, "pred": p, "prompt": f"case {i}", "choices": ["no", "yes"]}
               for i, g, p in zip(ids, gold, preds)]
    value = score("f1", gold, preds, 2)
    record = {
        "record_key": TASK,
        "task": {"name": TASK, "split": "test", "num_fewshot": 0, "data_hash": data_hash or uti["hash"],
                 "split_size": uti["n"]},
        "model": {"label": label, "ref": label, "kind": "local", "weights_hash": f"w-{label}"},
        "metrics": {metric: {"value": value, "stderr": None}}, "primary_metric": metric, "score": value,
        "stderr": None, "n": len(samples), "data_source": source or uti["source"],
        "config": {"limit": limit, "label": label}, "seed": 1234, "created": created,
    }
    return write_record(root, record, samples)


@pytest.fixture(scope="module")
def cached(tmp_path_factory, uti):
    """The baselines fitted once (the only fit in this file), as a cache folder to copy into a board."""
    root = tmp_path_factory.mktemp("fit")
    write_uti(root, "model-a", uti)
    table, _ = render_table(root, ["json"], references="compute")
    assert table.references, table.reference_notes
    return root / CACHE_DIR


def board(tmp_path: Path, cached: Path) -> Path:
    root = tmp_path / "lb"
    shutil.copytree(cached, root / CACHE_DIR)
    return root


def predictions(cached: Path):
    from medbench.baselines import TaskPredictions

    (path,) = cached.glob(f"{TASK}-*.json")
    return TaskPredictions(**json.loads(path.read_text())["predictions"])


def main_table(page: str) -> str:
    return page[page.index('<table id="leaderboard"'):page.index("</table>", page.index('<table id="leaderboard"'))]


def test_reference_rows_are_shown_and_marked_but_never_ranked(tmp_path, uti, cached):
    root = board(tmp_path, cached)
    write_uti(root, "model-a", uti)
    write_uti(root, "model-b", uti)
    records_before = sorted(p.relative_to(root) for p in (root / "records").rglob("*"))
    table, paths = render_table(root, references="compute")

    found = predictions(cached)
    by_key = {r.key: r for r in table.references}
    assert set(by_key) == {"majority", "bow_lr"}  # a classification task: no lead-3
    assert by_key["majority"].label == "majority class" and by_key["bow_lr"].label == "bag-of-words LR"
    for key, ref in by_key.items():
        cell = ref.cells[TASK]
        assert cell.scope == "full test split" and cell.n == uti["n"] and cell.metric == "f1" and not cell.note
        assert cell.score == pytest.approx(found.score(key))
    # Not rows: not ranked, not counted in coverage, not compared, not written as records.
    assert sorted(r.label for r in table.rows) == ["model-a", "model-b"]
    assert all(r.coverage_of == 1 for r in table.rows)
    assert sorted(p.relative_to(root) for p in (root / "records").rglob("*")) == records_before

    data = json.loads((root / "leaderboard.json").read_text())
    assert {r["label"] for r in data["rows"]} == {"model-a", "model-b"}
    assert {r["label"] for r in data["references"]["rows"]} == {"majority class", "bag-of-words LR"}
    assert all(r["kind"] == "reference" and r["badge"] == BADGE for r in data["references"]["rows"])
    assert data["references"]["rows"][0]["cells"][TASK]["n"] == uti["n"]

    page = (root / "index.html").read_text()
    assert '<table id="references"' in page and BADGE in page
    assert "majority class" not in main_table(page) and "bag-of-words LR" not in main_table(page)
    assert 'class="references"' in page and "sortable" not in page[page.index('<table id="references"'):][:200]

    markdown = (root / "leaderboard.md").read_text()
    ranked = markdown[:markdown.index("**Reference baselines**")]
    assert "majority class" not in ranked and f"majority class *({BADGE})*" in markdown
    assert f"{found.score('bow_lr'):.3f} (n={uti['n']}, full test split)" in markdown

    assert "reference" not in {line.split(",")[0] for line in (root / "leaderboard.csv").read_text().splitlines()}


def test_a_limit_subset_gets_the_baseline_on_the_same_doc_ids(tmp_path, uti, cached):
    root = board(tmp_path, cached)
    write_uti(root, "limited", uti, ids=range(16), limit=16)
    table, _ = render_table(root, ["json"], references="compute")
    found = predictions(cached)
    for ref in table.references:
        cell = ref.cells[TASK]
        assert cell.scope == "same items" and cell.n == 16 and "same 16 of the" in cell.note
        assert cell.score == pytest.approx(found.score(ref.key, list(range(16))))


def test_rows_on_different_subsets_get_the_full_split_marked_as_such(tmp_path, uti, cached):
    root = board(tmp_path, cached)
    write_uti(root, "full", uti)
    write_uti(root, "limited", uti, ids=range(16), limit=16)
    table, _ = render_table(root, ["md"], references="compute")
    cell = table.references[0].cells[TASK]
    assert cell.scope == "full test split" and cell.n == uti["n"]
    assert "on the full test split" in cell.note and "limited (n=16)" in cell.note
    assert "limited (n=16)" in (root / "leaderboard.md").read_text()


def test_a_user_file_record_gets_no_misleading_baseline(tmp_path, uti, cached, monkeypatch):
    monkeypatch.setattr(refs, "task_predictions", lambda *a, **k: pytest.fail("nothing comparable: no fit"))
    root = board(tmp_path, cached)
    user = {"kind": "file", "name": "/data/my_uti.jsonl", "sha256": "ab" * 32, "description": "your file"}
    write_uti(root, "mine", uti, ids=range(20), source=user, data_hash="f" * 32)
    table, _ = render_table(root, references="compute")
    for ref in table.references:
        cell = ref.cells[TASK]
        assert cell.score is None and cell.scope == "" and "user file (external:my_uti.jsonl" in cell.note
    data = json.loads((root / "leaderboard.json").read_text())
    assert all(r["cells"][TASK]["score"] is None for r in data["references"]["rows"])
    markdown = (root / "leaderboard.md").read_text()
    assert "– (not comparable)" in markdown and "full test split" not in markdown
    assert "not comparable" in (root / "index.html").read_text()


def test_a_user_file_row_beside_a_bundled_row_is_named_as_not_covered(tmp_path, uti, cached):
    root = board(tmp_path, cached)
    write_uti(root, "bundled", uti)
    user = {"kind": "file", "name": "/data/my_uti.jsonl", "sha256": "cd" * 32}
    write_uti(root, "mine", uti, ids=range(20), source=user, data_hash="f" * 32)
    table, _ = render_table(root, ["json"], references="compute")
    cell = table.references[0].cells[TASK]
    assert cell.score is not None and cell.n == uti["n"]
    assert "does not apply to mine (scored on a user file (external:my_uti.jsonl, sha256 cdcdcdcdcdcd))" in cell.note


def test_no_baselines_leaves_them_out_and_the_cli_prints_them_apart(tmp_path, uti, cached):
    from medbench.cli import cli

    root = board(tmp_path, cached)
    write_uti(root, "model-a", uti)
    runner = CliRunner()
    out = runner.invoke(cli, ["leaderboard", "--dir", str(root), "--format", "json,md"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "reference baselines" in out.output and "majority class" in out.output
    assert json.loads((root / "leaderboard.json").read_text())["references"]["rows"]

    out = runner.invoke(cli, ["leaderboard", "--dir", str(root), "--format", "json,md", "--no-baselines"],
                        env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "majority class" not in out.output
    assert json.loads((root / "leaderboard.json").read_text())["references"]["rows"] == []
    assert "Reference baselines" not in (root / "leaderboard.md").read_text()


def test_render_shows_only_cached_baselines_and_never_fits(tmp_path, uti, cached, monkeypatch):
    monkeypatch.setattr(refs, "task_predictions", lambda *a, **k: pytest.fail("render() must not fit"))
    empty = tmp_path / "empty"
    write_uti(empty, "model-a", uti)
    render(empty, ["json"])
    assert json.loads((empty / "leaderboard.json").read_text())["references"]["rows"] == []
    root = board(tmp_path, cached)
    write_uti(root, "model-a", uti)
    render(root, ["json"])
    assert len(json.loads((root / "leaderboard.json").read_text())["references"]["rows"]) == 2
    for path in (root / CACHE_DIR).glob("*.json"):  # a damaged cache is a miss, never an error
        path.write_text('{"format": 1, "predictions": [')
    render(root, ["json"])
    assert json.loads((root / "leaderboard.json").read_text())["references"]["rows"] == []


def test_a_failing_baseline_or_missing_sklearn_never_breaks_the_page(tmp_path, uti, monkeypatch):
    root = tmp_path / "lb"
    write_uti(root, "model-a", uti)
    monkeypatch.setattr(refs, "task_predictions", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    table, paths = render_table(root, references="compute")
    assert table.references == [] and table.reference_notes == [f"{TASK}: no trivial baselines (RuntimeError: boom)"]
    assert "RuntimeError: boom" in (root / "index.html").read_text()

    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    table, _ = render_table(root, ["md"], references="compute")
    assert table.references == [] and len(table.reference_notes) == 1
    assert "scikit-learn is not installed" in table.reference_notes[0]
    assert "scikit-learn is not installed" in (root / "leaderboard.md").read_text()


def test_tasks_without_labels_or_unknown_to_the_registry_show_nothing(tmp_path, monkeypatch):
    from leaderboard_helpers import answers, make_record

    monkeypatch.setattr(refs, "task_predictions", lambda *a, **k: pytest.fail("nothing to fit"))
    root = tmp_path / "lb"
    make_record(root, "m", "not_a_task", *answers(10, 5))
    make_record(root, "m", "instruction_following", *answers(10, 5))
    table, _ = render_table(root, ["json"], references="compute")
    assert table.references == [] and table.reference_notes == []


def test_a_rouge_task_gets_lead_3(tmp_path):
    from medbench.baselines import task_baseline
    from medbench.evaluation import data_hash
    from medbench.task_facts import data_source
    from medbench.tasks import build_registry, load_tasks

    name = "discharge_summary"
    registry = build_registry()
    task = load_tasks([name], registry, {name: {"source": "bundled"}})[name]
    n = len(task.test_docs())
    samples = [{"doc_id": i, "gold": "ref", "pred": "summary", "rougeL": 0.2} for i in range(n)]
    record = {"record_key": name, "task": {"name": name, "split": "test", "data_hash": data_hash(task.test_docs())},
              "model": {"label": "m", "weights_hash": "w-m"}, "metrics": {"rougeL": {"value": 0.2}},
              "primary_metric": "rougeL", "score": 0.2, "n": n,
              "data_source": data_source(registry.get(name), task), "config": {"limit": None}}
    write_record(tmp_path, record, samples)
    table, _ = render_table(tmp_path, ["json"], references="compute")
    (ref,) = table.references
    assert ref.key == "lead" and ref.label == "lead-3"
    assert ref.cells[name].score == pytest.approx(task_baseline(name, registry).lead)
