"""Choosing which rationale field a study uses, for training targets (sft ``rationale_field``) and for demonstrations
(``fewshot_rationales: FIELD``): each writer is its own step, data hash and column, and a field the task's data
lacks is one line, exit 2, before any model loads."""

import pytest

from medbench.cli import main
from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.scoring import variant_suffix
from medbench.tasks import build_registry, load_tasks
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import examples_hash, load_training_examples
from medbench_plugins.sft import SFT, SFTOptions, prepare, with_rationale_field

ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def one_line_error(argv, capsys, monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in out + err and len(errors) == 1 and exit_info.value.code == 2, err
    return errors[0]


@pytest.fixture(scope="module")
def adrd():
    return load_training_examples("adrd_prediction")


def test_rationale_field_trains_on_that_writers_rationale_and_enters_the_data_hash(tiny_model_dir, tmp_path, adrd):
    config = build_config(SFTOptions, {}, {"target": "rationale", "rationale_field": "rationale_clinician",
                                           "train_batch_size": 2, "max_steps": 1, "max_examples": 2,
                                           "max_length": 4096}, "sft")
    run = prepare(TrainRequest(model_ref=str(tiny_model_dir), task="adrd_prediction", output_dir=tmp_path / "run",
                               config=config, examples=list(adrd)))
    example = run.examples[0]
    assert example.rationale == example.doc["rationale_clinician"] != example.doc["rationale"]
    labels = run.trainer.train_dataset[0]["labels"]
    trained = run.trainer.processing_class.decode([token for token in labels if token != -100])
    assert trained == f" {example.rationale}\nAnswer: {example.answer}<|eos|>"
    # the same rows with the task's own field (the heuristic writer) hash differently: another run, another data hash
    same_rows = [adrd[e.doc_id] for e in run.examples]
    assert [e.doc_id for e in same_rows] == [e.doc_id for e in run.examples]
    assert examples_hash(run.examples) != examples_hash(same_rows)
    assert with_rationale_field(adrd, None, "adrd_prediction") is adrd  # left out: as before


@pytest.mark.parametrize("options, message", [
    ({"target": "label", "rationale_field": "rationale_clinician"}, "--rationale-field is read by --target rationale"),
    ({"target": "rationale", "rationale_field": " "}, "--rationale-field is empty"),
])
def test_a_rationale_field_without_a_rationale_target_is_refused(options, message):
    with pytest.raises(MedbenchError, match=message):
        build_config(SFTOptions, {}, options, "sft")


def test_a_field_the_training_data_lacks_is_one_line_before_training(capsys, monkeypatch, tmp_path):
    reason = SFT().plan_check("adrd_prediction", {"target": "rationale", "rationale_field": "rationale_nurse"})
    assert "has no field 'rationale_nurse'" in reason and "rationale, rationale_clinician" in reason
    clinician = {"target": "rationale", "rationale_field": "rationale_clinician"}
    assert SFT().plan_check("adrd_prediction", clinician) is None
    error = one_line_error(["train", "--plugin", "sft", "--task", "adrd_prediction", "--output-dir",
                            str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--target", "rationale",
                            "--rationale-field", "rationale_nurse"], capsys, monkeypatch)
    assert "has no field 'rationale_nurse'" in error and not (tmp_path / "runs").exists()


def test_demonstrations_read_the_named_field_in_their_own_column():
    config = build_registry().get("adrd_prediction").config
    assert variant_suffix(config, "generate", True) == "@gen@rationales"
    assert variant_suffix(config, "generate", "rationale") == "@gen@rationales"  # the task's own field
    assert variant_suffix(config, "generate", "rationale_clinician") == "@gen@rationales=rationale_clinician"
    own = load_tasks(["adrd_prediction"], mode="generate", fewshot_rationales=True)["adrd_prediction"]
    clinician = load_tasks(["adrd_prediction"], mode="generate",
                           fewshot_rationales="rationale_clinician")["adrd_prediction"]
    demo = clinician.fewshot_docs()[0]
    assert clinician.fewshot_cfg.doc_to_target(demo) == f"{demo['rationale_clinician']} So the answer is " \
                                                       f"{demo['label']}."
    assert own.fewshot_cfg.doc_to_target(demo) == f"{demo['rationale']} So the answer is {demo['label']}."
    assert EvalConfig(tasks=["adrd_prediction"], fewshot_rationales="rationale_clinician").num_fewshot == 3
    with pytest.raises(MedbenchError, match="neither true/false nor a document field name"):
        EvalConfig(tasks=["adrd_prediction"], fewshot_rationales="rationale clinician\n")


@pytest.mark.parametrize("value, message", [
    ("rationale_nurse", "has no rationale in field 'rationale_nurse' in its few-shot split 'train'"),
    ("x;y", "neither true/false nor a document field name"),
])
def test_a_demonstration_field_the_data_lacks_is_one_line(capsys, monkeypatch, tmp_path, value, message):
    error = one_line_error(["eval", "--tasks", "adrd_prediction", "--fewshot-rationales", value, "--limit", "1",
                            "--leaderboard-dir", str(tmp_path)], capsys, monkeypatch)
    assert message in error and " — " in error


def test_fewshot_rationales_alone_is_still_the_tasks_own_field(tiny_model_dir, tmp_path):
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medmcqa"], limit=1, output_dir=tmp_path,
                                                         fewshot_rationales=True))
    assert record["record_key"] == "medmcqa@3shot@rationales"
    assert record["task"]["scoring"] == {"mode": "loglikelihood", "fewshot_rationales": True,
                                         "rationale_field": "explanation"}
