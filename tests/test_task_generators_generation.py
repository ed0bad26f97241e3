"""The generated clinical tasks: clinical_reasoning, discharge_summary, instruction_following.

Generators are deterministic and balanced, the committed data is their output, the tasks load through
medbench, and every scoring function matches hand-computed values on small fixtures. No model runs here.
"""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.tasks import build_registry, load_tasks, read_task_yaml, split_sizes
from task_files import task_module

TASKS = Path(__file__).resolve().parent.parent / "tasks"
SIZES = {
    "clinical_reasoning": {"train": 320, "validation": 50, "test": 400},
    "discharge_summary": {"train": 120, "validation": 30, "test": 170},
    "instruction_following": {"train": 120, "validation": 30, "test": 600},
}



@pytest.fixture(scope="module")
def generators():
    return {task: task_module(task, "generate") for task in SIZES}


@pytest.fixture(scope="module")
def generated(generators):
    return {task: gen.generate() for task, gen in generators.items()}


@pytest.fixture(scope="module")
def ds_utils():
    return task_module("discharge_summary", "utils")


@pytest.fixture(scope="module")
def if_utils():
    return task_module("instruction_following", "utils")


@pytest.fixture(scope="module")
def cr_utils():
    return task_module("clinical_reasoning", "utils")


def _committed(task, split):
    return [json.loads(line) for line in (TASKS / task / "data" / f"{split}.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- all three generators


@pytest.mark.parametrize("task", list(SIZES))
def test_generator_is_deterministic_and_seeded(generators, generated, task):
    gen = generators[task]
    assert gen.generate() == generated[task]
    assert gen.generate(gen.SEED + 1) != generated[task]
    assert {split: len(rows) for split, rows in generated[task].items()} == SIZES[task]


@pytest.mark.parametrize("task", list(SIZES))
def test_committed_data_is_the_generators_output(generated, task):
    for split, rows in generated[task].items():
        assert _committed(task, split) == json.loads(json.dumps(rows)), f"{task}/{split}: run generate.py"
        text = (TASKS / task / "data" / f"{split}.jsonl").read_text()
        assert text == "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)


@pytest.mark.parametrize("task", list(SIZES))
def test_yaml_reads_and_keeps_medbench_keys_under_metadata(generators, task):
    config = read_task_yaml(TASKS / task / f"{task}.yaml")
    assert config["task"] == task and config["custom_dataset"] == "!function utils.load"
    assert (config["training_split"], config["validation_split"], config["test_split"], config["fewshot_split"]) \
        == ("train", "validation", "test", "train")
    meta = config["metadata"]
    assert meta["source"] == "auto" and meta["data_files"] is None and meta["generator"] == "generate.py"
    assert meta["seed"] == generators[task].SEED
    assert meta["primary_metric"] in [m["metric"] for m in config["metric_list"]]
    assert build_registry().entries[task].plugin == "builtin_tasks"
    assert (TASKS / task / "README.md").is_file()


@pytest.mark.parametrize("task", list(SIZES))
def test_task_loads_through_medbench_with_its_split_sizes(task):
    loaded = load_tasks([task])[task]
    assert split_sizes(loaded) == SIZES[task]


def test_no_text_repeats_across_splits(generated):
    for task, key in (("clinical_reasoning", "question"), ("discharge_summary", "note"),
                      ("instruction_following", "prompt")):
        texts = [row[key] for rows in generated[task].values() for row in rows]
        assert len(texts) == len(set(texts)), task


# ---------------------------------------------------------------- clinical_reasoning


def test_clinical_reasoning_balance(generated):
    for split, rows in generated["clinical_reasoning"].items():
        letters = Counter(row["answer_idx"] for row in rows)
        assert set(letters) == set("ABCD") and max(letters.values()) - min(letters.values()) <= 1, (split, letters)
        types = Counter(row["question_type"] for row in rows)
        assert set(types) == {"diagnosis", "treatment"} and abs(types["diagnosis"] - types["treatment"]) <= 1
        assert set(row["difficulty"] for row in rows) == {"easy", "medium", "hard"}
        assert len(set(row["subject"] for row in rows)) >= 8


def test_clinical_reasoning_rows_are_well_formed(generated, generators):
    conditions = generators["clinical_reasoning"].CONDITIONS
    for rows in generated["clinical_reasoning"].values():
        for row in rows:
            options = list(row["options"].values())
            assert len(set(options)) == 4 and row["options"][row["answer_idx"]] == row["answer"]
            assert row["rationale"] and row["question"].endswith("?")
            assert "{" not in row["question"]  # every pronoun placeholder filled
    for cond in conditions:  # a factor's answer differs from the usual first-line treatment
        for factor in cond.get("factors", []):
            assert factor["treatment"] != cond["treatment"]
        assert len(cond["findings"]) >= 4 and len(cond["dx_alts"]) >= 3 and len(cond["wrong_tx"]) >= 3


def test_clinical_reasoning_holds_out_conditions_and_answers(generated, generators):
    gen = generators["clinical_reasoning"]
    splits = generated["clinical_reasoning"]
    conditions = {split: {row["condition"] for row in rows} for split, rows in splits.items()}
    assert (len(conditions["train"]), len(conditions["validation"]), len(conditions["test"])) == (33, 10, 19)
    for split, names in conditions.items():
        assert all(gen.split_of(c) == split for c in gen.CONDITIONS if c["dx"] in names)
        assert names == {c["dx"] for c in gen.CONDITIONS if gen.split_of(c) == split}  # every one appears
    assert not conditions["train"] & conditions["test"] and not conditions["train"] & conditions["validation"]
    assert not conditions["validation"] & conditions["test"]

    def norm(text):
        return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "

    answers = {split: {norm(row["answer"]) for row in rows} for split, rows in splits.items()}
    for held_out in ("validation", "test"):  # not the same answer, nor one inside another ("apixaban")
        for answer in answers[held_out]:
            assert not any(answer in other or other in answer for other in answers["train"]), (held_out, answer)
    for answer in answers["validation"]:
        assert not any(answer in other or other in answer for other in answers["test"]), answer
    assert len(splits["train"]) >= 300  # a study recipe trains on 256 examples


def test_clinical_reasoning_open_scores_every_gold_answer_and_alias(generated, cr_utils):
    for rows in generated["clinical_reasoning"].values():
        for row in rows:
            doc = cr_utils.normalize(row, "r")
            assert "Which of the following" not in doc["open_question"] and doc["open_question"].endswith("?")
            assert doc["answer_text"] == row["answer"]
            for said in [row["answer"], *row["answer_aliases"]]:
                assert cr_utils.process_results_open(doc, [" " + said + "."]) == {"acc": 1.0, "exact_match": 1.0}
            # naming every option is not an answer
            assert cr_utils.process_results_open(doc, [" or ".join(doc["choices"])])["acc"] == 0.0


@pytest.mark.parametrize("response,expected", [
    ("Acute pericarditis", (True, True)),
    ("The most likely diagnosis is pericarditis.", (True, True)),   # an alias, after the lead-in
    ("Answer: acute PERICARDITIS", (True, True)),
    ("This is likely acute pericarditis after a viral illness", (True, False)),  # contains, not exact
    ("Pericarditis or aortic dissection", (False, False)),  # names a distractor too
    ("Myocarditis", (False, False)),
    ("Acute pericarditis\nAortic dissection is less likely", (True, True)),  # only the first line counts
    ("", (False, False)),
])
def test_open_match_by_hand(cr_utils, response, expected):
    distractors = ["Acute inferior myocardial infarction", "Aortic dissection", "Costochondritis"]
    assert cr_utils.open_match(response, "Acute pericarditis", ["pericarditis"], distractors) == expected


def test_open_match_ignores_route_and_connector_words(cr_utils):
    wrong = ["Colchicine alone", "Intravenous alteplase", "Oral aspirin"]
    assert cr_utils.open_match("ibuprofen and colchicine", "Ibuprofen plus colchicine", [], wrong) == (True, True)
    assert cr_utils.open_match("Colchicine", "Ibuprofen plus colchicine", [], wrong) == (False, False)
    assert cr_utils.open_match("IV N-acetylcysteine", "Intravenous N-acetylcysteine", [], []) == (True, True)
    assert cr_utils.open_match("Parkinson's disease", "Parkinson disease", [], []) == (True, True)
    assert cr_utils.open_match("Guillain-Barre syndrome", "Guillain-Barré syndrome", [], []) == (True, True)
    # a distractor whose words sit inside the gold answer does not cancel it
    assert cr_utils.open_match("aspirin plus clopidogrel", "Aspirin plus clopidogrel", [], ["Aspirin"]) \
        == (True, True)


def test_clinical_reasoning_open_yaml_and_loaded_docs(cr_utils):
    config = read_task_yaml(TASKS / "clinical_reasoning" / "clinical_reasoning_open.yaml")
    assert config["output_type"] == "generate_until" and "doc_to_choice" not in config
    assert config["process_results"] == "!function utils.process_results_open"
    assert config["metadata"]["primary_metric"] == "acc"
    assert [m["metric"] for m in config["metric_list"]] == ["acc", "exact_match"]
    task = load_tasks(["clinical_reasoning_open"])["clinical_reasoning_open"]
    assert split_sizes(task) == SIZES["clinical_reasoning"]
    doc = task.test_docs()[0]
    assert task.doc_to_text(doc).startswith("Question: " + doc["open_question"])
    assert task.doc_to_target(doc) == doc["answer_text"]
    assert task.process_results(doc, [doc["answer_text"]])["acc"] == 1.0


def test_clinical_reasoning_bad_aliases_are_one_line_errors(cr_utils):
    row = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C",
           "answer_aliases": "c"}
    with pytest.raises(MedbenchError, match="answer_aliases must be a list of non-empty strings"):
        cr_utils.normalize(row, "f.jsonl row 1")


def test_clinical_reasoning_normalises_like_medqa(cr_utils):
    row = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C", "answer": "c",
           "subject": "neurology", "difficulty": "easy", "question_type": "treatment", "rationale": "because"}
    out = cr_utils.normalize(row, "f.jsonl row 1")
    assert out["choices"] == ["a", "b", "c", "d"] and out["gold"] == 2
    assert (out["subject"], out["question_type"], out["rationale"]) == ("neurology", "treatment", "because")


@pytest.mark.parametrize("change,message", [
    ({"answer": "e"}, "the answer 'e' is not among the choices"),
    ({"answer_idx": "E", "answer": None}, "not among the 4 choices"),
    ({"answer_idx": "A"}, "answer_idx A names 'a', not the answer 'c'"),
    ({"question_type": "prognosis"}, "question_type 'prognosis' is not one of"),
    ({"options": {"A": "a", "B": "b"}}, "options must map the letters A, B, C and D"),
])
def test_clinical_reasoning_bad_rows_are_one_line_errors(cr_utils, change, message):
    row = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C", "answer": "c",
           **change}
    with pytest.raises(MedbenchError, match=re.escape(message)) as info:
        cr_utils.normalize(row, "f.jsonl row 1")
    assert "\n" not in str(info.value) and "f.jsonl row 1" in str(info.value)


def test_clinical_reasoning_user_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": f"Q{i}?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": letter}
            for i, letter in enumerate("DBCA")]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    task = load_tasks(["clinical_reasoning"], metadata={"clinical_reasoning": {"data_files": {"test": str(path)}}})
    assert [d["gold"] for d in task["clinical_reasoning"].test_docs()] == [3, 1, 2, 0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "answer": "z"}))
    with pytest.raises(MedbenchError, match="bad.jsonl row 1: the answer 'z' is not among the choices"):
        load_tasks(["clinical_reasoning"], metadata={"clinical_reasoning": {"data_files": {"test": str(bad)}}})


# ---------------------------------------------------------------- discharge_summary


def test_discharge_key_facts_verbatim_in_note_inferred_not_and_all_in_reference(generated, ds_utils):
    for rows in generated["discharge_summary"].values():
        for row in rows:
            assert 4 <= len(row["key_facts"]) <= 10
            inferred = row["inferred_facts"]
            assert inferred[0] == f"length of stay {row['length_of_stay']} days"
            assert set(inferred) <= set(row["key_facts"])
            for fact in row["key_facts"]:
                assert ds_utils.mentions(row["note"], fact) == (fact not in inferred), (fact, row["note"])
            assert ds_utils.coverage(row["summary"], row["key_facts"]) == 1.0, (row["summary"], row["key_facts"])
            assert ds_utils.length_ok(row["summary"], row["min_words"], row["max_words"]) == 1.0
            assert len(row["summary"].split()) < len(row["note"].split())
    services = Counter(row["service"] for row in generated["discharge_summary"]["test"])
    assert len(services) >= 5
    titrated = [r for rows in generated["discharge_summary"].values() for r in rows if len(r["inferred_facts"]) > 1]
    assert len(titrated) >= 20


def _dose(text):
    return float(text.replace(",", ""))


def test_discharge_notes_do_not_contradict_themselves(generated, generators):
    import datetime as dt

    gen = generators["discharge_summary"]
    for scenario in gen.SCENARIOS:  # no scenario sentence carries a day number of its own
        texts = [*scenario["course"], *[p[1] for p in scenario["procedures"] if p]]
        assert not any(re.search(r"(?i)\bday \d", t) for t in texts), scenario["diagnosis"]
    for rows in generated["discharge_summary"].values():
        for row in rows:
            note = row["note"]
            admit, discharge = (dt.date.fromisoformat(row[k]) for k in ("admission_date", "discharge_date"))
            assert (discharge - admit).days == row["length_of_stay"] >= 1
            assert row["admission_date"] in note and row["discharge_date"] in note
            assert "length of stay" not in note.lower()
            days = [int(d) for d in re.findall(r"^- Day (\d+):", note, flags=re.M)]
            assert days == sorted(days) and days[0] == 1 and days[-1] <= row["length_of_stay"] + 1, note
            assert len(re.findall(r"(?i)\bday \d+", note)) == len(days), note  # day numbers only on bullets
            sex = re.search(r"(\d+)-year-old (man|woman)", note).group(2)
            assert not (sex == "man" and re.search(r"hysterectomy|oral contraceptive", note)), note
            assert not (sex == "woman" and "prostatic" in note), note
            started = re.findall(r"^- START (.+?)(?: \d| daily| nightly| for|\.)", note, flags=re.M)
            if "docusate" in note:
                assert "oxycodone" in note
            if "STOP aspirin" in note:
                assert "START apixaban" in note
            if "STOP fluticasone" in note:
                assert "START budesonide-formoterol" in note
            assert started or "STOP" in note, note
            # a titrated drug's discharge dose follows from the dated steps, in order
            start = re.search(r"Day \d+: (.+?) started at ([\d.]+) (mg|units)", note)
            if start:
                drug, dose = start.group(1), _dose(start.group(2))
                steps = re.findall(r"Day \d+: " + re.escape(drug[0].upper() + drug[1:])
                                   + r" (increased by ([\d.]+)|reduced by ([\d.]+)|dose doubled|dose halved)", note)
                assert steps, note
                for step, up, down in steps:
                    dose = dose + _dose(up) if up else dose - _dose(down) if down else \
                        dose * 2 if "doubled" in step else dose / 2
                unit = start.group(3)
                assert row["inferred_facts"][1] == f"{drug} ... {dose:g} {unit}", (row["inferred_facts"], note)
                assert f"START {drug}" in note and "at the dose reached in hospital" in note
            else:
                assert len(row["inferred_facts"]) == 1


@pytest.mark.parametrize("text,fact,expected", [
    ("Admitted for five days with pneumonia.", "length of stay 5 days", True),
    ("Pneumonia; a 5-day stay.", "length of stay 5 days", True),
    ("LOS 5 days.", "length of stay 5 days", True),
    ("The length of stay was 5 days.", "length of stay 5 days", True),
    ("Admitted for 4 days.", "length of stay 5 days", False),
    ("Completed 5 days of antibiotics.", "length of stay 5 days", False),  # a course length is not the stay
    ("Furosemide titrated to 60 mg daily.", "furosemide ... 60 mg", True),
    ("Furosemide 60mg daily.", "furosemide ... 60 mg", True),
    ("Furosemide 40 mg daily.", "furosemide ... 60 mg", False),
    ("60 mg of furosemide", "furosemide ... 60 mg", False),  # parts in order
    ("Furosemide was continued and the patient later took 60 mg", "furosemide ... 60 mg", False),  # too far apart
    ("Insulin glargine titrated to 28 units nightly.", "insulin glargine ... 28 units", True),
    ("cholecalciferol 2,000 units daily", "cholecalciferol 2000 unit", True),
])
def test_coverage_normalises_stays_doses_and_numbers(ds_utils, text, fact, expected):
    assert ds_utils.mentions(text, fact) is expected


def test_rouge_l_equals_the_hand_computed_lcs():
    """ROUGE-L F of 'the cat sat on the mat' vs 'the cat lay on a mat': LCS = the cat on mat = 4 tokens of 6
    in each, so P = R = F = 4/6."""
    ds = task_module("discharge_summary", "utils")
    assert ds.rouge_l("the cat lay on a mat", "the cat sat on the mat") == pytest.approx(4 / 6)
    # unequal lengths: prediction 'admitted with pneumonia' (3) vs reference 'admitted with severe pneumonia
    # today' (5): LCS 3, P = 1, R = 3/5, F = 2PR/(P+R) = 0.75
    assert ds.rouge_l("admitted with pneumonia", "admitted with severe pneumonia today") == pytest.approx(0.75)
    assert ds.rouge_l("Started apixaban.", "started APIXABAN") == pytest.approx(1.0)  # case and punctuation
    assert ds.rouge_l("", "anything") == 0.0


def test_coverage_and_length_on_hand_made_summaries(ds_utils):
    facts = ["community-acquired pneumonia", "amoxicillin-clavulanate", "lisinopril", "primary care clinic"]
    full = "Admitted with Community-Acquired Pneumonia; started amoxicillin/clavulanate, stopped lisinopril. " \
           "Follow up at the primary care clinic."
    assert ds_utils.coverage(full, facts) == 1.0
    assert ds_utils.coverage("Pneumonia treated with amoxicillin-clavulanate.", facts) == pytest.approx(1 / 4)
    assert ds_utils.coverage("Stopped lisinopril; see primary care clinic.", facts) == pytest.approx(2 / 4)
    assert ds_utils.coverage("started atorvastatin", ["statin"]) == 0.0  # whole words only
    assert ds_utils.length_ok("one two three", 3, 5) == 1.0
    assert ds_utils.length_ok("one two", 3, 5) == 0.0
    assert ds_utils.length_ok("a b c d e f", 3, 5) == 0.0


def test_discharge_process_results_on_a_loaded_doc(ds_utils):
    doc = load_tasks(["discharge_summary"])["discharge_summary"].test_docs()[0]
    perfect = ds_utils.process_results(doc, [" " + doc["summary"] + " "])
    assert perfect == {"rougeL": pytest.approx(1.0), "coverage": 1.0, "length_ok": 1.0}
    empty = ds_utils.process_results(doc, [""])
    assert empty == {"rougeL": 0.0, "coverage": 0.0, "length_ok": 0.0}


def test_discharge_bad_rows_and_defaults(ds_utils):
    row = {"note": "n", "summary": "s", "key_facts": ["x"]}
    out = ds_utils.normalize(row, "r")
    assert (out["min_words"], out["max_words"]) == (15, 100)
    with pytest.raises(MedbenchError, match="key_facts must be a non-empty list"):
        ds_utils.normalize({**row, "key_facts": "x; y"}, "r")
    with pytest.raises(MedbenchError, match="min_words 50 is greater than max_words 10"):
        ds_utils.normalize({**row, "min_words": 50, "max_words": 10}, "r")
    with pytest.raises(MedbenchError, match=r"missing column\(s\) key_facts"):
        ds_utils.normalize({"note": "n", "summary": "s"}, "r")


def test_discharge_yaml_metadata_for_the_judge_hook():
    config = read_task_yaml(TASKS / "discharge_summary" / "discharge_summary.yaml")
    assert config["output_type"] == "generate_until" and config["process_results"] == "!function utils.process_results"
    assert config["metadata"]["judges"] == [] and config["metadata"]["reference_field"] == "summary"
    assert config["metadata"]["primary_metric"] == "rougeL"
    assert [m["metric"] for m in config["metric_list"]] == ["rougeL", "coverage", "length_ok"]
    assert config["generation_kwargs"]["do_sample"] is False


# ---------------------------------------------------------------- instruction_following


def test_instruction_types_all_appear_in_every_split(generated, generators):
    types = set(generators["instruction_following"].INSTRUCTION_TYPES)
    for split, rows in generated["instruction_following"].items():
        seen = Counter(i for row in rows for i in row["instruction_id_list"])
        assert set(seen) == types, (split, types - set(seen))
        for row in rows:
            ids = row["instruction_id_list"]
            assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids) and len(row["kwargs"]) == len(ids)
            assert all(generators["instruction_following"].compatible(a, b) for a in ids for b in ids if a != b)


def test_topic_facts_respect_the_constraints_they_serve(generators):
    for topic in generators["instruction_following"].TOPICS:
        text = " ".join(topic["facts"])
        assert not re.search(r'[,"*\[\]]', text), topic["title"]
        assert re.search(topic["term"], topic["facts"][0], flags=re.IGNORECASE), topic["title"]
        for word in topic["tempting"]:
            assert not re.search(r"\b" + word + r"\b", text, flags=re.IGNORECASE), (topic["title"], word)


def test_every_reference_response_passes_ifevals_checkers(generated, if_utils):
    for rows in generated["instruction_following"].values():
        for row in rows:
            result = if_utils.process_results(if_utils.normalize(row, "r"), [row["response"]])
            assert result["prompt_level_strict_acc"] is True, (row["instruction_id_list"], row["response"])
            assert all(result["inst_level_strict_acc"])


STATIN = {"prompt": "Explain to a patient what a statin does in fewer than 50 words, without the word cholesterol. "
                    "Use exactly 2 bullet points.",
          "instruction_id_list": ["length_constraints:number_words", "keywords:forbidden_words",
                                  "detectable_format:number_bullet_lists"],
          "kwargs": [{"num_words": 50, "relation": "less than"}, {"forbidden_words": ["cholesterol"]},
                     {"num_bullets": 2}]}


@pytest.mark.parametrize("response,expected", [
    ("* A statin lowers the fat your liver releases into the blood.\n* It cuts heart attack and stroke risk.",
     [True, True, True]),
    # violates exactly one constraint: the forbidden word
    ("* A statin lowers your cholesterol.\n* It cuts heart attack and stroke risk.", [True, False, True]),
    # violates exactly one constraint: three bullets
    ("* A statin lowers blood fats.\n* It protects the heart.\n* Take it daily.", [True, True, False]),
    # violates exactly one constraint: 50 words or more
    ("* " + " ".join(["word"] * 30) + "\n* " + " ".join(["more"] * 20), [False, True, True]),
    ("", [False, False, False]),  # IFEval fails every constraint on an empty response
])
def test_constraint_checks_on_hand_written_responses(if_utils, response, expected):
    doc = if_utils.normalize(STATIN, "r")
    result = if_utils.process_results(doc, [response])
    assert result["inst_level_strict_acc"] == expected
    assert result["prompt_level_strict_acc"] is all(expected)


def test_more_constraint_types_by_hand(if_utils):
    def follows(instruction_id, kwargs, response):
        row = {"prompt": "p", "instruction_id_list": [instruction_id], "kwargs": [kwargs]}
        return if_utils.process_results(if_utils.normalize(row, "r"), [response])["prompt_level_strict_acc"]

    assert follows("detectable_format:json_format", {}, '```json\n{"advice": "take it daily"}\n```')
    assert not follows("detectable_format:json_format", {}, "advice: take it daily")
    assert follows("change_case:english_lowercase", {},
                   "take one tablet every evening with water and food, and tell your doctor about side effects.")
    assert not follows("change_case:english_lowercase", {}, "Take one tablet every evening.")
    assert follows("keywords:existence", {"keywords": ["liver"]}, "Your LIVER is checked.")
    assert not follows("keywords:existence", {"keywords": ["liver"]}, "Your blood is checked.")
    assert follows("startend:end_checker", {"end_phrase": "Stay well."}, "Rest today. Stay well.")
    assert not follows("startend:end_checker", {"end_phrase": "Stay well."}, "Stay well. Rest today.")
    assert follows("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One.\n\n***\n\nTwo.")
    assert not follows("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "One.\n\nTwo.")
    assert follows("keywords:frequency", {"keyword": "dose", "frequency": 2, "relation": "at least"},
                   "One dose now and one dose later.")
    assert not follows("keywords:frequency", {"keyword": "dose", "frequency": 2, "relation": "at least"},
                       "One dose now.")
    assert follows("punctuation:no_comma", {}, "No commas here.")
    assert not follows("punctuation:no_comma", {}, "Yes, one comma.")
    assert follows("detectable_content:postscript", {"postscript_marker": "P.S."}, "Rest.\n\nP.S. Call us.")
    assert follows("detectable_format:title", {}, "<<Wound care>>\nKeep it dry.")
    assert follows("startend:quotation", {}, '"Keep it dry."')
    assert follows("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
                   "Section 1\nA.\nSection 2\nB.")
    assert follows("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "Take *one* tablet.")
    assert follows("detectable_content:number_placeholders", {"num_placeholders": 2}, "Call [phone] at [time].")


def test_inst_level_aggregation_pools_instructions(if_utils):
    assert if_utils.agg_inst_level_acc([[True, False, True], [False]]) == pytest.approx(2 / 4)
    assert if_utils.agg_inst_level_acc([[True], [True, True]]) == 1.0


def test_instruction_following_process_results_on_a_loaded_doc(if_utils):
    doc = load_tasks(["instruction_following"])["instruction_following"].test_docs()[0]
    assert set(doc["kwargs"][0]) == set(if_utils.KWARG_KEYS)  # one schema; unused arguments are None
    assert if_utils.process_results(doc, [doc["response"]])["prompt_level_strict_acc"] is True


def test_instruction_following_bad_rows(if_utils):
    row = {"prompt": "p", "instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": ["x"]}]}
    with pytest.raises(MedbenchError, match="unknown instruction id 'keywords:made_up'"):
        if_utils.normalize({**row, "instruction_id_list": ["keywords:made_up"]}, "r")
    with pytest.raises(MedbenchError, match="same, non-zero length"):
        if_utils.normalize({**row, "kwargs": []}, "r")
    with pytest.raises(MedbenchError, match=r"unknown key\(s\) \['words'\]"):
        if_utils.normalize({**row, "kwargs": [{"words": ["x"]}]}, "r")
    for instruction_id in sorted(if_utils._unavailable_ids()):
        with pytest.raises(MedbenchError, match="needs data that is not installed"):
            if_utils.normalize({**row, "instruction_id_list": [instruction_id]}, "r")


def test_user_files_for_the_generation_tasks(tmp_path, ds_utils, if_utils):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note": "Admitted with pneumonia. START amoxicillin.", "summary": "Pneumonia; "
                                 "started amoxicillin.", "key_facts": ["pneumonia", "amoxicillin"]}))
    task = load_tasks(["discharge_summary"], metadata={"discharge_summary": {"data_files": {"test": str(notes)}}})
    doc = task["discharge_summary"].test_docs()[0]
    assert (doc["min_words"], doc["max_words"]) == (15, 100)
    assert ds_utils.process_results(doc, ["Pneumonia treated; started amoxicillin."])["coverage"] == 1.0
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r) for r in [
        STATIN, {"prompt": "Say hi in lowercase.", "instruction_id_list": ["change_case:english_lowercase"],
                 "kwargs": [{}]}]))
    task = load_tasks(["instruction_following"],
                      metadata={"instruction_following": {"data_files": {"test": str(prompts)}}})
    docs = list(task["instruction_following"].test_docs())
    assert [d["instruction_id_list"] for d in docs] == [STATIN["instruction_id_list"],
                                                         ["change_case:english_lowercase"]]
    assert if_utils.process_results(docs[1], ["hi there."])["prompt_level_strict_acc"] is True
    assert if_utils.process_results(docs[0], ["* one\n* two"])["inst_level_strict_acc"] == [True, True, True]


def test_ifeval_import_leaves_no_stand_ins_behind(if_utils):
    import sys

    if_utils._ifeval()
    for name in ("langdetect", "immutabledict"):
        module = sys.modules.get(name)
        assert module is None or getattr(module, "__file__", None), name
