"""adrd_prediction: outcomes drawn from a calibrated risk model, a population-prevalence test split, and
rationales that cite the record's evidence (never the hidden probability).

The model is re-implemented here from the generator's docstring so a bug in its own function cannot confirm
itself. The generic checks (determinism, committed splits, balance, YAML) live in
test_task_generators_classification.py.
"""

import importlib.util
import json
import math
import random
import re
from functools import lru_cache
from pathlib import Path

import pytest

from medbench.tasks import load_tasks, read_task_yaml, split_sizes

TASK = Path(__file__).resolve().parent.parent / "tasks" / "adrd_prediction"
SPLITS = ["train", "validation", "test"]
ODDS_RATIO = {"mci": 6.0, "apoe4": 2.5, "subjective_cognitive_decline": 2.0, "stroke": 1.7, "hearing_loss": 1.7,
              "depression": 1.7, "tbi": 1.5, "hypertension": 1.3, "smoking": 1.4, "social_isolation": 1.5,
              "low_education": 1.4, "diabetes": 1.5, "family_history": 1.5, "anticholinergic": 1.4,
              "physical_inactivity": 1.3}
MARKERS = {"mci": "(G31.84)", "hypertension": "(I10)", "diabetes": "(E11.9)", "tbi": "(S06.0X1A)",
           "stroke": "(I63.9)", "smoking": "(F17.210)", "physical_inactivity": "(Z72.3)",
           "social_isolation": "(Z60.2)", "low_education": "left school after grade",
           "subjective_cognitive_decline": "Subjective cognitive decline"}
# what the rationale must say about each factor present (a phrase taken from its history)
RATIONALE_WORDS = {"mci": "mild cognitive impairment diagnosed", "apoe4": "one e4 allele",
                   "subjective_cognitive_decline": "self-reported memory decline", "stroke": "ischemic stroke in",
                   "hearing_loss": "untreated", "depression": "major depression diagnosed", "tbi": "head injury",
                   "hypertension": "hypertension since", "smoking": "current smoking",
                   "social_isolation": "social isolation", "low_education": "years of schooling",
                   "diabetes": "type 2 diabetes since", "family_history": "family history of dementia",
                   "anticholinergic": "strongly anticholinergic", "physical_inactivity": "physical inactivity"}


def _documented_logit(age, factors):
    w = 1.0 if age <= 75 else max(0.5, 1 - 0.5 * (age - 75) / 15)
    return -3.8 + math.log(2) * (age - 75) / 5 + sum(
        math.log(ODDS_RATIO[f]) * (1.0 if f in ("mci", "subjective_cognitive_decline") else w)
        for f, present in factors.items() if present)


@lru_cache(maxsize=None)
def gen():
    spec = importlib.util.spec_from_file_location("_adrd_generate", TASK / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def splits():
    return {**gen().generate(gen().SEED), "test_prevalence": gen().generate_prevalence(gen().SEED)}


def all_rows():
    return [row for rows in splits().values() for row in rows]


def test_prevalence_file_is_the_generators_output_and_disjoint_from_the_balanced_splits():
    rows = splits()["test_prevalence"]
    text = (TASK / "data" / "test_prevalence.jsonl").read_text(encoding="utf-8")
    assert text == "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), "run tasks/adrd_prediction/generate.py"
    assert len(rows) == gen().PREVALENCE_SIZE == 400
    histories = [r["history"] for r in all_rows()]
    ids = [r["id"] for r in all_rows()]
    assert len(set(histories)) == len(histories) and len(set(ids)) == len(ids)
    assert gen().generate_prevalence(gen().SEED + 1) != rows


def test_probability_is_the_documented_model_and_difficulty_follows_it():
    for row in all_rows():
        factors = row["risk_factors"]
        assert set(factors) == set(ODDS_RATIO) and not (factors["mci"] and factors["subjective_cognitive_decline"])
        logit = _documented_logit(row["age"], factors)
        assert row["logit"] == pytest.approx(logit, abs=1e-4)
        assert row["probability"] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-4)
        assert 65 <= row["age"] <= 94
        q = 1 / (1 + math.exp(-(logit - math.log(0.127 / 0.873))))
        q = q if row["label"] == "yes" else 1 - q
        assert row["difficulty"] == ("easy" if q >= 0.7 else "medium" if q >= 0.5 else "hard")


def test_outcomes_are_drawn_not_thresholded_and_calibrated():
    rows = splits()["test_prevalence"]
    yes = [r for r in rows if r["label"] == "yes"]
    expected = sum(r["probability"] for r in rows)
    # the observed count is within 3 binomial standard deviations of the model's expectation
    sd = math.sqrt(sum(r["probability"] * (1 - r["probability"]) for r in rows))
    assert abs(len(yes) - expected) < 3 * sd, (len(yes), expected)
    assert 0.07 < len(yes) / len(rows) < 0.2  # a realistic five-year incidence among adults 65+
    balanced = [r for s in SPLITS for r in splits()[s]]
    # no threshold separates the labels: low-risk patients are sometimes diagnosed and high-risk ones not
    assert any(r["label"] == "yes" and r["probability"] < 0.2 for r in balanced)
    assert any(r["label"] == "no" and r["probability"] > 0.5 for r in balanced)
    assert all(r["label"] in ("no", "yes") for r in balanced)


def test_population_mean_risk_matches_the_documented_calibration():
    rng = random.Random(0)
    draws = [gen().sample_patient(rng) for _ in range(20000)]
    mean = sum(gen().risk_probability(age, factors) for age, factors in draws) / len(draws)
    assert mean == pytest.approx(gen().MEAN_RISK, abs=0.01)
    # a cognitively normal patient never reaches the near-certain risk the thresholded model gave (0.95)
    normal = [gen().risk_probability(a, f) for a, f in draws
              if not f["mci"] and not f["subjective_cognitive_decline"]]
    assert max(normal) < 0.75
    mci_at_75 = gen().risk_probability(75, {f: f == "mci" for f in ODDS_RATIO})
    assert 0.1 < mci_at_75 < 0.2  # MCI alone at 75: in the range of community conversion over five years


def test_history_documents_exactly_the_factors():
    for row in all_rows():
        history, factors = row["history"], row["risk_factors"]
        assert f"Age at index: {row['age']}." in history and f"Index date: {row['index_date']}." in history
        for factor, marker in MARKERS.items():
            assert (marker in history) == factors[factor], (factor, history)
        assert ("(F32.1)" in history or "(F33.1)" in history) == factors["depression"]
        unaided = re.search(r"\(H90\.3\)[^\n]*(declined|not using hearing aids)", history)
        assert bool(unaided) == factors["hearing_loss"]
        genotype = re.search(r"APOE genotyping: (e\d/e\d)", history)
        assert bool(genotype and "e4" in genotype.group(1)) == factors["apoe4"]
        family = re.search(r"Family history: (.*)\.", history).group(1)
        assert bool(re.search(r"Alzheimer|dementia", family) and "no dementia" not in family) \
            == factors["family_history"]
        meds = history.rsplit("Medications at index:", 1)[1]
        strong = re.search(r"oxybutynin|amitriptyline|paroxetine|diphenhydramine|hydroxyzine|tolterodine", meds)
        assert bool(strong) == factors["anticholinergic"]


def test_rationale_cites_the_evidence_never_the_probability_and_agrees_with_the_label():
    conclusions = gen().CONCLUSION
    for row in all_rows():
        rationale, factors, history = row["rationale"], row["risk_factors"], row["history"]
        assert not re.search(r"%|probab|threshold|odds|logit|risk model|estimated|\banswer\b", rationale,
                             flags=re.IGNORECASE), rationale
        assert any(rationale.endswith(c) for c in conclusions[row["label"]]), rationale
        assert not any(c in rationale for c in conclusions["no" if row["label"] == "yes" else "yes"])
        assert f"the patient is {row['age']}" in rationale and row["index_date"] in rationale
        for factor, present in factors.items():
            if present:
                assert RATIONALE_WORDS[factor] in rationale, (factor, rationale)
        if factors["mci"]:  # its timing, as the history dates it
            year = re.search(r"- (\d{4})-\d\d-\d\d: Memory clinic", history).group(1)
            assert f"mild cognitive impairment diagnosed {year}" in rationale
        if factors["hypertension"]:
            year = re.search(r"- (\d{4})-\d\d-\d\d: [^\n]*\(I10\)", history).group(1)
            assert f"hypertension since {year}" in rationale
        # evidence is ordered to support the label: risk factors lead a "yes", reassurance leads a "no"
        if row["label"] == "yes" and any(factors.values()):
            assert "Risk factors in the record:" in rationale
        if row["label"] == "no":
            assert "Risk factors in the record:" not in rationale


def test_yaml_variant_scores_the_prevalence_split():
    config = read_task_yaml(TASK / "adrd_prediction_prevalence.yaml")
    base = read_task_yaml(TASK / "adrd_prediction.yaml")
    assert config["task"] == "adrd_prediction_prevalence"
    assert config["custom_dataset"] == "!function utils.load_prevalence"
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target", "output_type"):
        assert config[key] == base[key]
    assert config["metadata"]["primary_metric"] == "f1" and "auroc" in config["metadata"]["medbench_metrics"]
    assert 0 < config["metadata"]["baseline_ceiling"] < base["metadata"]["baseline_ceiling"]
    loaded = load_tasks(["adrd_prediction_prevalence"])["adrd_prediction_prevalence"]
    assert split_sizes(loaded) == {"train": 200, "validation": 50, "test": 400}
    docs = list(loaded.test_docs())
    assert [d["history"] for d in docs] == [r["history"] for r in splits()["test_prevalence"]]
    assert sum(d["gold"] for d in docs) == sum(r["label"] == "yes" for r in splits()["test_prevalence"])


def test_training_examples_carry_the_rationale():
    from medbench.trainingdata import load_training_examples

    examples = load_training_examples("adrd_prediction")
    rows = splits()["train"]
    assert len(examples) == 200
    assert [e.rationale for e in examples] == [r["rationale"] for r in rows]
    assert [e.answer for e in examples] == [r["label"] for r in rows]
    assert examples[0].prompt.rstrip().endswith("Answer (yes or no):") and examples[0].completion.startswith(" ")
