"""The record schema is defined once (medbench.record_schema.Record): evaluation builds a typed Record, the writer
serialises and checks it, readers check the same dataclasses, and re-scoring edits the typed record."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, backend_model_info, evaluate
from medbench.leaderboard import build_table, rescore
from medbench.record_schema import MetricValue, ModelInfo, Record, RecordError, TaskInfo, validate_record
from medbench.records import read_records, write_record


def stored_json(record):
    return json.loads(Path(record["_path"]).read_text())


@pytest.fixture(scope="module")
def scored(tiny_model_dir, tmp_path_factory):
    board = tmp_path_factory.mktemp("board")
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=3, output_dir=board))
    return board, record


def test_every_field_evaluation_writes_is_named_by_the_schema(scored):
    _, record = scored
    data = stored_json(record)
    typed = Record.from_json(data)
    # nothing evaluation writes falls outside the schema: the dataclasses are the definition, not a loose check
    assert typed.other == {} and typed.task.other == {} and typed.model.other == {}
    assert typed.task.scoring.other == {} and typed.data_source.other == {}
    assert all(metric.other == {} for metric in typed.metrics.values())
    assert isinstance(typed.task, TaskInfo) and isinstance(typed.model, ModelInfo)
    assert isinstance(typed.metrics["acc"], MetricValue) and typed.score == typed.metrics["acc"].value
    assert typed.model.backend and typed.schema == 1 and typed.samples_file == "samples.jsonl"
    assert typed.n == 3 and typed.task.split_size >= 3 and typed.task.scoring.mode == "loglikelihood"


def test_json_round_trips_through_the_typed_record(scored):
    _, record = scored
    data = stored_json(record)
    assert Record.from_json(data).to_json() == data
    # fields most records lack stay absent rather than null; required ones that are null stay null
    assert "judges" not in data and "rescored" not in data and "extra" not in data
    assert "stderr" in data["metrics"]["acc"]


def test_keys_the_schema_does_not_name_are_kept(scored):
    _, record = scored
    data = stored_json(record)
    data["model"]["server"] = "http://127.0.0.1:8000/v1"  # a served backend's own key
    data["future_field"] = {"from": "a newer writer"}
    data["metrics"]["acc"]["ci"] = [0.1, 0.9]
    typed = Record.from_json(data)
    assert typed.model.other == {"server": "http://127.0.0.1:8000/v1"}
    assert typed.other == {"future_field": {"from": "a newer writer"}}
    assert typed.to_json() == data


@pytest.mark.parametrize("path, value, message", [
    (("task", "scoring", "fewshot_rationales"), "yes", "task.scoring.fewshot_rationales"),
    (("rescore_kept",), [1], "rescore_kept[0]"),
    (("rescore_kept",), "acc", "rescore_kept is"),
    (("duration_s",), -1.0, "duration_s is -1.0, below 0"),
    (("resumed_requests",), True, "resumed_requests"),
    (("judges",), {"likert": "yes"}, "judges['likert']"),
    (("model", "backend"), 3, "model.backend"),
    (("data_source", "kind"), None, "data_source.kind"),
])
def test_wrongly_typed_fields_are_named(scored, path, value, message):
    _, record = scored
    data = stored_json(record)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(RecordError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_record(data)
    with pytest.raises(RecordError):
        Record.from_json(data)


def test_the_writer_refuses_a_record_the_schema_rejects(scored, tmp_path):
    _, record = scored
    data = stored_json(record)
    data["n"] = "three"
    with pytest.raises(MedbenchError, match="does not match the record schema .n is"):
        write_record(tmp_path / "lb", data, [])
    assert not (tmp_path / "lb" / "records").exists() or not list((tmp_path / "lb" / "records").rglob("*.json"))


def test_a_typed_record_is_what_the_writer_takes(scored, tmp_path):
    _, record = scored
    typed = Record.from_json(stored_json(record))
    typed.model.label = "renamed"
    path = write_record(tmp_path / "lb", typed, [])
    (read,) = read_records(tmp_path / "lb")
    assert read["model"]["label"] == "renamed" and Path(read["_path"]) == path
    assert build_table(tmp_path / "lb", with_stats=False).rows[0].label == "renamed"


def test_rescoring_edits_the_typed_record_and_keeps_unknown_keys(scored, tmp_path):
    board, record = scored
    data = stored_json(record)
    data["future_field"] = 7
    Path(record["_path"]).write_text(json.dumps(data))
    rescored = rescore(Path(record["_path"]).parent)
    on_disk = json.loads(Path(record["_path"]).read_text())
    assert on_disk["future_field"] == 7 and on_disk["rescored"] and "rescore_kept" not in on_disk
    assert Record.from_json(on_disk).score == pytest.approx(data["score"]) == pytest.approx(rescored["score"])


def test_a_backend_describing_its_model_wrongly_is_one_line():
    backend = SimpleNamespace(model_info={"backend": "acme", "weights_hash": "abc", "parameters": "many"})
    with pytest.raises(MedbenchError, match="backend 'acme' describes the model wrongly .model.parameters"):
        backend_model_info(backend, "label")
    info = backend_model_info(SimpleNamespace(model_info={"backend": "acme", "weights_hash": "abc", "gpu": "x"}), "m")
    assert info.label == "m" and info.other == {"gpu": "x"}
