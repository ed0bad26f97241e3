"""A user's task folder or --data-file, round 7: an answer not among the choices, a field a template reads but a
row lacks, runaway repeats or choices, an unknown primary metric, metric, aggregation or split: each is one line
naming the task (and the row), the bad value and what would do, with exit 2, before the model scores anything."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from medbench.errors import MedbenchError
from medbench.task_documents import MAX_CHOICES, template_fields
from test_task_inputs import one_line_error, run_eval  # tests/ is on the path, as for leaderboard_helpers

TASK = {"task": "t", "dataset_path": "json", "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Q: {{q}}", "doc_to_choice": ["no", "yes"], "doc_to_target": "{{label}}",
        "metric_list": [{"metric": "acc"}]}
GOOD = {"q": "a", "label": 1}


def task_folder(tmp_path: Path, rows: list[dict] | str, **overrides) -> Path:
    """A plain task YAML (JSON is YAML) and its data, inside one folder as an untrusted folder's must be."""
    folder = tmp_path / "tasks"
    folder.mkdir(exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text(rows if isinstance(rows, str) else "".join(json.dumps(row) + "\n" for row in rows))
    config = {**TASK, "dataset_kwargs": {"data_files": {"test": str(data)}}, **overrides}
    (folder / "t.yaml").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    return folder


def eval_folder(folder: Path, tmp_path: Path, model: Path, capsys, *extra: str) -> tuple[int, str]:
    return run_eval(["--model", str(model), "--tasks", "t", "--include-path", str(folder), "--limit", "2",
                     "--leaderboard-dir", str(tmp_path / "lb"), *extra], capsys)


CHOICES = "not among its 2 choices ('no', 'yes')"


@pytest.mark.parametrize("rows, overrides, expected", [
    ([GOOD, {"q": "b", "label": 5}], {}, ["row 2 of its 'test' split has the answer 5, which is", CHOICES]),
    ([{"q": "a", "label": 7}, GOOD], {}, ["row 1 of its 'test' split has the answer 7", CHOICES]),  # lm-eval's test doc
    ([GOOD, {"q": "b", "label": "maybe"}], {}, ["row 2", "has the answer 'maybe'", CHOICES]),
    ([GOOD, {"q": "b", "label": -1}], {}, ["row 2", "has the answer '-1'", CHOICES]),
    ([GOOD, {"q": "b", "label": "[0, 3]"}], {}, ["row 2", "has the answer [0, 3]", CHOICES]),  # several answers
    ([{"q": "a", "ch": ["x", "y"], "label": "y"}, {"q": "b", "ch": ["x", "y"], "label": "z"}],
     {"doc_to_choice": "{{ch}}"}, ["row 2", "has the answer 'z', which is not among its 2 choices ('x', 'y')"]),
    ([{**GOOD, "ch": ["no", "yes"]}, {"q": "b", "ch": [], "label": 0}],
     {"doc_to_choice": "ch", "doc_to_target": "label"},
     ["row 2", "has the answer 0, which is not among its 0 choices"]),
    ([GOOD, {"q": "b", "label": None}], {}, ["row 2", "has no value for 'label', which the task's templates read"]),
    ([GOOD, {"label": 0}], {}, ["row 2 of its 'test' split has no value for 'q'", "give that row its q"]),
    ([GOOD, {"q": None, "label": 0}], {}, ["row 2", "has no value for 'q'", "null or NaN"]),
    ([{"q": "b", "label": 0, "ch": [str(i) for i in range(MAX_CHOICES + 1)]}], {"doc_to_choice": "ch"},
     ["row 1", f"has {MAX_CHOICES + 1} choices", f"more than medbench scores per item ({MAX_CHOICES})"]),
], ids=["index-out-of-range", "first-row", "text-not-a-choice", "negative", "list-out-of-range",
        "text-from-field", "no-choices", "null-target", "omitted-field", "null-field", "too-many-choices-in-a-row"])
def test_a_row_the_task_cannot_score_is_one_line(rows, overrides, expected, tmp_path, tiny_model_dir, capsys):
    folder = task_folder(tmp_path, rows, **overrides)
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys))
    assert "task 't'" in line
    for fragment in expected:
        assert fragment in line, line
    assert not (tmp_path / "lb" / "records").exists()


@pytest.mark.parametrize("overrides, expected", [
    ({"repeats": 100_000_000}, ["sets repeats: 100000000; medbench runs 1 to 1000 per item"]),
    ({"doc_to_choice": [str(i) for i in range(MAX_CHOICES + 100)]},
     [f"lists {MAX_CHOICES + 100} choices in doc_to_choice", f"give at most {MAX_CHOICES} choices"]),
    ({"metadata": {"primary_metric": "nosuch"}},
     ["metadata.primary_metric is 'nosuch', not one of its metrics (acc)", "set metadata.primary_metric"]),
    ({"metric_list": [{"metric": "nosuch_metric"}]},
     ["metric_list[0].metric is 'nosuch_metric', not a metric lm-eval registers", "acc_norm", "exact_match"]),
    ({"metric_list": [{"metric": "acc", "aggregation": "nosuch"}]},
     ["metric_list[0].aggregation is 'nosuch', which lm-eval does not know", "mean", "median"]),
    ({"test_split": "nosuch"}, ["test_split is 'nosuch', which is not a split of its dataset (it has: test)",
                                "set test_split to one of test"]),
], ids=["repeats", "choices", "primary-metric", "metric", "aggregation", "test-split"])
def test_a_yaml_setting_medbench_cannot_run_is_one_line(overrides, expected, tmp_path, tiny_model_dir, capsys):
    folder = task_folder(tmp_path, [GOOD, {"q": "b", "label": 0}], **overrides)
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys))
    assert "task 't'" in line and "Traceback" not in line and "KeyError" not in line
    for fragment in expected:
        assert fragment in line, line
    assert not (tmp_path / "lb" / "records").exists()


def test_a_trusted_metric_lm_eval_cannot_aggregate_is_one_line(tmp_path, tiny_model_dir, capsys):
    folder = task_folder(tmp_path, [GOOD], metric_list=[{"metric": "nosuch_metric"}])
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys, "--trust-task-code"))
    assert "metric_list[0].metric is 'nosuch_metric', which lm-eval does not register, and it gives no " \
           "aggregation" in line and "mean" in line, line


@pytest.mark.parametrize("text, expected", [
    ('{"q": NaN, "label": 1}\n', "row 1 of its 'test' split has no value for 'q'"),
    ('{"q": "a", "label": Infinity}\n', "row 1 of its 'test' split has the answer 'inf', which is not among"),
    ('q,label\n"unterminated,1\n', "row 1 of its 'test' split has no value for 'label'"),  # the quote ate the label
], ids=["nan-field", "infinite-label", "csv-lost-label"])
def test_a_data_file_row_the_task_cannot_score_is_one_line(text, expected, tmp_path, tiny_model_dir, capsys):
    folder = task_folder(tmp_path, [GOOD, {"q": "b", "label": 0}])
    data = tmp_path / ("rows.csv" if text.startswith("q,") else "rows.jsonl")
    data.write_text(text)
    line = one_line_error(*eval_folder(folder, tmp_path, tiny_model_dir, capsys, "--data-file", f"t={data}"))
    assert expected in line, line
    assert not (tmp_path / "lb" / "records").exists()


def test_a_field_the_template_tests_may_be_missing_and_a_text_answer_may_name_a_choice(tmp_path, tiny_model_dir,
                                                                                        capsys):
    folder = task_folder(tmp_path, [{"q": "a", "ctx": "c", "label": "yes"}, {"q": "b", "label": "no"}],
                         doc_to_text="{% if ctx %}{{ctx}}\n{% endif %}Q: {{q}}")
    code, err = eval_folder(folder, tmp_path, tiny_model_dir, capsys)
    assert code == 0, err
    record = json.loads(next((tmp_path / "lb").glob("records/*/*/record.json")).read_text())
    assert record["n"] == 2


def test_template_fields_are_those_read_on_every_render():
    template = "{% if ctx %}{{ctx}}{% endif %}{{ q }} {{ note | default('') }} {{ a or b }} {% set x = 1 %}{{x}}"
    task = SimpleNamespace(config=SimpleNamespace(doc_to_text=template, doc_to_target="label", doc_to_choice=["y"]),
                           features=["ctx", "q", "note", "a", "b", "label", "x_unused"])
    assert template_fields(task) == {"q", "label"}


def test_a_data_file_wider_than_the_column_bound_is_one_line(tmp_path, monkeypatch):
    from medbench import data_reading

    monkeypatch.setattr(data_reading, "MAX_DATA_COLUMNS", 8)
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps({"q": "a", "label": 1}) + "\n" + json.dumps({f"f{i}": i for i in range(9)}) + "\n")
    with pytest.raises(MedbenchError, match=r"more than 8 distinct fields \(row 2 takes it past that\)"):
        data_reading.read_records(path)
    path.write_text(json.dumps({f"f{i}": i for i in range(8)}) + "\n")
    assert len(data_reading.read_records(path)) == 1


def test_a_published_rows_answer_outside_its_choices_is_scored_as_lm_eval_scores_it(monkeypatch):
    from medbench import task_documents

    docs = [{"q": "a", "label": 1}, {"q": "b", "label": 7}]
    task = SimpleNamespace(eval_docs=docs, multiple_input=False, config=SimpleNamespace(test_split="test"),
                           doc_to_choice=lambda doc: ["no", "yes"], doc_to_target=lambda doc: doc["label"])
    entry = SimpleNamespace(name="pub", config={"output_type": "multiple_choice"})
    monkeypatch.setattr(task_documents, "template_fields", lambda task: {"q", "label"})
    monkeypatch.setattr(task_documents, "_published", lambda entry, task: True)  # a hub or lm-eval data set
    with pytest.warns(UserWarning, match=r"1 row\(s\) of its published 'test' data are scored wrong .* row 2 has "
                                         r"the answer 7"):
        task_documents.check_documents(task, entry, None)
    monkeypatch.setattr(task_documents, "_published", lambda entry, task: False)  # a user's or medbench's rows
    with pytest.raises(MedbenchError, match=r"row 2 of its 'test' split has the answer 7"):
        task_documents.check_documents(task, entry, None)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory is read from /proc (Linux)")
def test_a_render_that_keeps_growing_memory_is_stopped():
    from jinja2.sandbox import SecurityError

    from medbench.task_trust import time_limit

    kept = []
    with pytest.raises(SecurityError, match="rendering took more than 64 MiB of memory"):
        with time_limit(5.0, memory_bytes=64 << 20):
            for _ in range(2000):  # 1 MB at a time, each step small: only the total is past the bound
                kept.append(bytearray(1 << 20))
                sum(range(20000))  # give the 50 ms sampling time to run
    kept.clear()
    # a nested limit (a regex inside a render) gives the outer one back its sampling: it still stops the render
    with pytest.raises(SecurityError, match="rendering took more than 0.3 s"):
        with time_limit(0.3):
            with time_limit(1.0):
                pass
            while True:
                sum(range(1000))


def test_a_row_listing_a_choice_twice_is_scored_as_lm_eval_scores_it_with_a_warning(tmp_path, tiny_model_dir,
                                                                                     capsys):
    rows = [{**GOOD, "ch": ["no", "yes"]}, {"q": "b", "label": 2, "ch": ["no", "yes", "yes"]}]
    folder = task_folder(tmp_path, rows, doc_to_choice="ch")
    code, err = eval_folder(folder, tmp_path, tiny_model_dir, capsys)
    assert code == 0 and "1 row(s) list a choice more than once (first: row 2, 'yes')" in " ".join(err.split())
