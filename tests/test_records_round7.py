"""Records that contradict themselves, records that impersonate another model's, and samples files built to
exhaust memory: each is skipped or shown without its samples, with a warning naming the file (seventh round of
hostile-input findings)."""

import json
import shutil
import warnings

import pytest

from leaderboard_helpers import answers, make_record
from medbench import records
from medbench.console import markdown_text
from medbench.leaderboard import build_table
from medbench.records import RecordWarning, read_records, read_samples


def edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def read_warned(root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = read_records(root)
    return found, [str(w.message) for w in caught if issubclass(w.category, RecordWarning)]


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(score=1.0), "score 1.0 is not its primary metric \"acc\"'s value 0.3"),
    (lambda r: r.update(score=None), "score null is not its primary metric"),
    (lambda r: r["metrics"]["acc"].update(value=None), "score 0.3 is not its primary metric"),
    (lambda r: r.update(primary_metric="nonexistent"), "primary_metric \"nonexistent\" is not one of its metrics"),
    (lambda r: (r.update(score=7.5), r["metrics"]["acc"].update(value=7.5)), "metric \"acc\" is 7.5, but it is a share"),
    (lambda r: r["metrics"]["macro_f1"].update(value=-0.2), "metric \"macro_f1\" is -0.2, but it is a share"),
])
def test_a_record_that_contradicts_itself_is_skipped_by_every_reader(tmp_path, change, words):
    make_record(tmp_path, "real", "medqa", *answers(10, 5))
    edit(make_record(tmp_path, "forged", "medqa", *answers(10, 3)), change)
    found, warned = read_warned(tmp_path)
    assert [r["model"]["label"] for r in found] == ["real"]
    assert len(warned) == 1 and words in warned[0] and "fix or delete that file" in warned[0]


def test_an_unbounded_metric_may_take_any_finite_value(tmp_path):
    edit(make_record(tmp_path, "ll", "medqa", *answers(10, 3)),
         lambda r: r.update(primary_metric="logprob_sum", score=-1e308,
                            metrics={**r["metrics"], "logprob_sum": {"value": -1e308}}))
    assert [r["score"] for r in read_warned(tmp_path)[0]] == [-1e308]


def test_a_copy_outside_the_models_own_folder_never_replaces_its_record(tmp_path):
    real = make_record(tmp_path, "m", "medqa", *answers(10, 2))
    for name, created in (("aaa-x", "2099-01-01T00:00:00Z"), ("zzz-x", None)):  # newer, or later by path
        stray = tmp_path / "records" / name / "medqa"
        shutil.copytree(real.parent, stray)
        edit(stray / "record.json", lambda r: (r.update(score=1.0, created=created or r["created"]),
                                               r["metrics"]["acc"].update(value=1.0)))
    found, warned = read_warned(tmp_path)
    assert [r["_path"] for r in found] == [str(real)] and build_table(tmp_path).rows[0].cells["medqa"].score == 0.2
    assert len(warned) == 2 and all(str(real) in w and "outside that model's folder" in w for w in warned)
    # records in other folders that collide with none in its own are read as before (boards put together by hand)
    (real.parent / "record.json").unlink()
    assert read_warned(tmp_path) == (read_records(tmp_path), []) and len(read_records(tmp_path)) == 2


def test_a_record_json_that_is_a_dangling_or_looping_link_is_named(tmp_path):
    for name, target in (("dangling", "/nonexistent/record.json"), ("loop", "record.json")):
        (tmp_path / "records" / name / "medqa").mkdir(parents=True)
        (tmp_path / "records" / name / "medqa" / "record.json").symlink_to(target)
    found, warned = read_warned(tmp_path)
    assert found == [] and sorted(w.split("/records/")[1].split("/")[0] for w in warned) == ["dangling", "loop"]


def test_samples_past_the_row_bound_are_refused_before_parsing(tmp_path, monkeypatch):
    path = make_record(tmp_path, "m", "medqa", *answers(10, 2))
    record = {**json.loads(path.read_text()), "_path": str(path)}
    monkeypatch.setattr(records, "MAX_SAMPLE_ROWS", 5)
    with pytest.raises(ValueError, match="more than 5 lines"):
        read_samples(record)
    (path.parent / "samples.jsonl").write_bytes(b"\n" * 4 + b'{"doc_id": 1, "acc": 1}\n')
    assert read_samples(record) == [{"doc_id": 1, "acc": 1}]


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(n=5000), "its samples hold 10 items but its n is 5000"),
    (lambda r: (r.update(score=0.9), r["metrics"]["acc"].update(value=0.9)),
     "its samples' mean acc is 0.3 but its score is 0.9"),
])
def test_samples_that_cannot_be_the_scores_items_give_no_ci_and_no_test(tmp_path, change, words):
    make_record(tmp_path, "base", "medqa", *answers(10, 5))
    edit(make_record(tmp_path, "odd", "medqa", *answers(10, 3)), change)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = build_table(tmp_path, baseline="base")
    cell = next(r for r in table.rows if r.label == "odd").cells["medqa"]
    assert cell.samples == [] and cell.ci_method != "wilson" and (cell.comparison is None or cell.comparison.p is None)
    assert any(words in note and "--rescore" in note for note in table.notes)
    assert any(words in str(w.message) for w in caught)


def test_markdown_shows_link_image_and_code_syntax_as_written():
    text = markdown_text("a | b \\[x](javascript:alert(1)) ![i](http://e/x.png) `c`")
    assert text == "a \\| b \\\\\\[x\\](javascript:alert(1)) !\\[i\\](http://e/x.png) \\`c\\`"
