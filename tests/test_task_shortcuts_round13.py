"""Shortcuts of the thirteenth probe of the bundled task data: readers that know no medicine, trained on train and
scored on test with the task's own metric, stay under the task's ceiling (``metadata.baseline_ceiling``).

New families, none in rounds 10-12, kept here where they stay under the ceiling (measured values in comments):

- every classification task: the item's position in its file, its id's residues, its keys' order (at most 0.61 F1
  on uti, under always-yes; chance elsewhere); no words only one label's train rows use (adrd).
- clinical_reasoning: how often an option's text was a train gold rather than a distractor (0.27; no test gold is
  a train gold), the options' shared prefixes (0.27), a letter prior per subject or question type (0.28).
- hyponatremia: the values' written order and format, age and sex (<= 0.16), the non-deciding fields in a tree
  (0.46), the two-field gap serum osm - 2 x Na with volume status (0.54), a prior per exam-finding phrase (0.41).
- uti: the colony count, urinalysis, temperature and catheter parsed from the note, boosted (0.58); a prior per
  opening line (0.59).
- adrd_prediction: age x cognitive status in a depth-2 tree (0.735; the risk model's own F1 is 0.75), no entry
  dated after the index date.
- discharge_summary: the nearest training summary with the note's age, sex, diagnosis and stay put in (0.28).
- instruction_following: the training response with the test prompt's instruction set, its closing phrase swapped
  and the test's words to include added (1.4: 0.60; 1.5, whose test sets are never train's: 0.23); the prompt's
  anchors alone (1.4: 0.38; 1.5: 0.27).
- triage: the message's shape (counts) and its stop words (0.48-0.58).

- triage: six relations a reader parses without medicine (the kind of message, which dated items are recent, the
  course, visit or question, what a bill is about, the weekday gap) in a depth 4-6 tree: personnel 0.86 and
  urgency 0.71 on triage 2.2, above the 0.70 ceiling (bills were 30% of the rows and solved by what they are
  about and the gap; "the surgery is the recent item" gave the nurse); 0.61 and 0.59 on 2.3.

Not kept here, as it beat a ceiling (left to the generator): instruction_following's edited training response
kept only where it meets the prompt's own constraints, 0.74 in 1.4; 1.5 holds out every test instruction set and
tests/test_task_shortcuts_round14.py guards that reader (0.50) and its joined and pasted variants.
"""

import re
from collections import Counter

import numpy as np
import pytest

from task_files import TASKS, task_module, task_rows


def _ceiling(task: str, yaml_name: str | None = None) -> float:
    text = (TASKS / task / f"{yaml_name or task}.yaml").read_text()
    found = re.search(r"^\s+baseline_ceiling:\s*([0-9.]+)", text, re.M)
    return float(found.group(1)) if found else 0.70  # the YAMLs carry !function tags, which safe_load refuses


def _score(yaml_name: str, gold: list, pred: list) -> float:
    from sklearn.metrics import f1_score

    if yaml_name.startswith(("uti", "adrd")):
        return f1_score(gold, pred, pos_label="yes")
    if yaml_name.startswith("triage"):
        return f1_score(gold, pred, average="macro")
    return float(np.mean([g == p for g, p in zip(gold, pred)]))


# ------------------------------------------------------------------------------------------- every classifier
@pytest.mark.parametrize("task, column, split, yaml_name", [
    ("uti", "label", "test", "uti"), ("adrd_prediction", "label", "test", "adrd_prediction"),
    ("adrd_prediction", "label", "test_prevalence", "adrd_prediction_prevalence"),
    ("hyponatremia", "label", "test", "hyponatremia"), ("triage", "personnel", "test", "triage_personnel"),
    ("triage", "urgency", "test", "triage_urgency")])
def test_position_id_and_key_order_do_not_read_the_label(task, column, split, yaml_name):
    from sklearn.tree import DecisionTreeClassifier

    def features(rows):
        ids = [int(re.findall(r"\d+", row["id"])[-1]) for row in rows]
        return np.array([[i, i / len(rows), n % 2, n % 3, n % 4, n % 7, list(row).index(column)]
                         for i, (n, row) in enumerate(zip(ids, rows))])

    train, test = task_rows(task, "train"), task_rows(task, split)
    assert not {row["id"] for row in train} & {row["id"] for row in test}
    x_train, x_test = features(train), features(test)
    y_train, y_test = [r[column] for r in train], [r[column] for r in test]
    for depth in (2, 4):
        pred = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train, y_train).predict(x_test)
        assert _score(yaml_name, y_test, list(pred)) < _ceiling(task, yaml_name) - 0.05, depth  # uti 0.61 at most


# ------------------------------------------------------------------------------------------- clinical_reasoning
def test_cr_train_golds_prefixes_and_letter_priors_stay_near_chance():
    from os.path import commonprefix

    train, test = task_rows("clinical_reasoning", "train"), task_rows("clinical_reasoning", "test")
    letters = "ABCD"
    gold, distractor = Counter(), Counter()
    for row in train:
        for k in letters:
            (gold if k == row["answer_idx"] else distractor)[row["options"][k].lower()] += 1
    assert not any(row["answer"].lower() in gold for row in test)  # no test answer was a train answer

    def accuracy(pick) -> float:
        return sum(pick(row) == row["answer_idx"] for row in test) / len(test)

    def gold_rate(row, k):
        text = row["options"][k].lower()
        return (gold[text] + 0.5) / (gold[text] + distractor[text] + 1)

    def shared_prefix(row, k):
        words = row["options"][k].lower().split()
        return sum(len(commonprefix([words, row["options"][j].lower().split()])) for j in letters if j != k)

    ceiling = _ceiling("clinical_reasoning")
    assert accuracy(lambda r: max(letters, key=lambda k: gold_rate(r, k))) < ceiling - 0.08  # 0.27 measured
    assert accuracy(lambda r: max(letters, key=lambda k: (shared_prefix(r, k), len(r["options"][k])))) < ceiling - 0.08
    assert accuracy(lambda r: min(letters, key=lambda k: (shared_prefix(r, k), -len(r["options"][k])))) < ceiling - 0.08
    for key in ("subject", "question_type", "difficulty"):
        prior: dict = {}
        for row in train:
            prior.setdefault(row[key], Counter())[row["answer_idx"]] += 1
        assert accuracy(lambda r: prior.get(r[key], Counter("A")).most_common(1)[0][0]) < ceiling - 0.08, key


# ------------------------------------------------------------------------------------------------- hyponatremia
_HYPO_VALUES = {"serum_sodium": r"(serum sodium|serum na\b|\bna \d|sodium of)",
                "serum_osmolality": r"(serum osmolality|serum osm|sosm)",
                "urine_osmolality": r"(urine osmolality|urine osm|uosm|osmolality \d+ mosm/kg, sodium)",
                "urine_sodium": r"(urine sodium|urine na|una|, sodium \d)"}


def _hypo_features(row: dict) -> list[float]:
    """Format, the order the four values are written in, age, sex, serum Na, length, volume status, and the gap
    serum osm - 2 x Na: everything but the deciding values themselves."""
    text, low = row["text"], row["text"].lower()
    form = next((i for i, mark in enumerate(("A ", "Labs:", "work-up", "\nSerum")) if mark in text[:60] or (
        i == 3 and mark in text)), 4)
    starts = [m.start() if (m := re.search(p, low)) else 9999 for p in _HYPO_VALUES.values()]
    order = int("".join(str(i) for i in np.argsort(starts)))
    age = int(re.search(r"(\d+)", text).group(1))
    male = int(bool(re.search(r"\b(man|M)\b|\dM\b", text)))
    volume = ["hypovolemic", "euvolemic", "hypervolemic"].index(row["volume_status"])  # the text names it
    return [form, order, age, male, row["serum_sodium"], len(text), volume,
            row["serum_osmolality"] - 2 * row["serum_sodium"]]


def test_hyponatremia_order_format_and_non_deciding_fields_stay_under_the_ceiling():
    from sklearn.tree import DecisionTreeClassifier

    train, test = task_rows("hyponatremia", "train"), task_rows("hyponatremia", "test")
    x_train = np.array([_hypo_features(r) for r in train])
    x_test = np.array([_hypo_features(r) for r in test])
    y_train, y_test = [r["label"] for r in train], [r["label"] for r in test]
    ceiling = _ceiling("hyponatremia")
    for columns, most in (([0, 1], 0.25), ([2, 3], 0.25), ([0, 1, 2, 3, 4, 5, 6], ceiling - 0.1),
                          ([6, 7], ceiling - 0.1)):
        for depth in (2, 4, 6):
            model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train[:, columns], y_train)
            score = _score("hyponatremia", y_test, list(model.predict(x_test[:, columns])))
            assert score < most, (columns, depth, score)  # 0.16, 0.16, 0.46, 0.54 at most


def test_hyponatremia_a_prior_per_exam_finding_phrase_stays_under_the_ceiling():
    def phrase(row):
        return re.split(r"hypovolemic|euvolemic|hypervolemic", row["text"].lower())[-1].strip(" :().\n")

    train, test = task_rows("hyponatremia", "train"), task_rows("hyponatremia", "test")
    prior: dict = {}
    for row in train:
        prior.setdefault(phrase(row), Counter())[row["label"]] += 1
    pred = [prior[phrase(r)].most_common(1)[0][0] if phrase(r) in prior else "SIADH" for r in test]
    assert _score("hyponatremia", [r["label"] for r in test], pred) < _ceiling("hyponatremia") - 0.1  # 0.41


# ---------------------------------------------------------------------------------------------------------- uti
def _uti_log_count(sentence: str) -> float:
    s = sentence.lower().replace(",", "")
    if "no growth" in s:
        return 0.0
    found = [int(m.group(2)) + (np.log10(int(m.group(1))) if m.group(1) else 0)
             for m in re.finditer(r"(?:(\d+) x )?10\^(\d)", s)]
    found += [np.log10(int(m.group(1)) * 1000) for m in re.finditer(r"(\d+)k\b", s)]
    found += [np.log10(int(m.group(1))) for m in re.finditer(r"\b(\d{4,})\b", s)]
    return max(found, default=-1.0)


def _uti_parsed(text: str) -> list[float]:
    """What the rules read, parsed as a reader who knows only the notation: the final cultures' colony counts,
    a pending culture, a catheter, the dipstick, WBC and the temperature in C."""
    low = text.lower()
    cultures = [s for s in re.split(r"(?<=\.)\s+", text) if "culture" in s.lower() and "final" in s.lower()
                and "prior" not in s.lower() and "blood" not in s.lower()]
    counts = [_uti_log_count(s) for s in cultures] or [-2.0]
    le = re.search(r"le (negative|neg|trace|±|\(-\)|[123]\+|\+|-)", low)
    nitrite = re.search(r"nitrite (positive|pos|\(\+\)|\+)", low)
    wbc = re.search(r"wbc (?:<|>)?(\d+)", low)
    temp = re.search(r"(?:temperature|t) (\d+(?:\.\d)?) ?°?(c|f)", low)
    celsius = (float(temp.group(1)) if temp.group(2) == "c" else (float(temp.group(1)) - 32) / 1.8) if temp else -1
    le_value = {"trace": 0.5, "±": 0.5, "+": 1, "1+": 1, "2+": 2, "3+": 3}.get(le.group(1), 0) if le else -1
    return [max(counts), min(counts), len(cultures), int("pending" in low or "not sent" in low),
            int("catheter" in low), le_value, int(bool(nitrite)), int(wbc.group(1)) if wbc else -1, celsius]


def test_uti_parsed_culture_urinalysis_and_temperature_stay_under_the_ceiling():
    from sklearn.ensemble import HistGradientBoostingClassifier

    train, test = task_rows("uti", "train"), task_rows("uti", "test")
    x_train = np.array([_uti_parsed(r["text"]) for r in train])
    x_test = np.array([_uti_parsed(r["text"]) for r in test])
    assert (x_train[:, 8] > 0).all() and (x_train[:, 5] >= 0).mean() > 0.9  # the parser reads the notes
    model = HistGradientBoostingClassifier(random_state=0, max_depth=3).fit(x_train, [r["label"] for r in train])
    score = _score("uti", [r["label"] for r in test], list(model.predict(x_test)))
    assert score < _ceiling("uti"), score  # 0.58 measured


def test_uti_a_prior_per_opening_line_stays_under_the_ceiling():
    def opening(text):
        return re.sub(r"\d+", "#", re.split(r"[.:]", text)[0]).lower()

    train, test = task_rows("uti", "train"), task_rows("uti", "test")
    prior: dict = {}
    for row in train:
        prior.setdefault(opening(row["text"]), Counter())[row["label"]] += 1
    pred = [prior[opening(r["text"])].most_common(1)[0][0] if opening(r["text"]) in prior else "yes" for r in test]
    assert _score("uti", [r["label"] for r in test], pred) < _ceiling("uti"), pred.count("yes")  # 0.59


# ---------------------------------------------------------------------------------------------- adrd_prediction
def test_adrd_nothing_after_the_index_date_and_no_one_label_words():
    for split in ("train", "validation", "test", "test_prevalence"):
        for row in task_rows("adrd_prediction", split):
            index = re.search(r"Index date: (\S+)\.", row["history"]).group(1)
            assert all(day <= index for day in re.findall(r"^- (\d{4}-\d\d-\d\d)", row["history"], re.M)), row["id"]
    train = task_rows("adrd_prediction", "train")
    docs = {label: Counter(w for r in train if r["label"] == label
                           for w in set(re.findall(r"[a-z]+", r["history"].lower()))) for label in ("yes", "no")}
    for label, other in (("yes", "no"), ("no", "yes")):
        assert not [w for w, n in docs[label].items() if n >= 4 and not docs[other][w]], label


@pytest.mark.parametrize("split, yaml_name", [("test", "adrd_prediction"),
                                               ("test_prevalence", "adrd_prediction_prevalence")])
def test_adrd_age_times_cognitive_status_stays_under_the_ceiling(split, yaml_name):
    from sklearn.tree import DecisionTreeClassifier

    def features(history):
        age = int(re.search(r"Age at index: (\d+)", history).group(1))
        mci = int("mild cognitive impairment" in history.lower())
        scores = [int(s) for s in re.findall(r"(?:MoCA|MMSE) (\d+)/30", history)]
        return [age, mci, age * (1 + mci), scores[-1] if scores else -1]

    train, test = task_rows("adrd_prediction", "train"), task_rows("adrd_prediction", split)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(
        [features(r["history"]) for r in train], [r["label"] for r in train])
    score = _score(yaml_name, [r["label"] for r in test], list(model.predict([features(r["history"]) for r in test])))
    assert score < _ceiling("adrd_prediction", yaml_name), score  # 0.735 and 0.34 measured


# -------------------------------------------------------------------------------------------- discharge_summary
def test_discharge_the_nearest_summary_with_this_patients_slots_scores_low():
    from rouge_score import rouge_scorer
    from sklearn.feature_extraction.text import TfidfVectorizer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    train, test = task_rows("discharge_summary", "train"), task_rows("discharge_summary", "test")
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit([r["note"] for r in train])
    nearest = (vectorizer.transform([r["note"] for r in test]) @ vectorizer.transform(
        [r["note"] for r in train]).T).toarray().argmax(axis=1)

    def filled(row, source):
        text = source["summary"].replace(source["diagnosis"], row["diagnosis"])
        text = re.sub(rf"\b{source['length_of_stay']}\b", str(row["length_of_stay"]), text)
        person = [re.search(r"\d+-year-old (?:man|woman)", r["note"]) for r in (source, row)]
        return text.replace(person[0].group(0), person[1].group(0)) if all(person) else text

    score = np.mean([scorer.score(r["summary"], filled(r, train[i]))["rougeL"].fmeasure for r, i in zip(test, nearest)])
    assert score < _ceiling("discharge_summary") - 0.04, score  # 0.28 measured


# ---------------------------------------------------------------------------------------- instruction_following
def test_if_a_training_response_edited_to_the_test_prompts_anchors_stays_under_the_ceiling():
    """Retrieve and edit: the training response whose instruction set is most like the test prompt's, its closing
    phrase swapped for the test's and the test's words to include added. In 1.4, 84% of the test prompts' sets
    occurred in train and the first such response, edited, met 0.60 of the test prompts; 1.5 asks for no training
    set in test (the most alike set's response, edited: 0.23)."""
    utils = task_module("instruction_following", "utils")
    train, test = task_rows("instruction_following", "train"), task_rows("instruction_following", "test")

    def kwarg(row, instruction):
        ids = row["instruction_id_list"]
        return row["kwargs"][ids.index(instruction)] if instruction in ids else None

    def edited(row, source):
        text, words = source["response"], kwarg(row, "keywords:existence")
        ending = kwarg(source, "startend:end_checker")
        quoted = text.rstrip().endswith('"')
        if ending and text.rstrip().rstrip('"').endswith(ending["end_phrase"]):
            text = text.rstrip().rstrip('"')[: -len(ending["end_phrase"])].rstrip()
        text += (" " + " ".join(words["keywords"]) + ".") if words else ""
        new_ending = kwarg(row, "startend:end_checker")
        return text + (" " + new_ending["end_phrase"] if new_ending else "") + ('"' if quoted else "")

    sets = [(set(s["instruction_id_list"]), s) for s in train]

    def nearest(row):
        ids = set(row["instruction_id_list"])
        return max(sets, key=lambda p: (len(ids & p[0]) - len(p[0] - ids), p[1]["category"] == row["category"]))[1]

    met = [utils.process_results(row, [edited(row, nearest(row))])["prompt_level_strict_acc"] for row in test]
    assert sum(met) / len(met) < _ceiling("instruction_following"), sum(met) / len(met)  # 0.23 measured (1.4: 0.60)


def test_if_the_prompts_anchors_alone_fail_most_prompts():
    """The words to include and the closing phrase, nothing else, wrapped in quotes or a JSON object when the
    prompt's wording asks for one: 0.27 measured (the closing phrase alone 0.20; 1.4: 0.38 and 0.16)."""
    import json

    utils = task_module("instruction_following", "utils")
    test = task_rows("instruction_following", "test")

    def anchors(row):
        ids, kwargs = row["instruction_id_list"], row["kwargs"]
        words = kwargs[ids.index("keywords:existence")]["keywords"] if "keywords:existence" in ids else []
        ending = kwargs[ids.index("startend:end_checker")]["end_phrase"] if "startend:end_checker" in ids else ""
        text = (" ".join(words) + ". " if words else "") + ending
        prompt = row["prompt"].lower()
        return json.dumps({"text": text}) if "json" in prompt else f'"{text}"' if "quotation" in prompt else text

    met = [utils.process_results(row, [anchors(row)])["prompt_level_strict_acc"] for row in test]
    assert sum(met) / len(met) < _ceiling("instruction_following") - 0.2, sum(met) / len(met)


# ------------------------------------------------------------------------------------------------------- triage
@pytest.mark.parametrize("column", ["personnel", "urgency"])
def test_triage_the_messages_shape_and_stop_words_stay_under_the_ceiling(column):
    """Counts (length, sentences, commas, digits, capitals, negations) and the stop words alone, in a logistic
    regression: personnel 0.52 and 0.48, urgency 0.52 and 0.58 measured."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def shape(text):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()]
        lengths = [len(s.split()) for s in sentences]
        return [len(text), len(text.split()), len(sentences), np.mean(lengths), max(lengths), min(lengths),
                text.count(","), len(re.findall(r"\d+", text)), sum(c.isupper() for c in text), text.count("\n"),
                len(re.findall(r"\b(no|not|never|without)\b", text.lower()))]

    def stops(text):
        return " ".join(w for w in re.findall(r"[a-z]+", text.lower()) if w in ENGLISH_STOP_WORDS)

    train, test = task_rows("triage", "train"), task_rows("triage", "test")
    y_train, y_test = [r[column] for r in train], [r[column] for r in test]
    yaml_name = f"triage_{column}"
    counts = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(
        [shape(r["message"]) for r in train], y_train)
    words = make_pipeline(TfidfVectorizer(ngram_range=(1, 3)), LogisticRegression(C=10, max_iter=5000)).fit(
        [stops(r["message"]) for r in train], y_train)
    for model, read in ((counts, lambda r: shape(r["message"])), (words, lambda r: stops(r["message"]))):
        score = _score(yaml_name, y_test, list(model.predict([read(r) for r in test])))
        assert score < _ceiling("triage", yaml_name) - 0.05, score


def _triage_relations(message: str, gen) -> list[int]:
    """The kind of message, the weekday gap to a deadline, whether the surgery and the drug are each recent, the
    course, visit or question, and whether a bill is about the drug: no symptom, drug or reading read."""
    low = message.lower()
    sentences = re.split(r"(?<=[.!?])\s+|\n", low)
    kind = 2 if "today is" in low else 1 if ("by mistake" in low or "extra dose" in low) else 0
    today, due = re.search(r"today is (\w+)\.", low), re.search(r"by (\w+)\.", low)
    gap = gen.deadline_gap(today.group(1).capitalize(), due.group(1).capitalize()) if today and due else -1
    phrases = sorted(((p, d) for rec in gen.TIMES.values() for unit in rec.values() for p, d in unit.items()),
                     key=lambda pd: -len(pd[0]))

    def recent(found: list[str]) -> int:
        days = next((d for p, d in phrases if found and p in found[0]), -1)
        return -1 if days < 0 else int(days <= gen.RECENT_DAYS)

    surgery = recent([s for s in sentences if "ago" in s and any(p.lower() in s for p in gen.PROCEDURES)])
    drug = recent([s for s in sentences if "first dose" in s])
    courses = {re.sub(r"\{\w+\}.*", "", t).strip().lower()[:18]: i for i, ts in
               enumerate(gen.COURSE_TEXT.values()) for t in ts}
    course = next((i for text, i in courses.items() if text in low), -1)
    visit = int(any(v.split("{")[0].lower() in low for v in gen.VISITS))
    bill_drug = int(any("first dose" in s and ", and" in s for s in sentences))
    return [kind, gap, surgery, drug, course, visit, bill_drug]


@pytest.mark.parametrize("column", ["personnel", "urgency"])
def test_triage_six_relations_without_medicine_stay_under_the_ceiling(column):
    """The relations a reader parses without knowing any medicine, in a tree: triage 2.2 scored personnel 0.86 and
    urgency 0.71 (bills 30% of rows, solved by what they are about and the gap; nurse rows by the recent
    surgery); 2.3 (fewer bills, both or neither dated item recent, a drug effect or a routine visit after surgery
    not the nurse's) 0.61 and 0.59 at most over depths 4-6."""
    from sklearn.tree import DecisionTreeClassifier

    gen = task_module("triage", "generate")
    train, test = task_rows("triage", "train"), task_rows("triage", "test")
    x_train = np.array([_triage_relations(r["message"], gen) for r in train])
    x_test = np.array([_triage_relations(r["message"], gen) for r in test])
    symptoms = x_train[:, 0] == 0
    assert (x_train[symptoms][:, 2:5] >= 0).all() and (x_train[x_train[:, 0] == 2][:, 1] > 0).all()  # parsed
    y_train, y_test = [r[column] for r in train], [r[column] for r in test]
    yaml_name = f"triage_{column}"
    for depth in (4, 5, 6):
        model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train, y_train)
        score = _score(yaml_name, y_test, list(model.predict(x_test)))
        assert score < _ceiling("triage", yaml_name) - 0.03, (depth, score)
