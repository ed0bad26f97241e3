"""Scoring modes (loglikelihood / generate-then-extract), rationale demonstrations and task groups."""

import pytest

from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.leaderboard import build_table
from medbench.records import read_samples
from medbench.scoring import ChoiceAnswerFilter, extract_choice, variant_overrides, variant_suffix
from medbench.tasks import build_registry, load_tasks

LETTERS = ["A", "B", "C", "D"]


@pytest.mark.parametrize("text,expected", [
    ("B", "B"),
    ("B. Inhibition of peptidyl transferase", "B"),
    ("(C) because the trough is high", "C"),
    ("A 50-year-old with these findings most likely has... so the answer is D.", "D"),
    ("Answer: A", "A"),
    ("The answer is (B)", "B"),
    ("I would pick option A because", "A"),
    ("A patient like this needs C", "C"),  # the article "A" is not option A
    ("first I thought A. Final answer: C", "C"),  # the last stated answer wins
    ("no idea", None),
    ("", None),
])
def test_extract_letter_choices(text, expected):
    assert extract_choice(text, LETTERS) == expected


def test_extract_by_option_text_and_word_labels():
    options = ["Ceftriaxone", "Binding the 30S subunit", "Doxycycline", "Rest"]
    assert extract_choice("It works by binding the 30S subunit.", LETTERS, options) == "B"
    assert extract_choice("Yes, this describes a UTI.", ["no", "yes"]) == "yes"
    assert extract_choice("NO. The culture is negative", ["no", "yes"]) == "no"
    assert extract_choice("Route to the front desk, not the nurse", ["physician", "nurse", "front desk"]) == "front desk"
    assert extract_choice("The answer is nurse, not the physician", ["physician", "nurse"]) == "nurse"


def test_a_label_merely_mentioned_in_reasoning_is_no_answer():
    rationale = ("No stroke, no diabetes and no depression; blood pressure is controlled and she exercises three "
                 "times a week, and her hearing loss is treated.")  # cut before its answer line
    assert extract_choice(rationale, ["no", "yes"]) is None  # not "no": an unanswered item is not a negative
    assert extract_choice(rationale + " So the answer is yes.", ["no", "yes"]) == "yes"
    assert extract_choice("I would say no, given the history.", ["no", "yes"]) == "no"  # short: a bare answer
    long_letter = "Considering the culture and the allergy history, I would pick option C over the others here today."
    assert extract_choice(long_letter, LETTERS) == "C"  # an option named stays an answer at any length


@pytest.mark.parametrize("text, labels, expected", [
    ("Answer (yes or no): no", ["no", "yes"], "no"),  # the prompt's cue echoed: its "yes" is not the answer
    ("Answer: no. Answer (yes or no): no", ["no", "yes"], "no"),
    ("Answer yes or no: no", ["no", "yes"], "no"),
    ("Is it yes/no? The answer is no", ["no", "yes"], "no"),
    ("yes or no", ["no", "yes"], None),  # only the list: no answer given
    ("Answer (A, B, C or D): C", LETTERS, "C"),
    ("It is A or B, but most likely B", LETTERS, "B"),
    ("Answer (front desk or nurse): nurse", ["physician", "nurse", "front desk"], "nurse"),
])
def test_a_list_of_the_options_is_not_read_as_the_answer(text, labels, expected):
    assert extract_choice(text, labels) == expected


def test_choice_filter_reads_labels_from_the_yaml_spec():
    resps = [["The answer is C."], ["yes"], ["???"]]
    docs = [{"choices": ["a", "b", "c", "d"]}, {"choices": ["a", "b", "c", "d"]}, {"choices": ["a"] * 4}]
    assert ChoiceAnswerFilter(doc_to_choice=LETTERS).apply(resps, docs) == [["C"], ["[invalid]"], ["[invalid]"]]
    per_doc = ChoiceAnswerFilter(doc_to_choice="labels", option_field=None)
    assert per_doc.apply([["it is yes"]], [{"labels": ["no", "yes"]}]) == [["yes"]]


def test_variant_overrides_and_suffixes():
    config = build_registry().get("medqa").config
    assert variant_overrides("medqa", config, "loglikelihood", False) == {}
    generate = variant_overrides("medqa", config, "generate", False)
    assert generate["output_type"] == "generate_until"
    assert generate["metric_list"][0]["metric"] == "exact_match"
    assert variant_suffix(config, "generate", False) == "@gen"
    assert variant_suffix(config, "generate", True) == "@gen@rationales"
    with pytest.raises(MedbenchError, match="no rationale_field"):
        variant_overrides("medqa", config, "loglikelihood", True)
    with pytest.raises(MedbenchError, match="unknown scoring mode"):
        variant_overrides("medqa", config, "vibes", False)


def test_generate_mode_task_keeps_data_and_choices():
    task = load_tasks(["medqa"], mode="generate")["medqa"]
    assert task.config.output_type == "generate_until"
    assert len(task.test_docs()) == 40 and task.doc_to_choice(task.test_docs()[0]) == LETTERS


def test_rationale_demonstrations_carry_the_rationale():
    task = load_tasks(["medmcqa"], fewshot_rationales=True)["medmcqa"]
    demo = task.fewshot_docs()[0]
    target = task.fewshot_cfg.doc_to_target(demo)
    label = LETTERS[demo["gold"]]
    assert target.startswith(label + "\nExplanation: ") and demo["explanation"] in target
    generate = load_tasks(["medmcqa"], mode="generate", fewshot_rationales=True)["medmcqa"]
    assert generate.fewshot_cfg.doc_to_target(demo).endswith(f"So the answer is {label}.")


def test_generate_mode_records_its_own_column(tiny_model_dir, tmp_path):
    raw, generated = (evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=3, output_dir=tmp_path,
                                                               mode=mode))[0] for mode in ("loglikelihood", "generate"))
    assert (raw["record_key"], generated["record_key"]) == ("medqa", "medqa@gen")
    assert generated["task"]["scoring"] == {"mode": "generate", "fewshot_rationales": False}
    assert generated["primary_metric"] == "exact_match"
    for sample in read_samples(generated):
        assert sample["choices"] == LETTERS and sample["logliks"] is None
        assert sample["pred"] is None or 0 <= sample["pred"] < 4
        assert sample["exact_match"] == float(sample["pred"] == sample["gold"])
    assert build_table(tmp_path).columns == ["medqa", "medqa@gen"]


def test_fewshot_rationales_default_to_three_shots(tiny_model_dir, tmp_path):
    (record,) = evaluate(str(tiny_model_dir), EvalConfig(tasks=["medmcqa"], limit=2, output_dir=tmp_path,
                                                         fewshot_rationales=True))
    assert record["record_key"] == "medmcqa@3shot@rationales"
    assert read_samples(record)[0]["prompt"].count("Explanation: ") == 3
    with pytest.raises(MedbenchError, match="--num-fewshot 0 shows no demonstrations"):
        EvalConfig(tasks=["medmcqa"], fewshot_rationales=True, num_fewshot=0)


def test_groups_expand_to_their_tasks(plugin_registration, tmp_path):
    from medbench import hookimpl

    (tmp_path / "exams.yaml").write_text("group: exams\ntask: [medqa, medmcqa]\n")

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(tmp_path)

    plugin_registration(Plugin(), "exam-group")
    registry = build_registry()
    assert registry.expand(["exams", "medqa"]) == ["medqa", "medmcqa"]
    with pytest.raises(MedbenchError, match="unknown task 'exam'.*did you mean exams"):
        registry.expand(["exam"])
