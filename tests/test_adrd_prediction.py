"""adrd_prediction: outcomes drawn from a calibrated risk model, a population-prevalence test split, and
rationales written from the record by an imperfect rule of thumb (never from the hidden risk model).

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


# the writer's documented bands: its points (after its judgment) against these cut-offs
PROFILE_BANDS = [(5, "a high-risk profile"), (3, "a risk profile somewhat above"), (1, "a risk profile somewhat below"),
                 (None, "a low-risk profile")]
# a reassuring phrase and the factor it says is absent
REASSURANCE = {"regular exercise": "physical_inactivity", "an active social life": "social_isolation",
               "no e4 allele": "apoe4", "hearing aids": "hearing_loss", "a normal cognitive screen": "mci",
               "no memory complaints": "mci"}
ABSENT = {"stroke": "stroke", "diabetes": "diabetes", "depression": "depression",
          "untreated hearing loss": "hearing_loss", "known APOE e4": "apoe4"}


def _parts(rationale):
    """(evidence, profile sentence, conclusion): the conclusion is the last sentence."""
    evidence, rest = rationale.split(" Overall this is ")
    profile, conclusion = rest.split(". ", 1)
    return evidence, profile, conclusion


def _named(evidence):
    """The factors a rationale names as present: its major and other risk-factor sentences."""
    listed = " ".join(re.findall(r"(?:Major|Other) risk factors in the record: ([^.]*(?:\.\d[^.]*)*)\.", evidence))
    return {f for f, words in RATIONALE_WORDS.items() if words in listed}


def test_rationale_cites_the_evidence_never_the_probability():
    for row in all_rows():
        rationale, factors, history = row["rationale"], row["risk_factors"], row["history"]
        assert not re.search(r"%|probab|threshold|odds|logit|risk model|estimated|\banswer\b", rationale,
                             flags=re.IGNORECASE), rationale
        assert f"the patient is {row['age']}." in rationale and row["index_date"] in rationale
        named = _named(_parts(rationale)[0])
        assert all(factors[f] for f in named), (named, rationale)  # never a factor the record lacks
        for factor, present in factors.items():  # only the easily overlooked factors may go unnamed
            if present and factor not in gen().OVERLOOKED:
                assert factor in named, (factor, rationale)
        if factors["mci"]:  # its timing, as the history dates it
            year = re.search(r"- (\d{4})-\d\d-\d\d: Memory clinic", history).group(1)
            assert f"mild cognitive impairment diagnosed {year}" in rationale
        if "hypertension" in named:
            year = re.search(r"- (\d{4})-\d\d-\d\d: [^\n]*\(I10\)", history).group(1)
            assert f"hypertension since {year}" in rationale
    # the writer overlooks some factors, as clinicians do: neither all nor none of the overlooked ones present
    overlooked = [(f in _named(_parts(r["rationale"])[0])) for r in all_rows()
                  for f, present in r["risk_factors"].items() if present and f in gen().OVERLOOKED]
    assert 0.35 < sum(overlooked) / len(overlooked) < 0.65


def test_each_factor_is_weighed_on_its_true_side():
    for row in all_rows():
        factors = row["risk_factors"]
        evidence, _, _ = _parts(row["rationale"])
        major = re.search(r"Major risk factors in the record: ([^.]*(?:\.\d[^.]*)*)\.", evidence)
        favour = re.search(r"In the patient's favour: (.*)\.$", evidence)
        named = _named(evidence)
        for factor in named:  # MCI, APOE e4 and subjective decline are major, the rest "other"
            in_major = bool(major and RATIONALE_WORDS[factor] in major.group(1))
            assert in_major == (factor in ("mci", "apoe4", "subjective_cognitive_decline")), (factor, evidence)
        assert ("No dementia risk factor stands out in the record." in evidence) == (not named)
        for phrase, factor in REASSURANCE.items():  # reassurance only where the factor is absent
            if favour and phrase in favour.group(1):
                assert not factors[factor], (phrase, evidence)
        absent = favour and re.search(r"(?:^|; )no ([^;]*) documented$", favour.group(1))
        for name in re.split(r", | or ", absent.group(1)) if absent else []:
            assert not factors[ABSENT[name]], (name, evidence)  # a factor missed is never called absent
        assert "weigh less" not in evidence  # the model's age attenuation is not the writer's


def _writer_points(row):
    """The writer's documented points before its judgment (MCI 3; APOE e4, family history, stroke 2; others 1)."""
    return sum({"mci": 3, "apoe4": 2, "family_history": 2, "stroke": 2}.get(f, 1)
               for f in _named(_parts(row["rationale"])[0]))


def test_profile_is_the_writers_rule_of_thumb_and_the_label_only_the_last_sentence():
    shifts = []
    for row in all_rows():
        _, profile, conclusion = _parts(row["rationale"])
        band = next(i for i, (_, phrase) in enumerate(PROFILE_BANDS) if profile.startswith(phrase))
        points = _writer_points(row)
        possible = {next(i for i, (cut, _) in enumerate(PROFILE_BANDS) if cut is None or points + d >= cut)
                    for d in (-1, 0, 1)}
        assert band in possible, (points, profile)
        shifts.append(band != next(i for i, (cut, _) in enumerate(PROFILE_BANDS) if cut is None or points >= cut))
        stance = "concordant" if (row["label"] == "yes") == (band <= 1) else "discordant"
        assert row["rationale_stance"] == stance
    assert 0.1 < sum(shifts) / len(shifts) < 0.5  # the writer's judgment moves some impressions across a band
    # the evidence and profile are rendered from the record alone: the same text under either label
    rng = random.Random(7)
    for _ in range(400):
        age, factors = gen().sample_patient(rng)
        _, details = gen().render_history(rng, age, rng.choice(["female", "male"]), factors)
        yes = gen().render_rationale(random.Random(0), age, factors, details, "yes")
        no = gen().render_rationale(random.Random(0), age, factors, details, "no")
        assert _parts(yes)[:2] == _parts(no)[:2] and _parts(yes)[2] != _parts(no)[2]


def test_rationales_are_blind_to_the_risk_model(monkeypatch):
    """Rendering a rationale never consults the model: with its functions broken, every rationale is the same."""
    rows = splits()["train"][:40]
    rng = random.Random(11)
    cases = []
    for _ in range(200):
        age, factors = gen().sample_patient(rng)
        _, details = gen().render_history(rng, age, rng.choice(["female", "male"]), factors)
        cases.append((age, factors, details, rng.choice(["no", "yes"])))
    before = [gen().render_rationale(random.Random(0), *case) for case in cases]

    def broken(*_, **__):
        raise AssertionError("a rationale read the risk model")

    for name in ("risk_logit", "risk_probability", "balanced_probability", "difficulty_of"):
        monkeypatch.setattr(gen(), name, broken)
    assert [gen().render_rationale(random.Random(0), *case) for case in cases] == before
    assert rows and all(r["rationale_stance"] in ("concordant", "discordant") for r in rows)


def test_discordant_rationales_never_claim_the_evidence_favours_the_label():
    kinds = set()
    for row in all_rows():
        factors, label = row["risk_factors"], row["label"]
        evidence, profile, conclusion = _parts(row["rationale"])
        if row["rationale_stance"] == "concordant":  # say which way, as strongly as the writer's impression does
            direction = "towards" if label == "yes" else "away from"
            strength = "points" if profile.startswith(("a high-risk", "a low-risk")) else "leans"
            assert f"the evidence {strength} {direction} a dementia diagnosis" in conclusion, row["rationale"]
            continue
        assert not re.search(r"evidence (points|leans)|favour a", conclusion), conclusion
        if conclusion.startswith("Despite"):
            cited = re.match(r"Despite this [^,]*profile, (.*?) (?:leaves?|counts?) ", conclusion).group(1)
            if label == "yes":  # every factor cited is present and named; older age only from 78
                assert "remains possible" in conclusion
                assert "points away from it" in conclusion or "does not predict it" in conclusion
                names = {v: k for k, v in gen().FACTOR_NAMES.items()}
                for item in re.split(r", | and (?=the |current |older )", cited):
                    assert item == "older age" and row["age"] >= 78 or (
                        factors[names[item]] and names[item] in _named(evidence)), (item, conclusion)
            else:  # everything cited is in the patient's favour list (or an age under 70)
                favour = evidence.split("In the patient's favour: ")[1]
                for item in re.split(r" and (?=[a-zA-Z])(?![^(]*\))", cited):
                    item = item.removeprefix("the absence of ")
                    assert item == "a relatively young age" and row["age"] < 70 or item.split(" (")[0] in favour, \
                        (item, row["rationale"])
                assert "remain free of dementia" in conclusion
            kinds.add((label, "cited"))
        else:
            assert "not predictable from this record" in conclusion, conclusion
            kinds.add((label, "nothing"))
    assert {("yes", "cited"), ("no", "cited"), ("yes", "nothing")} <= kinds
    # the reviewer's case: 70, no risk factor, MoCA 29/30, diagnosed: nothing supports it and the text says so
    (row,) = [r for r in splits()["train"] if r["label"] == "yes" and r["age"] == 70
              and not any(r["risk_factors"].values()) and "MoCA 29/30" in r["history"]]
    assert _parts(row["rationale"])[1].startswith(("a low-risk profile", "a risk profile somewhat below"))
    assert "not predictable from this record" in _parts(row["rationale"])[2]


def test_a_rationale_predicts_the_outcome_no_better_than_a_reader_of_the_history():
    """The leak the reviewer found: rationales once banded the model's own probability, so their profile stated the
    Bayes-optimal answer (verdict F1 0.75 on test). Now the writer's verdict is no better than a bag-of-words model
    on the history, and the label-independent part stays under what the record's facts give (README.md)."""
    from medbench.baselines import _Split, bow_classify, score

    def split(rows, text):
        return _Split([text(r) for r in rows], [int(r["label"] == "yes") for r in rows], [["no", "yes"]] * len(rows),
                      [{}] * len(rows))

    def before_conclusion(row):
        evidence, profile, _ = _parts(row["rationale"])
        return f"{evidence} Overall this is {profile}."

    train, test = splits()["train"], splits()["test"]
    gold = split(test, before_conclusion).gold
    history = score("macro_f1", gold, bow_classify(split(train, lambda r: r["history"]),
                                                     split(test, lambda r: r["history"])), 2)
    verdict = [int(_parts(r["rationale"])[1].startswith(("a high-risk", "a risk profile somewhat above")))
               for r in test]
    assert score("macro_f1", gold, verdict, 2) <= history + 0.02, (score("macro_f1", gold, verdict, 2), history)
    for name, ceiling in (("test", 0.70), ("test_prevalence", 0.45)):  # under the risk model's own F1
        rows = splits()[name]
        f1 = score("f1", split(rows, before_conclusion).gold,
                   bow_classify(split(train, before_conclusion), split(rows, before_conclusion)), 2)
        assert f1 <= ceiling, (name, f1)


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


# --- the clinician writer (``rationale_clinician``): rationale quality as a factor of the rationale_sft study -------
# its documented weighting: age bands 65-69 0 ... 85+ 4 points, MCI 3, APOE e4 2, every other factor 1
CLINICIAN_AGE_NOTES = {0: "still young for dementia", 1: "age adds somewhat to the risk",
                       2: "age clearly adds to the risk", 3: "age is itself a major risk factor",
                       4: "age alone makes dementia common"}


def _clinician_points(row):
    age_points = sum(row["age"] >= cut for cut in (70, 75, 80, 85))
    return age_points + sum({"mci": 3, "apoe4": 2}.get(f, 1) for f, present in row["risk_factors"].items() if present)


def _clinician_band(profile):
    return next(i for i, (_, phrase) in enumerate(PROFILE_BANDS) if profile.startswith(phrase))


def test_clinician_rationale_weighs_age_and_names_every_factor_on_every_row():
    for row in all_rows():
        rationale, factors = row["rationale_clinician"], row["risk_factors"]
        assert not re.search(r"%|probab|threshold|odds|logit|risk model|estimated|\d\s*points?\b|\banswer\b",
                             rationale, flags=re.IGNORECASE), rationale
        evidence, profile, _ = _parts(rationale)
        age_points = sum(row["age"] >= cut for cut in (70, 75, 80, 85))
        assert evidence.startswith(f"At the index date ({row['index_date']}) the patient is {row['age']}: ")
        assert CLINICIAN_AGE_NOTES[age_points] in evidence.split(". ")[0], evidence
        # every documented factor named, none the record lacks: no misses, unlike the heuristic writer
        assert _named(evidence) == {f for f, present in factors.items() if present}, rationale
        favour = re.search(r"In the patient's favour: (.*)\.$", evidence)
        absent = favour and re.search(r"(?:^|; )no ([^;]*) documented$", favour.group(1))
        for name in re.split(r", | or ", absent.group(1)) if absent else []:
            assert not factors[ABSENT[name]], (name, evidence)
        # no judgment noise: the band is the documented points rule (>= 8, >= 6, >= 4), row by row
        points = _clinician_points(row)
        assert _clinician_band(profile) == next(i for i, cut in enumerate((8, 6, 4, None))
                                                if cut is None or points >= cut), (points, profile)
    # the same record gives the same text under either label, but for the conclusion, and the same text twice
    rng = random.Random(5)
    for _ in range(200):
        age, factors = gen().sample_patient(rng)
        _, details = gen().render_history(rng, age, rng.choice(["female", "male"]), factors)
        yes, no = (gen().render_clinician_rationale(age, factors, details, label) for label in ("yes", "no"))
        assert _parts(yes)[:2] == _parts(no)[:2] and _parts(yes)[2] != _parts(no)[2]
        assert yes == gen().render_clinician_rationale(age, factors, details, "yes")


def test_clinician_discordant_rows_never_claim_the_evidence_favours_the_label():
    kinds = set()
    for row in all_rows():
        label, factors = row["label"], row["risk_factors"]
        evidence, profile, conclusion = _parts(row["rationale_clinician"])
        if (label == "yes") == (_clinician_band(profile) <= 1):  # concordant: which way, as strongly as it reads
            strength = "points" if _clinician_band(profile) in (0, 3) else "leans"
            direction = "towards" if label == "yes" else "away from"
            assert f"the evidence {strength} {direction} a dementia diagnosis" in conclusion, conclusion
            continue
        assert not re.search(r"evidence (points|leans)|favour a", conclusion), conclusion
        if not conclusion.startswith("Despite"):
            assert "not predictable from this record" in conclusion, conclusion
            continue
        cited = re.match(r"Despite this [^,]*profile, (.*?) (?:leaves?|counts?) ", conclusion).group(1)
        if label == "yes":  # older age from 75, else factors the record holds
            names = {v: k for k, v in gen().FACTOR_NAMES.items()}
            for item in re.split(r", | and (?=the |current |older )", cited):
                assert item == "older age" and row["age"] >= 75 or factors[names[item]], (item, conclusion)
            assert "remains possible" in conclusion
        else:
            favour = evidence.split("In the patient's favour: ")[1]
            for item in re.split(r" and (?=[a-zA-Z])(?![^(]*\))", cited):
                item = item.removeprefix("the absence of ")
                assert item == "a relatively young age" and row["age"] < 70 or item.split(" (")[0] in favour, item
            assert "remain free of dementia" in conclusion
        kinds.add(label)
    assert kinds == {"yes", "no"}


def test_clinician_writer_draws_nothing_from_the_patients_and_never_reads_the_model(monkeypatch):
    """Its own stream (seeded by the record) or none: without it every other field is byte for byte the same."""
    cases = []
    rng = random.Random(13)
    for _ in range(100):
        age, factors = gen().sample_patient(rng)
        _, details = gen().render_history(rng, age, rng.choice(["female", "male"]), factors)
        cases.append((age, factors, details, rng.choice(["no", "yes"])))
    before = [gen().render_clinician_rationale(*case) for case in cases]
    for name in ("risk_logit", "risk_probability", "balanced_probability", "difficulty_of"):
        monkeypatch.setattr(gen(), name, lambda *_, **__: pytest.fail("the clinician read the risk model"))
    assert [gen().render_clinician_rationale(*case) for case in cases] == before
    monkeypatch.undo()
    monkeypatch.setattr(gen(), "render_clinician_rationale", lambda *_: "")
    without = gen().generate(gen().SEED)["train"]
    assert [{k: v for k, v in r.items() if k != "rationale_clinician"} for r in without] == \
        [{k: v for k, v in r.items() if k != "rationale_clinician"} for r in splits()["train"]]


def test_clinician_verdict_is_near_the_risk_model_and_above_the_heuristic_writer():
    """The documented macro-F1 of each writer's verdict (impression above average = "yes"; README.md)."""
    from medbench.baselines import score

    def macro_f1(rows, field):
        verdict = [int(_parts(r[field])[1].startswith(("a high-risk", "a risk profile somewhat above"))) for r in rows]
        return score("macro_f1", [int(r["label"] == "yes") for r in rows], verdict, 2)

    for split, clinician, heuristic in (("train", 0.724, 0.652), ("test", 0.731, 0.632),
                                        ("test_prevalence", 0.614, 0.532)):
        rows = splits()[split]
        assert macro_f1(rows, "rationale_clinician") == pytest.approx(clinician, abs=0.001)
        assert macro_f1(rows, "rationale") == pytest.approx(heuristic, abs=0.001)
        bayes = score("macro_f1", [int(r["label"] == "yes") for r in rows],
                      [int(r["logit"] > math.log(0.127 / 0.873)) for r in rows], 2)
        assert clinician <= bayes and clinician - heuristic >= 0.05


def test_training_examples_and_documents_carry_both_writers():
    from medbench.trainingdata import load_training_examples
    from medbench_plugins.sft import with_rationale_field

    examples = load_training_examples("adrd_prediction")
    rows = splits()["train"]
    clinician = with_rationale_field(examples, "rationale_clinician", "adrd_prediction")
    assert [e.rationale for e in clinician] == [r["rationale_clinician"] for r in rows]
    assert [e.rationale for e in examples] == [r["rationale"] for r in rows]  # the task's own field is unchanged
