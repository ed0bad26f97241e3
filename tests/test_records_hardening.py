"""Records and the leaderboard under damage and misuse: damaged records are skipped, labels never share a folder,
samples never come from outside their record's folder, CSV cells never run as formulas, concurrent writers lose
nothing, rows with fewer tasks never outrank complete rows, and every record's data source is shown."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from leaderboard_helpers import answers, make_record, run_cli
from medbench.errors import MedbenchError
from medbench.leaderboard import build_table, render, render_table
from medbench.records import (RecordError, RecordWarning, SamplesPathError, find_reusable, legacy_model_dir_name,
                              load_record, read_records, read_samples, record_dir, slug, validate_record, write_record)

EVIL = "<script>alert(1)</script>"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def edit(path: Path, **changes) -> Path:
    """Rewrite a record.json with some keys replaced (None removes the key)."""
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    path.write_text(json.dumps(record))
    return path


# ------------------------------------------------------------------------------------------- 1. damaged records


def _good(tmp: Path) -> dict:
    return json.loads(make_record(tmp / "proto", "proto", "medqa", *answers(4, 2)).read_text())


def _without(record: dict, dotted: str) -> dict:
    record = json.loads(json.dumps(record))
    *parents, last = dotted.split(".")
    inner = record
    for key in parents:
        inner = inner[key]
    del inner[last]
    return record


def _with(record: dict, dotted: str, value) -> dict:
    record = json.loads(json.dumps(record))
    *parents, last = dotted.split(".")
    inner = record
    for key in parents:
        inner = inner[key]
    inner[last] = value
    return record


# (id, bytes of the damaged record.json from a good record, what the warning must say)
DAMAGE = [
    ("empty-list", lambda r: b"[]", "a list, not a record object"),
    ("empty-object", lambda r: b"{}", "record_key is missing"),
    ("not-utf8", lambda r: b'{"record_key": "\xff\xfe"}', "not UTF-8 text"),
    ("truncated", lambda r: json.dumps(r).encode()[:60], "not valid JSON"),
    ("score-is-text", lambda r: json.dumps({**r, "score": "high"}).encode(), 'score is "high" (a string), not a number'),
    ("n-missing", lambda r: json.dumps(_without(r, "n")).encode(), "n is missing"),
    ("n-is-text", lambda r: json.dumps({**r, "n": "40"}).encode(), "n is \"40\" (a string), not a whole number"),
    ("n-is-bool", lambda r: json.dumps({**r, "n": True}).encode(), "n is true (a boolean), not a whole number"),
    ("task-is-text", lambda r: json.dumps({**r, "task": "medqa"}).encode(), "task is a string, not an object"),
    ("task-name-missing", lambda r: json.dumps(_without(r, "task.name")).encode(), "task.name is missing"),
    ("label-missing", lambda r: json.dumps(_without(r, "model.label")).encode(), "model.label is missing"),
    ("label-is-number", lambda r: json.dumps(_with(r, "model.label", 7)).encode(), "model.label is 7 (a number)"),
    ("metrics-is-list", lambda r: json.dumps({**r, "metrics": []}).encode(), "metrics is a list, not an object"),
    ("metric-value-text", lambda r: json.dumps(_with(r, "metrics.acc.value", "0.5")).encode(),
     "metrics['acc'].value is \"0.5\" (a string), not a number"),
    ("metric-not-object", lambda r: json.dumps(_with(r, "metrics.acc", 0.5)).encode(),
     "metrics['acc'] is a number, not an object"),
    ("data-source-kind-number", lambda r: json.dumps({**r, "data_source": {"kind": 3}}).encode(),
     "data_source.kind is 3 (a number), not a string"),
]


@pytest.fixture
def damaged_board(tmp_path):
    """A leaderboard with one good record and every kind of damaged record beside it."""
    root = tmp_path / "lb"
    make_record(root, "good", "medqa", *answers(20, 10))
    good = _good(tmp_path)
    paths = {}
    for name, damage, _ in DAMAGE:
        path = root / "records" / f"damaged-{name}" / "medqa" / "record.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(damage(good))
        paths[name] = path
    return root, paths


def test_the_prototype_record_is_valid(tmp_path):
    validate_record(_good(tmp_path))  # each damage case differs from a valid record by the damage alone


@pytest.mark.parametrize("name,damage,problem", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_record_is_skipped_with_a_warning_naming_it(name, damage, problem, tmp_path, capsys):
    root = tmp_path / "lb"
    make_record(root, "good", "medqa", *answers(20, 10))
    bad = root / "records" / "damaged" / "medqa" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(damage(_good(tmp_path)))
    (bad.parent / "samples.jsonl").write_text('{"doc_id": 0, "gold": 1, "pred": 1}\n')

    code, out, err = run_cli(capsys, "leaderboard", "--dir", root)
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and str(bad) in warning[0] and problem in warning[0], err
    assert "fix or delete that file" in warning[0] and "Traceback" not in err
    table = json.loads((root / "leaderboard.json").read_text())
    assert [r["label"] for r in table["rows"]] == ["good"]
    assert "| good |" in (root / "leaderboard.md").read_text() and (root / "index.html").exists()


def test_every_damage_at_once_still_renders_the_good_record(damaged_board):
    root, paths = damaged_board
    with pytest.warns(RecordWarning) as caught:
        table, written = render_table(root)
    assert [r.label for r in table.rows] == ["good"] and len(written) == 4
    messages = [str(w.message) for w in caught]
    for name, path in paths.items():
        assert sum(str(path) in m for m in messages) == 1, name


def test_eval_into_a_damaged_leaderboard_writes_its_record_and_updates_the_page(damaged_board, tiny_model_dir,
                                                                               capsys):
    root, paths = damaged_board
    code, out, err = run_cli(capsys, "eval", "--model", tiny_model_dir, "--tasks", "medqa", "--limit", "2",
                             "--leaderboard-dir", root, "--label", "fresh")
    assert code == 0, err
    assert sum(line.startswith("Warning: skipping record") for line in err.splitlines()) == len(DAMAGE)
    table = json.loads((root / "leaderboard.json").read_text())
    assert {r["label"] for r in table["rows"]} == {"good", "fresh"}
    assert "fresh" in (root / "index.html").read_text() and "| fresh |" in (root / "leaderboard.md").read_text()
    fresh = next(r for r in table["rows"] if r["label"] == "fresh")["cells"]["medqa"]
    assert fresh["data_source"]["kind"] == "bundled"  # evaluation records where the data came from ...
    assert '<span class="src src-bundled"' in (root / "index.html").read_text()  # ... and the page shows it
    for path in paths.values():  # damaged files are reported, never touched
        assert path.exists()


def test_only_damaged_records_is_one_error_and_changes_nothing(tmp_path, capsys):
    root = tmp_path / "lb"
    bad = root / "records" / "x" / "medqa" / "record.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"score": "high"}')
    (root / "leaderboard.md").write_text("| earlier |\n")
    before = snapshot(root)
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root)
    assert code == 2 and "Error: no readable records under" in err and "Traceback" not in err
    assert "fix or delete those record.json files" in err
    assert snapshot(root) == before


def test_a_records_path_that_is_a_file_is_one_error_for_readers_and_writers(tmp_path, capsys):
    root = tmp_path / "lb"
    root.mkdir()
    (root / "records").write_text("not a folder")
    for command in (("leaderboard", "--dir", root),
                    ("eval", "--model", "nonexistent-model", "--tasks", "medqa", "--leaderboard-dir", root)):
        code, out, err = run_cli(capsys, *command)
        assert code == 2 and "is a file, not the folder of records" in err and "Traceback" not in err, err
    assert (root / "records").read_text() == "not a folder"
    record = load_record(make_record(tmp_path / "good", "m", "medqa", [0, 1], [0, 1]))
    with pytest.raises(MedbenchError, match="is a file"):
        write_record(root, record, [])


def test_write_record_refuses_a_record_that_does_not_match_the_schema(tmp_path):
    record = _good(tmp_path)
    record["score"] = "high"
    with pytest.raises(MedbenchError, match="does not match the record schema .score is \"high\""):
        write_record(tmp_path / "lb", record, [])
    assert not (tmp_path / "lb").exists()


def test_rescore_refuses_a_damaged_record_in_one_line(tmp_path):
    from medbench.leaderboard import rescore

    path = make_record(tmp_path, "m", "medqa", *answers(10, 3))
    edit(path, n="ten")
    with pytest.raises(MedbenchError, match="n is \"ten\""):
        rescore(path.parent)


def test_a_nan_score_is_no_score(tmp_path):
    path = make_record(tmp_path, "nan", "medqa", *answers(10, 3))
    # a NaN score beside a NaN value (writers set the score to the primary metric's value; one without the other
    # is a damaged record, skipped)
    path.write_text(path.read_text().replace('"score": 0.3', '"score": NaN').replace('"value": 0.3', '"value": NaN'))
    make_record(tmp_path, "real", "medqa", *answers(10, 5))
    rows = build_table(tmp_path, with_stats=False).rows
    assert [r.label for r in rows] == ["real", "nan"] and rows[1].cells["medqa"].score is None


# ------------------------------------------------------------------------------------------- 2. one folder per label


def test_labels_that_slug_alike_keep_their_own_records(tmp_path):
    weights = "ab" * 16
    labels = ["team/model 1", "team-model-1", "team model 1",
              "A" + "x" * 60, "B" + "x" * 60]  # the last two differ only before the 48 characters a slug keeps
    for k, label in enumerate(labels):
        make_record(tmp_path, label, "medqa", *answers(10, k), weights=weights)
    folders = {p.parent.parent.name for p in tmp_path.glob("records/*/*/record.json")}
    assert len(folders) == len(labels)
    assert {r["model"]["label"] for r in read_records(tmp_path)} == set(labels)
    rows = {r.label: r.cells["medqa"].score for r in build_table(tmp_path, with_stats=False).rows}
    assert rows == {label: k / 10 for k, label in enumerate(labels)}
    # Task keys that slug alike keep their folders too.
    make_record(tmp_path, "t", "medqa@chat", *answers(10, 1), weights=weights)
    make_record(tmp_path, "t", "medqa-chat", *answers(10, 2), weights=weights)
    assert {r.label: sorted(r.cells) for r in build_table(tmp_path, with_stats=False).rows}["t"] == \
        ["medqa-chat", "medqa@chat"]


def test_a_folder_holding_another_record_is_never_overwritten(tmp_path):
    weights = "cd" * 16
    first = make_record(tmp_path, "one", "medqa", *answers(10, 4), weights=weights)
    # Someone else's record planted where "two" would go: writing "two" must refuse, not replace it.
    target = record_dir(tmp_path, "two", weights, "medqa")
    target.mkdir(parents=True)
    (target / "record.json").write_bytes(first.read_bytes())
    (target / "samples.jsonl").write_bytes((first.parent / "samples.jsonl").read_bytes())
    before = snapshot(tmp_path)
    with pytest.raises(MedbenchError, match="already holds the record of"):
        make_record(tmp_path, "two", "medqa", *answers(10, 6), weights=weights)
    assert snapshot(tmp_path) == before


def _legacy_copy(tmp_path: Path, label: str, weights: str, task: str = "medqa") -> Path:
    """A record in the folder older medbench versions wrote: ``<slug(label)>-<weights[:12]>/<task>``."""
    source = make_record(tmp_path / "scratch", label, task, *answers(10, 7), weights=weights)
    legacy = tmp_path / "lb" / "records" / legacy_model_dir_name(label, weights) / slug(task)
    legacy.mkdir(parents=True)
    for name in ("record.json", "samples.jsonl"):
        (legacy / name).write_bytes((source.parent / name).read_bytes())
    return legacy / "record.json"


def test_records_in_old_style_folders_are_still_read(tmp_path):
    weights = "ef" * 16
    legacy = _legacy_copy(tmp_path, "team/model 1", weights)
    make_record(tmp_path / "lb", "team-model-1", "medqa", *answers(10, 2), weights=weights)
    assert legacy.parent.parent.name == "team-model-1-efefefefefef"  # the name the new label would once have taken
    rows = {r.label: r.cells["medqa"].score for r in build_table(tmp_path / "lb").rows}
    assert rows == {"team/model 1": 0.7, "team-model-1": 0.2}


def _eval_config(root: Path):
    from medbench.evaluation import EvalConfig

    return EvalConfig(tasks=["medqa"], output_dir=root, label=None, seed=1234)


def _reusable_record(path: Path, config) -> None:
    """Give a record exactly the config and versions evaluation would store for ``config``."""
    fields = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
              if k not in ("tasks", "output_dir", "extra")}
    edit(path, config=fields, versions={"medbench": "test"})


@pytest.mark.parametrize("layout", ["new", "legacy"])
def test_reuse_lookup_finds_records_in_both_layouts(layout, tmp_path):
    weights = "12" * 16
    root = tmp_path / "lb"
    config = _eval_config(root)
    if layout == "legacy":
        path = _legacy_copy(tmp_path, "team/model 1", weights)
    else:
        path = make_record(root, "team/model 1", "medqa", *answers(10, 7), weights=weights)
    _reusable_record(path, config)
    data_hash = json.loads(path.read_text())["task"]["data_hash"]
    found = find_reusable(root, "team/model 1", weights, "medqa", data_hash, config, {"medbench": "test"})
    assert found is not None and found["_path"] == str(path) and found["_reused"]
    # A label that slugs alike is another checkpoint's row: never served these scores.
    assert find_reusable(root, "team-model-1", weights, "medqa", data_hash, config, {"medbench": "test"}) is None


# ------------------------------------------------------------------------------------------- 3. samples stay inside


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret.jsonl"
    path.write_text(json.dumps({"doc_id": 0, "gold": 1, "pred": 1, "prompt": "TOP-SECRET-CONTENT"}) + "\n")
    return path


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_samples_outside_the_record_folder_are_never_read(how, tmp_path, secret):
    root = tmp_path / "lb"
    make_record(root, "good", "medqa", *answers(10, 5))
    path = make_record(root, "sneaky", "medqa", *answers(10, 6))
    if how == "absolute":
        edit(path, samples_file=str(secret))
    elif how == "dotdot":
        edit(path, samples_file=os.path.relpath(secret, path.parent))
        assert ".." in json.loads(path.read_text())["samples_file"]
    else:
        (path.parent / "samples.jsonl").unlink()
        (path.parent / "samples.jsonl").symlink_to(secret)
    record = next(r for r in read_records(root) if r["model"]["label"] == "sneaky")
    with pytest.raises(SamplesPathError, match="record's folder"):
        read_samples(record)

    with pytest.warns(RecordWarning, match=re.escape(str(path)) + ".*shown without its samples"):
        table, _ = render_table(root)
    sneaky = next(r for r in table.rows if r.label == "sneaky")
    assert sneaky.cells["medqa"].score == 0.6 and sneaky.cells["medqa"].samples == []  # rendered, no samples
    assert any("sneaky / medqa" in note and "record's folder" in note for note in table.notes)
    for name in ("index.html", "leaderboard.md", "leaderboard.json", "leaderboard.csv"):
        assert "TOP-SECRET-CONTENT" not in (root / name).read_text(), name


def test_a_record_linked_in_from_outside_records_is_skipped(tmp_path):
    root = tmp_path / "lb"
    make_record(root, "good", "medqa", *answers(10, 5))
    outside = make_record(tmp_path / "elsewhere", "outsider", "medqa", *answers(10, 9))
    link = root / "records" / "linked" / "medqa"
    link.mkdir(parents=True)
    (link / "record.json").symlink_to(outside)
    with pytest.warns(RecordWarning, match="a link pointing outside the records folder"):
        assert [r["model"]["label"] for r in read_records(root)] == ["good"]


# ------------------------------------------------------------------------------------------- 4. CSV injection


def test_csv_text_cells_never_start_a_formula(tmp_path):
    root = tmp_path / "lb"
    hostile = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    make_record(root, "base", "medqa", *answers(40, 10))
    for k, label in enumerate(hostile):
        make_record(root, label, "medqa", *answers(40, 20 + k), base_ref="base")
    make_record(root, "worse", "medqa", *answers(40, 2), base_ref="base")  # a negative delta
    path = make_record(root, "base", "=cmd|' /C calc'!A0", *answers(10, 4))
    edit(path, data_source={"kind": "file", "name": "@evil.jsonl", "sha256": "-abc",
                            "description": "=1+1 from the user's file"})
    path = make_record(root, "base", "other", *answers(10, 4))
    edit(path, primary_metric="-acc", metrics={"-acc": {"value": 0.4, "stderr": None}}, score=0.4)
    render(root, ["csv"])
    rows = list(csv.DictReader((root / "leaderboard.csv").open(newline="")))
    assert {r["checkpoint"] for r in rows} >= {"'" + label for label in hostile}
    assert "'=cmd|' /C calc'!A0" in {r["column"] for r in rows} and "'-acc" in {r["metric"] for r in rows}
    source = next(r for r in rows if r["data_source_kind"] == "file")
    assert (source["data_source_name"], source["data_source_version"], source["data_source_description"]) == \
        ("'@evil.jsonl", "'-abc", "'=1+1 from the user's file")
    for row in rows:
        for key, value in row.items():
            if value.startswith(FORMULA_START):
                float(value)  # only numbers may start with '-' (a negative delta): they stay numbers
    assert any(r["delta"].startswith("-") for r in rows)  # and there is such a number
    assert float(next(r for r in rows if r["checkpoint"] == "base" and r["column"] == "medqa")["score"]) == 0.25


# ------------------------------------------------------------------------------------------- 5. concurrency


WRITERS, PER_WRITER = 8, 3


def _writer(root: str, worker: int, barrier) -> None:
    barrier.wait()
    for k in range(PER_WRITER):
        # Pairs of labels that once shared a folder, on the same weights, from different processes at once.
        label = f"team/model {k}" if worker % 2 == 0 else f"team-model-{k}"
        make_record(Path(root), f"w{worker // 2} {label}", "medqa", *answers(20, (worker + k) % 20),
                    weights="77" * 16, created=f"2026-01-01T00:00:{worker:02d}Z")


def _renderer(root: str, stop, barrier) -> None:
    barrier.wait()
    while not stop.is_set():
        try:
            render(Path(root), ["json", "csv"])
        except MedbenchError:  # "no records yet" before the first record lands
            pass


def test_eight_writers_and_a_racing_render_lose_no_record(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, stop = context.Barrier(WRITERS + 1), context.Event()
    writers = [context.Process(target=_writer, args=(str(tmp_path), w, barrier)) for w in range(WRITERS)]
    renderer = context.Process(target=_renderer, args=(str(tmp_path), stop, barrier))
    for process in [*writers, renderer]:
        process.start()
    for process in writers:
        process.join(timeout=300)
    stop.set()
    renderer.join(timeout=300)
    assert [p.exitcode for p in writers] == [0] * WRITERS and renderer.exitcode == 0
    expected = {f"w{w // 2} " + (f"team/model {k}" if w % 2 == 0 else f"team-model-{k}")
                for w in range(WRITERS) for k in range(PER_WRITER)}
    assert len(expected) == WRITERS * PER_WRITER
    assert len(list(tmp_path.glob("records/*/*/record.json"))) == WRITERS * PER_WRITER
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.glob(".medbench-render-*"))
    render(tmp_path)
    table = json.loads((tmp_path / "leaderboard.json").read_text())
    assert {r["label"] for r in table["rows"]} == expected
    assert len(list(csv.DictReader((tmp_path / "leaderboard.csv").open()))) == WRITERS * PER_WRITER


# ------------------------------------------------------------------------------------------- 6. a fair ranking


def test_a_row_scored_on_fewer_tasks_never_outranks_complete_rows(tmp_path):
    root = tmp_path / "lb"
    base = {"uti": 8, "hyponatremia": 6, "clinical_reasoning": 8, "triage": 6}  # of 40: mean 0.175
    for task, right in base.items():
        make_record(root, "base", task, *answers(40, right))
    make_record(root, "uti-only", "uti", *answers(40, 27), base_ref="base")  # 0.675 on uti alone (same 40 items)
    for task, right in list(base.items())[1:]:  # three of the four tasks (not uti), each better than base
        make_record(root, "three-tasks", task, *answers(40, right + 20), base_ref="base")
    for task, right in base.items():  # complete and a little better than base
        make_record(root, "tuned", task, *answers(40, right + 2), base_ref="base")
    render(root)

    table = json.loads((root / "leaderboard.json").read_text())
    assert [r["label"] for r in table["rows"]] == ["tuned", "base", "three-tasks", "uti-only"]
    rows = {r["label"]: r for r in table["rows"]}
    assert rows["base"]["mean"] == pytest.approx(0.175) and rows["uti-only"]["mean"] == pytest.approx(0.675)
    assert rows["uti-only"]["win_rate"] == 1.0  # it does beat everyone on uti ...
    assert rows["uti-only"]["coverage"] == {"tasks": 1, "of": 4, "complete": False, "tier": 2}  # ... alone
    assert rows["tuned"]["coverage"]["complete"] and rows["base"]["coverage"]["tier"] == 0

    markdown = (root / "leaderboard.md").read_text()
    uti_line = next(line for line in markdown.splitlines() if line.startswith("| uti-only |"))
    assert f"| 1.000 (1/4 tasks) | {27 / 40:.3f} (1/4 tasks) |" in uti_line
    assert "| 0.175 |" in next(line for line in markdown.splitlines() if line.startswith("| base |"))
    assert "ranks below every row scored on more tasks" in markdown

    page = (root / "index.html").read_text()
    tiers = re.findall(r'data-label="([^"]+)"[^>]*data-coverage="(\d/\d)"', page)
    assert tiers == [("tuned", "4/4"), ("base", "4/4"), ("three-tasks", "3/4"), ("uti-only", "1/4")]
    assert page.count('data-tiered="1"') == 3 and '<span class="cov">1/4 tasks</span>' in page

    rows_csv = list(csv.DictReader((root / "leaderboard.csv").open()))
    uti = next(r for r in rows_csv if r["checkpoint"] == "uti-only")
    assert (uti["tasks_scored"], uti["tasks_total"]) == ("1", "4")


def test_rows_on_different_task_sets_of_one_size_are_not_interleaved(tmp_path):
    make_record(tmp_path, "a-high", "medqa", *answers(10, 9))
    make_record(tmp_path, "a-low", "medqa", *answers(10, 1))
    make_record(tmp_path, "b-mid", "medmcqa", *answers(10, 5))
    rows = build_table(tmp_path, with_stats=False).rows
    # Ranked by mean only within a task set; medqa's set holds the best row, so it comes first, whole.
    assert [(r.label, r.tier) for r in rows] == [("a-high", 0), ("a-low", 0), ("b-mid", 1)]


# ------------------------------------------------------------------------------------------- 7. data-source badges


def test_data_source_badges_in_every_output_and_escaped(tmp_path):
    root = tmp_path / "lb"
    bundled = {"kind": "bundled", "name": "medqa", "sha256": "a" * 64,
               "description": f"questions written for the project {EVIL}"}
    hub = {"kind": "hub", "name": "GBaker/MedQA-USMLE-4-options-hf", "revision": "abc123", "description": "hub"}
    for label, right in (("base", 10), ("tuned", 20)):
        edit(make_record(root, label, "medqa", *answers(40, right)), data_source=bundled)
    edit(make_record(root, "base", "uti", *answers(40, 20)), data_source=hub)
    make_record(root, "tuned", "uti", *answers(40, 22))  # no data_source: an older record
    render(root)

    page = (root / "index.html").read_text()
    assert page.count("<script") == 2 and EVIL not in page  # the page's own two blocks only
    badge = re.search(r'<span class="src src-bundled" title="([^"]*)">bundled sample</span>', page)
    assert badge and "&lt;script&gt;alert(1)&lt;/script&gt;" in badge.group(1) and "sha256: " + "a" * 64 in badge.group(1)
    header_uti = re.search(r'<th[^>]*data-col="uti">.*?</th>', page).group(0)
    assert "mixed sources" in header_uti  # uti's rows come from two sources: each cell says its own
    assert ">hub: GBaker/MedQA-USMLE-4-options-hf@abc123</span>" in page and ">unknown source</span>" in page

    markdown = (root / "leaderboard.md").read_text()
    assert "- medqa: bundled sample — questions written for the project &lt;script&gt;" in markdown
    assert "- uti: unknown source" in markdown and "<script>" not in markdown

    table = json.loads((root / "leaderboard.json").read_text())
    assert table["column_info"]["medqa"]["data_sources"] == [bundled]
    assert {s["kind"] for s in table["column_info"]["uti"]["data_sources"]} == {"hub", "unknown"}
    tuned = next(r for r in table["rows"] if r["label"] == "tuned")
    assert tuned["cells"]["uti"]["data_source"] == {"kind": "unknown"}
    assert tuned["cells"]["medqa"]["provenance"]["data_source"] == bundled

    rows = list(csv.DictReader((root / "leaderboard.csv").open()))
    kinds = {(r["checkpoint"], r["column"]): r["data_source_kind"] for r in rows}
    assert kinds == {("base", "medqa"): "bundled", ("tuned", "medqa"): "bundled", ("base", "uti"): "hub",
                     ("tuned", "uti"): "unknown"}
    assert EVIL in next(r for r in rows if r["data_source_kind"] == "bundled")["data_source_description"]


# ------------------------------------------------------------------------------------------- failures change nothing


def test_a_renderer_that_fails_leaves_every_file_as_it_was(tmp_path, plugin_registration):
    from medbench import hookimpl

    root = tmp_path / "lb"
    make_record(root, "base", "medqa", *answers(20, 5))
    render(root)
    make_record(root, "new", "medqa", *answers(20, 15))  # a new record the failed render must not half-publish
    before = snapshot(root)

    class Broken:
        @hookimpl
        def register_leaderboard_renderers(self, register):
            def boom(table, out_dir: Path) -> Path:
                (out_dir / "partial.txt").write_text("half")
                raise RuntimeError("renderer crashed")

            register("zz-broken", boom)

    plugin_registration(Broken(), "broken-renderer")
    with pytest.raises(MedbenchError, match="renderer crashed"):
        render(root, ["md", "json", "csv", "html", "zz-broken"])
    assert snapshot(root) == before and not list(root.glob(".medbench-render-*"))
    assert "new" not in (root / "leaderboard.md").read_text()


@pytest.mark.filterwarnings("ignore::medbench.records.RecordWarning")
def test_a_bad_baseline_over_a_damaged_leaderboard_changes_nothing(damaged_board, capsys):
    root, _ = damaged_board
    render(root)
    before = snapshot(root)
    code, out, err = run_cli(capsys, "leaderboard", "--dir", root, "--baseline", "nosuch")
    assert code == 2 and "matches no leaderboard row" in err
    assert snapshot(root) == before


def test_schema_errors_are_record_errors():
    with pytest.raises(RecordError):
        validate_record({"record_key": "x"})
    assert issubclass(RecordError, ValueError) and issubclass(SamplesPathError, ValueError)
