"""The generated classification tasks (uti, hyponatremia, triage, adrd_prediction): generators, bundled data, YAMLs.

The label rules are re-implemented here from the documentation (README.md / generator docstrings) rather than
imported, so a bug in a generator's own rule function cannot confirm itself.
"""

import collections
import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.tasks import load_tasks, read_task_yaml, split_sizes
from task_files import task_module

REPO = Path(__file__).resolve().parent.parent
TASKS = REPO / "tasks"
SPLITS = ["train", "validation", "test"]
GENERATED = ["uti", "hyponatremia", "triage", "adrd_prediction"]

# task name -> (task directory, YAML file, text column, scored label column, choices, split sizes)
TASK_SPECS = {
    "uti": ("uti", "uti.yaml", "text", "label", ["no", "yes"], {"train": 200, "validation": 50, "test": 400}),
    "hyponatremia": ("hyponatremia", "hyponatremia.yaml", "text", "label",
                     ["non-hypotonic", "primary polydipsia", "extrarenal losses", "renal losses", "SIADH",
                      "edematous state", "kidney failure"], {"train": 210, "validation": 49, "test": 399}),
    "triage_personnel": ("triage", "triage_personnel.yaml", "message", "personnel",
                         ["physician", "nurse", "pharmacist", "front desk"],
                         {"train": 204, "validation": 48, "test": 396}),
    "triage_urgency": ("triage", "triage_urgency.yaml", "message", "urgency", ["emergent", "urgent", "routine"],
                       {"train": 204, "validation": 48, "test": 396}),
    "adrd_prediction": ("adrd_prediction", "adrd_prediction.yaml", "history", "label", ["no", "yes"],
                        {"train": 200, "validation": 50, "test": 400}),
}



@lru_cache(maxsize=None)
def generator(task_dir: str):
    return task_module(task_dir, "generate")


@lru_cache(maxsize=None)
def generated(task_dir: str) -> dict:
    gen = generator(task_dir)
    return gen.generate(gen.SEED)


def bundled_rows(task_dir: str, split: str) -> list[dict]:
    lines = (TASKS / task_dir / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _serialise(rows: list[dict]) -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


# ------------------------------------------------------------------------------------------- every generator
@pytest.mark.parametrize("task_dir", GENERATED)
def test_generator_is_deterministic_and_seed_sensitive(task_dir):
    gen = generator(task_dir)
    first = gen.generate(gen.SEED)
    assert _serialise(first["train"]) == _serialise(gen.generate(gen.SEED)["train"])
    other = gen.generate(gen.SEED + 1)
    assert [_serialise(first[s]) for s in SPLITS] != [_serialise(other[s]) for s in SPLITS]


def test_generators_do_not_depend_on_the_hash_seed():
    """Set or dict-of-set iteration must not leak into the output: another process, another PYTHONHASHSEED."""
    script = ("import importlib.util, json, sys\n"
              "for d in sys.argv[1:]:\n"
              "    spec = importlib.util.spec_from_file_location('g_' + d, f'tasks/{d}/generate.py')\n"
              "    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "    print(json.dumps(m.generate(m.SEED), sort_keys=True))\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", script, *GENERATED], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for task_dir, line in zip(GENERATED, result.stdout.splitlines()):
        assert line == json.dumps(generated(task_dir), sort_keys=True), task_dir


@pytest.mark.parametrize("task_dir", GENERATED)
def test_committed_data_files_equal_the_generator_output(task_dir):
    out = generated(task_dir)
    assert sorted(out) == sorted(SPLITS)
    for split in SPLITS:
        path = TASKS / task_dir / "data" / f"{split}.jsonl"
        assert path.read_text(encoding="utf-8") == _serialise(out[split]), \
            f"{path} is stale: run `python generate.py` in tasks/{task_dir}"


@pytest.mark.parametrize("task_dir", GENERATED)
def test_no_example_text_repeats_across_or_within_splits(task_dir):
    column = {"uti": "text", "hyponatremia": "text", "triage": "message", "adrd_prediction": "history"}[task_dir]
    texts = [row[column] for split in SPLITS for row in generated(task_dir)[split]]
    assert len(texts) == len(set(texts))
    ids = [row["id"] for split in SPLITS for row in generated(task_dir)[split]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("task", list(TASK_SPECS))
def test_labels_are_balanced_in_every_split(task):
    task_dir, _, _, column, choices, sizes = TASK_SPECS[task]
    for split in SPLITS:
        rows = generated(task_dir)[split]
        assert len(rows) == sizes[split]
        counts = collections.Counter(row[column] for row in rows)
        assert set(counts) == set(choices), (split, counts)
        assert max(counts.values()) - min(counts.values()) == 0, (split, counts)


@pytest.mark.parametrize("task", list(TASK_SPECS))
def test_yaml_is_a_valid_task_file_with_medbench_metadata(task):
    task_dir, yaml_name, text_column, _, choices, _ = TASK_SPECS[task]
    config = read_task_yaml(TASKS / task_dir / yaml_name)
    assert config["task"] == task
    assert config["custom_dataset"].startswith("!function utils.load")
    assert config["output_type"] == "multiple_choice"
    assert (config["training_split"], config["validation_split"], config["test_split"], config["fewshot_split"]) \
        == ("train", "validation", "test", "train")
    assert config["doc_to_choice"] == choices
    assert config["doc_to_target"] == "gold"
    assert "{{" + text_column + "}}" in config["doc_to_text"]
    last_line = config["doc_to_text"].rstrip().splitlines()[-1]
    assert last_line.startswith("Answer") and last_line.endswith(":")
    assert {"metric": "acc", "aggregation": "mean", "higher_is_better": True} in config["metric_list"]
    meta = config["metadata"]
    assert meta["source"] == "auto" and meta["data_files"] is None
    assert meta["generator"] == "generate.py"
    assert meta["seed"] == generator(task_dir).SEED
    assert meta["primary_metric"] in {"acc", "f1", "macro_f1"}
    assert meta["medbench_metrics"]
    utils = task_module(task_dir, "utils")
    scored = getattr(utils, "CHOICES")
    assert (scored[TASK_SPECS[task][3]] if isinstance(scored, dict) else scored) == choices


def test_metadata_names_the_documented_metrics():
    def meta(task):
        task_dir, yaml_name = TASK_SPECS[task][:2]
        return read_task_yaml(TASKS / task_dir / yaml_name)["metadata"]

    assert (meta("uti")["primary_metric"], meta("uti")["medbench_metrics"]) == ("f1", ["f1", "macro_f1", "auroc"])
    assert (meta("hyponatremia")["primary_metric"], meta("hyponatremia")["medbench_metrics"]) == ("acc", ["macro_f1"])
    for task in ("triage_personnel", "triage_urgency"):
        assert (meta(task)["primary_metric"], meta(task)["medbench_metrics"]) == ("macro_f1",
                                                                                ["macro_f1", "per_label_f1"])
    adrd = meta("adrd_prediction")
    assert (adrd["primary_metric"], adrd["medbench_metrics"]) == ("f1", ["f1", "auroc", "macro_f1", "yes_rate"])
    assert adrd["rationale_field"] == "rationale"


def test_triage_group_file():
    config = read_task_yaml(TASKS / "triage" / "_triage.yaml")
    assert config["group"] == "triage"
    assert config["task"] == ["triage_personnel", "triage_urgency"]
    assert config["aggregate_metric_list"][0]["metric"] == "acc"


# ------------------------------------------------------------------------------ loading through medbench
@pytest.mark.parametrize("task", list(TASK_SPECS))
def test_task_loads_with_its_split_sizes_and_gold_indices(task):
    task_dir, _, text_column, column, choices, sizes = TASK_SPECS[task]
    loaded = load_tasks([task])[task]
    assert split_sizes(loaded) == sizes
    docs = list(loaded.test_docs())
    rows = bundled_rows(task_dir, "test")
    assert [d[text_column] for d in docs] == [r[text_column] for r in rows]
    assert [choices[d["gold"]] for d in docs] == [r[column] for r in rows]
    assert loaded.doc_to_choice(docs[0]) == choices
    assert loaded.doc_to_target(docs[0]) == docs[0]["gold"]


@pytest.mark.parametrize("task", list(TASK_SPECS))
def test_user_file_with_a_label_outside_the_choices_is_an_error(task, tmp_path):
    task_dir, _, text_column, column, choices, _ = TASK_SPECS[task]
    good = {text_column: "An example written by the user.", column: choices[-1].upper()}
    bad = {text_column: "Another example.", column: "maybe"}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(good) + "\n")
    loaded = load_tasks([task], metadata={task: {"data_files": {"test": str(path)}}})[task]
    assert [d["gold"] for d in loaded.test_docs()] == [len(choices) - 1]
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(MedbenchError, match=r"mine\.jsonl row 2: .*'maybe' is not one of the task's choices"):
        load_tasks([task], metadata={task: {"data_files": {"test": str(path)}}})


def test_user_file_missing_the_text_column_names_it(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"note": "x", "label": "yes"}) + "\n")
    with pytest.raises(MedbenchError, match=r"missing column\(s\) text"):
        load_tasks(["uti"], metadata={"uti": {"data_files": {"test": str(path)}}})


def test_hyponatremia_user_file_with_values_but_no_text(tmp_path):
    row = {"serum_sodium": 126, "serum_osmolality": 258, "urine_osmolality": 520, "urine_sodium": 44,
           "volume_status": "euvolemic", "label": "siadh"}
    path = tmp_path / "labs.jsonl"
    path.write_text(json.dumps(row) + "\n")
    task = load_tasks(["hyponatremia"], metadata={"hyponatremia": {"data_files": {"test": str(path)}}})["hyponatremia"]
    doc = task.test_docs()[0]
    assert doc["gold"] == 4 and "Urine sodium: 44 mmol/L" in doc["text"] and "euvolemic" in doc["text"]


# ------------------------------------------------------------------- ground truth re-derived from the fields
UTI_COUNTING = {"dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria", "flank_pain",
                "suprapubic_tenderness", "cva_tenderness"}
UTI_UROPATHOGENS = {"E. coli", "Escherichia coli", "Klebsiella pneumoniae", "Proteus mirabilis",
                    "Enterococcus faecalis", "Pseudomonas aeruginosa", "Staphylococcus saprophyticus"}


def _uti_significant(culture):
    """Rule 3: a uropathogen at >= 10^5 CFU/mL voided, >= 10^3 CFU/mL from a catheter specimen."""
    threshold = 1_000 if culture["specimen"] == "catheter" else 100_000
    return culture["organism"] in UTI_UROPATHOGENS and culture["cfu"] >= threshold


def _uti_symptomatic(row):
    """Rule 1: a urinary symptom or sign, or fever >= 38.0 °C without another documented source."""
    return bool(UTI_COUNTING & set(row["present"])) or (row["temperature_c"] >= 38.0 and not row["fever_source"])


def _uti_rule(row):
    if not _uti_symptomatic(row) or row["alternative_diagnosis"]:  # rules 1 and 2
        return "no"
    readable = [c for c in row["cultures"] if c["status"] == "final" and c["organism"] != "mixed flora"]
    if readable:  # rule 3: the latest final culture that is not contaminated
        return "yes" if _uti_significant(readable[-1]) else "no"
    ua = row["urinalysis"] or {}  # rule 4
    positive = ua.get("le") in ("1+", "2+", "3+") or ua.get("nitrite") == "positive" or ua.get("wbc", 0) >= 10
    return "yes" if positive else "no"


def _uti_signed(name, sign, text):
    """``name`` charted with ``sign`` ("+" or "-") in any of the note's styles: (+) x, x (+), +x, x +."""
    n, s = re.escape(name), re.escape(sign)
    return re.search(rf"\({s}\) {n}\b|\b{n} \({s}\)|(?<![\w)]){s}{n}\b|\b{n} {s}(?=[,.])", text) is not None


def test_uti_labels_follow_the_documented_rules():
    gen = generator("uti")
    scenarios = collections.Counter()
    for split in SPLITS:
        for row in generated("uti")[split]:
            text = row["text"]
            assert row["label"] == _uti_rule(row), text
            assert (row["label"] == "yes") == (row["category"] in gen.POSITIVE), (row["category"], text)
            scenarios[(row["category"], row["label"])] += 1
            # the values the rules read are in the note, and none sits on a rule's edge
            assert row["temperature_c"] != 38.0
            temps = re.findall(r"(?:T|temperature) (\d+\.\d) (°C|C|°F|F)\b", text)
            assert len(temps) >= 1, text
            value, unit = float(temps[0][0]), temps[0][1]
            celsius = value if "C" in unit else (value - 32) * 5 / 9
            assert abs(celsius - row["temperature_c"]) < 0.06, (temps, row["temperature_c"])
            for symptom in row["present"]:
                if symptom not in ("cva_tenderness", "suprapubic_tenderness"):
                    assert any(p.format(side=side) in text for p in gen.TEXT[symptom] for side in ("left", "right")), \
                        (symptom, text)
            if "cva_tenderness" in row["present"]:
                assert _uti_signed("CVA tenderness", "+", text) or \
                    _uti_signed("costovertebral angle tenderness", "+", text), text
            ua = row["urinalysis"]
            if ua:
                assert ua["wbc"] != 10
                if ua["le"] in ("1+", "2+", "3+"):
                    assert f"LE {ua['le']}" in text
            for culture in row["cultures"]:
                if culture["status"] == "pending":
                    assert "pending" in text
                elif culture["organism"] == "mixed flora":
                    assert re.search(r"mixed (urogenital )?flora", text) and len(row["cultures"]) == 2
                elif culture["organism"]:
                    assert culture["organism"] in text
                    if _uti_symptomatic(row) and culture["organism"] in UTI_UROPATHOGENS and not \
                            _uti_significant(culture):  # below the threshold: only 10^2 from an indwelling catheter
                        assert row["catheter"] and culture["cfu"] == 100, text
                elif not culture["commensal"]:
                    assert "no growth" in text
            if row["catheter"]:
                assert "catheter" in text and row["cultures"] and row["cultures"][-1]["status"] == "final"
            proof = {"pneumonia": "consolidation", "influenza": "Influenza A PCR +", "cellulitis": "(cellulitis)"}
            if row["fever_source"]:
                assert proof[row["fever_source"]] in text
            if row["alternative_diagnosis"]:
                found = {"bacterial vaginosis": "clue cells", "vulvovaginal candidiasis": "yeast",
                         "trichomoniasis": "trichomonads"}.get(row["alternative_diagnosis"]) or \
                    row["alternative_diagnosis"].split()[0]
                assert _uti_signed(found, "+", text), text
                read = [c for c in row["cultures"] if c["status"] == "final"]
                assert not any(_uti_significant(c) for c in read) and row["temperature_c"] < 38.0
                assert not ua or ua["nitrite"] == "negative"
    # every scenario appears, always with its label
    assert len(scenarios) == 15 and len({c for c, _ in scenarios}) == 15
    all_rows = [row for split in SPLITS for row in generated("uti")[split]]
    assert 0.25 < sum(not r["plan_included"] for r in all_rows) / len(all_rows) < 0.45


def test_uti_wording_is_shared_by_both_labels():
    """What decides the label is a sign, a value or a position: the words around it come with both labels."""
    rows = [row for split in SPLITS for row in generated("uti")[split]]
    for pattern in (r"\bchills|rigors\b", r"CFU/mL", r"no growth", r"pending", r"mixed flora|mixed urogenital",
                    r"E\. coli|Escherichia coli|Klebsiella|Proteus|Enterococcus|Pseudomonas",
                    r"skin flora|Lactobacillus|diphtheroids", r"catheter", r"Chest X-ray", r"Influenza", r"Wet mount",
                    r"NAAT", r"ureteral stone", r"\bLE (neg|negative|-)", r"\bLE [123]\+", r"nitrite (\+|\(\+\)|pos)",
                    r"WBC \d\/hpf", r"WBC \d\d+\/hpf", r"T 3[89]\.\d", r"(T|temperature) 3[67]\.\d",
                    r"Reports|Endorses|Complains of", r"Denies|Negative for", r"\(\+\)",
                    r"Start antibiotics|Empiric antibiotics|Antibiotics prescribed",
                    r"Antibiotics deferred|No antibiotics|Hold antibiotics", r"Prior urine culture|Last urine culture",
                    r"dysuria|burning with urination|pain on urination|painful urination",
                    r"flank pain|back pain below the ribs", r"vaginal discharge|vaginal itching", r"confusion",
                    r"G\d at \d+ weeks", r"arthroplasty|spinal fusion|hernia repair"):
        counts = collections.Counter(row["label"] for row in rows if re.search(pattern, row["text"]))
        assert counts["yes"] >= 8 and counts["no"] >= 8, (pattern, counts)
        # "NAAT" leans 2:1 to "no" in every split (each STI case has one; generate.py's docstring): known, bounded
        widest = 1 / 3 if pattern == "NAAT" else 0.5
        if counts["yes"] + counts["no"] >= 40:  # and at similar rates
            assert widest < counts["yes"] / counts["no"] < 1 / widest, (pattern, counts)
    # the confounders that decide a label are on both sides too
    assert {r["label"] for r in rows if r["fever_source"]} == {"yes", "no"}
    assert {r["label"] for r in rows if r["stone"]} == {"yes", "no"}
    assert {r["label"] for r in rows if r["catheter"]} == {"yes", "no"}
    assert {r["label"] for r in rows if r["temperature_c"] >= 38.0} == {"yes", "no"}
    assert {r["label"] for r in rows if any(_uti_significant(c) for c in r["cultures"])} == {"yes", "no"}
    # every counting symptom is present with both labels, and mentioned (present or denied) at similar rates
    for symptom in ("dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria", "flank_pain"):
        present = collections.Counter(r["label"] for r in rows if symptom in r["present"])
        assert present["yes"] >= 4 and present["no"] >= 4, (symptom, present)
        mentioned = collections.Counter(r["label"] for r in rows if symptom in r["present"] + r["absent"])
        assert 2 / 3 < mentioned["yes"] / mentioned["no"] < 3 / 2, (symptom, mentioned)


def _hyponatremia_rule(na, sosm, uosm, una, volume):
    """Spasovski et al. 2014, figure 1: tonicity, urine osmolality, urine sodium (30), then volume status."""
    assert na < 135
    if sosm >= 275:
        return "non-hypotonic"
    if uosm <= 100:
        return "primary polydipsia"
    if una <= 30:
        assert volume != "euvolemic", "euvolemic with urine Na <= 30 is not a leaf of the algorithm"
        return {"hypovolemic": "extrarenal losses", "hypervolemic": "edematous state"}[volume]
    return {"hypovolemic": "renal losses", "euvolemic": "SIADH", "hypervolemic": "kidney failure"}[volume]


def test_hyponatremia_labels_follow_the_algorithm_and_values_appear_in_the_text():
    near = 0
    for split in SPLITS:
        for row in generated("hyponatremia")[split]:
            values = (row["serum_sodium"], row["serum_osmolality"], row["urine_osmolality"], row["urine_sodium"],
                      row["volume_status"])
            assert row["label"] == _hyponatremia_rule(*values)
            assert row["serum_osmolality"] != 275 and row["urine_osmolality"] != 100 and row["urine_sodium"] != 30
            if row["label"] == "primary polydipsia":
                assert row["volume_status"] == "euvolemic"
            if row["label"] == "SIADH":
                assert row["urine_sodium"] > 30 and row["urine_osmolality"] > 100
            numbers = set(re.findall(r"\d+", row["text"]))
            assert {str(v) for v in values[:4]} <= numbers, row["text"]
            assert row["volume_status"] in row["text"]
            assert row["category"] == row["volume_status"]
            near += row["difficulty"] == "hard"
    total = sum(len(generated("hyponatremia")[s]) for s in SPLITS)
    assert 0.2 < near / total < 0.6  # a real share of cases sit near a cut-off


# The triage rules as documented in tasks/triage/generate.py's docstring, restated here (not imported).
_TRIAGE_NUMBERS = {"a": 1, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10, "twelve": 12,
                   "sixteen": 16, "eighteen": 18, "twenty": 20, "thirty": 30, "forty": 40, "sixty": 60}
_TRIAGE_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7}
_TRIAGE_HARMLESS = {  # known harmless effects of a drug first taken in the last 2 weeks
    "iron": {"black_stools", "constipation", "nausea", "metallic"}, "metformin": {"nausea", "loose_stools", "metallic"},
    "nitrofurantoin": {"dark_urine", "nausea"}, "metronidazole": {"metallic", "dark_urine", "nausea"},
    "oxybutynin": {"dry_mouth", "constipation"}, "amlodipine": {"ankles", "headache"}, "albuterol": {"shaky", "racing"},
    "hydroxyzine": {"drowsy", "dry_mouth"}, "oxycodone": {"constipation", "itching", "drowsy", "nausea"},
    "tamsulosin": {"lightheaded"}, "sertraline": {"nausea", "loose_stools", "headache"}}
_E, _U, _R = "emergent", "urgent", "routine"
_TRIAGE_LEVELS = {  # symptom -> level for the course now, passed, days, months
    "breath": "EUUR", "chest": "EUUR", "blood_cough": "EUUU", "neuro": "EE-U", "calf": "URUU", "fever": "URUU",
    "belly": "URUR", "black_stools": "UUUU", "nosebleed": "URUR", "racing": "URUR", "lightheaded": "URUR",
    "dark_urine": "URUU", "ankles": "RRUR", "headache": "RRUR", "nausea": "RRUR", "loose_stools": "RRUR",
    "constipation": "RRUR", "drowsy": "RRUR", "itching": "RRRR", "dry_mouth": "RRRR", "shaky": "RRRR",
    "metallic": "RRRR"}
_TRIAGE_COURSE_TEXT = {"now": r"(getting worse|still going)\.", "passed": r"(went away|is gone now)\.",
                       "days": r"(isn't improving|has lasted for)", "months": r"for months"}
_TRIAGE_BACKGROUND = {"chemo": "I'm in the middle of chemotherapy.",
                      "warfarin": "I also take warfarin for my heart rhythm."}
_TRIAGE_READINGS = {"sugar": "blood sugar", "oxygen": "oxygen level", "inr": "home INR", "bp": "blood pressure"}
_TRIAGE_HIGH_RISK = {"Lantus", "Humalog", "glipizide", "oxycodone", "hydrocodone"}
_TRIAGE_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _triage_days(phrase):
    """Days ago of a dated item: "ten days ago", "three weeks ago", "a week ago", "a week and a half ago"."""
    match = re.fullmatch(r"(\w+) (\w+)( and a half)? ago", phrase)
    assert match, phrase
    number, unit, half = match.groups()
    return (_TRIAGE_NUMBERS[number] + (0.5 if half else 0)) * _TRIAGE_UNITS[unit]


def _triage_unit(phrase):
    return "weeks" if " week" in phrase else "days"


def _triage_fields(trigger):
    return dict(part.split("=", 1) for part in trigger.split(";"))


def _triage_symptom_labels(f, text):
    symptom, course, background = f["symptom"], f["course"], f["background"]
    procedure, procedure_time = f["procedure"].split("@")
    drug, drug_time = f["drug"].split("@")
    # both dated items are written, each 3-14 days ago (recent) or over 2 weeks ago; any may be recent (2.3)
    assert re.search(rf"(I had my {re.escape(procedure)} {procedure_time}|My {re.escape(procedure)} was "
                     rf"{procedure_time})", text, re.I), text
    assert re.search(rf"(I had my first dose of {drug} {drug_time}|My first dose of {drug} was {drug_time})",
                     text, re.I), text
    days = {"procedure": _triage_days(procedure_time), "drug": _triage_days(drug_time)}
    recent = [item for item, d in days.items() if d <= 14]
    assert min(days.values()) >= 3 and all(d <= 12 or d >= 16 for d in days.values()), days
    assert re.search(_TRIAGE_COURSE_TEXT[course], text, re.I), (course, text)
    for name, sentence in _TRIAGE_BACKGROUND.items():
        assert (sentence.lower() in text.lower()) == (background == name), text
    visit = bool(re.search(r"can i get an appointment|could someone book me in|i'd like a visit", text, re.I))
    assert visit == (f["request"] == "visit"), text
    new = course != "months"
    if new and course == "days":  # a problem lasting days began after the recent items
        assert all(days[item] >= 5 for item in recent), days
    harmless = new and "drug" in recent and symptom in _TRIAGE_HARMLESS[drug]
    if harmless and "procedure" in recent:  # after a recent surgery only effects no surgeon needs to hear about
        assert symptom in ("headache", "dry_mouth", "shaky", "metallic", "itching", "drowsy", "nausea",
                           "loose_stools", "constipation"), f
    # urgency: a harmless effect of a new drug is routine, else the level by course, changed by the context
    level = {"E": _E, "U": _U, "R": _R, "-": None}[_TRIAGE_LEVELS[symptom][["now", "passed", "days", "months"]
                                                                            .index(course)]]
    assert level is not None, f  # stroke signs are never written as lasting days
    settled = course in ("passed", "months")
    bleeding = symptom in ("black_stools", "blood_cough", "nosebleed")
    if harmless:
        level = _R
    elif background == "chemo" and symptom == "fever":
        level = _U if settled else _E
    elif background == "warfarin" and bleeding:
        level = _U if settled else _E
    elif background == "warfarin" and symptom == "headache" and course == "now":
        level = _E
    elif background == "chemo" and bleeding and level == _R:
        level = _U
    elif new and "procedure" in recent and (symptom in ("breath", "chest")
                                            or (symptom == "racing" and course != "passed")):
        level = _E
    elif new and "procedure" in recent and symptom in ("fever", "calf", "belly") and level == _R:
        level = _U
    elif new and "drug" in recent and symptom == "itching" and course != "passed":
        level = _U
    # 2.3: what the background explains (fever in chemotherapy, bleeding on warfarin) and stroke signs are never
    # the post-op line's; a routine problem to be seen for is the front desk's even after surgery
    explained = (background == "chemo" and symptom == "fever") or (background == "warfarin" and bleeding)
    if harmless:  # the new drug explains it, even after a recent surgery (2.3)
        personnel = "pharmacist"
    elif level == _R and visit:
        personnel = "front desk"
    elif new and "procedure" in recent and symptom != "neuro" and not explained:
        personnel = "nurse"
    else:
        personnel = "physician"
    return personnel, level


def _triage_medication_error_labels(f, text):
    drug, reading_value = f["drug"], f["reading"]
    reading, value = reading_value.split(":")
    assert re.search(rf"(took my {drug} twice by mistake|took an extra dose of my {drug})", text, re.I), text
    assert f"{_TRIAGE_READINGS[reading]}: {value}".lower() in text.lower() or \
        f"{_TRIAGE_READINGS[reading]} is {value} right now".lower() in text.lower(), text
    yesterday = bool(re.search(r"(twice by mistake|extra dose of my \w+) (yesterday|last night)", text, re.I))
    assert yesterday == (f["taken"] == "past"), text
    in_range = {"sugar": lambda v: int(v) >= 70, "oxygen": lambda v: int(v.rstrip("%")) >= 90,
                "inr": lambda v: float(v) <= 4.0, "bp": lambda v: int(v.split("/")[0]) >= 90}[reading](value)
    edge = {"sugar": "70", "oxygen": "90%", "inr": "4.0"}.get(reading)
    assert value != edge and not value.startswith("90/")
    if reading == "inr":
        level = _U
    elif not in_range:
        level = _E if reading in ("sugar", "oxygen") else _U
    elif drug in _TRIAGE_HIGH_RISK:
        level = _U if yesterday else _E
    else:
        level = _R
    return ("pharmacist" if in_range else "physician"), level


def _triage_billing_labels(f, text):
    match = re.search(r"today is (\w+)\.", text, re.I)
    due = re.search(r"(sorted out|an answer) by (\w+)\.", text, re.I)
    assert match and due, text
    gap = (_TRIAGE_WEEKDAYS.index(due.group(2).lower()) - _TRIAGE_WEEKDAYS.index(match.group(1).lower())) % 7
    assert gap in (1, 2, 4, 5, 6), text
    # the claim follows the item it is about: ", and I got a bill ... for it" / "... isn't covered"
    claimed = re.findall(r"([^.\n]*) ago, and (?:I got a bill|my insurance denied|my new plan|I was charged)", text,
                         re.I)
    assert len(claimed) == 1, text
    personnel = "pharmacist" if "first dose of" in claimed[0].lower() else "front desk"
    return personnel, (_U if gap <= 2 else _R)


def test_triage_labels_follow_the_documented_rules():
    """Both labels re-derived for every row from what its message says (two dated items, a symptom and its
    course, the background, the request; a reading after a double dose; the item a claim follows and two
    weekdays), by the rules of generate.py's docstring restated above."""
    derive = {"symptom": _triage_symptom_labels, "medication_error": _triage_medication_error_labels,
              "billing": _triage_billing_labels}
    kinds = collections.Counter()
    for split in SPLITS:
        rows = generated("triage")[split]
        for row in rows:
            assert row["category"] == row["intent"] and "{" not in row["message"] and "}" not in row["message"]
            personnel, level = derive[row["intent"]](_triage_fields(row["trigger"]), row["message"])
            assert (row["personnel"], row["urgency"]) == (personnel, level), row
            assert not (row["personnel"] == "front desk" and row["urgency"] == "emergent")
            kinds[(row["intent"], personnel)] += 1
        # urgency is not a function of personnel: every clinical role spans all three levels
        for role in ("physician", "nurse", "pharmacist"):
            assert {r["urgency"] for r in rows if r["personnel"] == role} == {"emergent", "urgent", "routine"}
    # every kind of message serves two or more roles
    assert {p for k, p in kinds if k == "symptom"} == {"physician", "nurse", "pharmacist", "front desk"}
    assert {p for k, p in kinds if k == "medication_error"} == {"physician", "pharmacist"}
    assert {p for k, p in kinds if k == "billing"} == {"pharmacist", "front desk"}


def test_triage_words_are_shared_by_the_labels():
    """No drug, procedure or time word gives the personnel, and time words do not give the urgency."""
    rows = [row for split in SPLITS for row in generated("triage")[split]]
    gen = generator("triage")
    for word in list(gen.PROCEDURES) + list(gen.DRUGS) + ["days ago", "weeks ago", "a week", "what should i do",
                                                          "appointment", "today is"]:
        counts = collections.Counter(r["personnel"] for r in rows if re.search(rf"\b{re.escape(word.lower())}\b",
                                                                                 r["message"].lower()))
        assert len(counts) >= 2 and max(counts.values()) / sum(counts.values()) < 0.6, (word, counts)
        if word in gen.PROCEDURES or word in gen.DRUGS:  # every drug and procedure with every role
            assert len(counts) == 4, (word, counts)
    for word in ("tomorrow", "hour ago", "yesterday", "this morning", "next month"):
        counts = collections.Counter(r["urgency"] for r in rows if word in r["message"].lower())
        assert len(counts) == 3 and max(counts.values()) / sum(counts.values()) < 0.6, (word, counts)
    fields = [(r, _triage_fields(r["trigger"])) for r in rows]
    # the unit of a dated item does not say whether it is the recent one (version 2.2; 2.1 wrote only the recent
    # item in days): days and weeks each about half of the recent items and half of the others
    times = [f[item].split("@")[1] for _, f in fields for item in ("procedure", "drug") if "@" in f.get(item, "")]
    for recent in (True, False):
        units = collections.Counter(_triage_unit(t) for t in times if (_triage_days(t) <= 14) == recent)
        assert abs(units["days"] / sum(units.values()) - 0.5) < 0.05, (recent, units)
    for symptom in ("chest", "fever", "black_stools", "nausea"):  # one symptom, several levels and roles
        found = [r for r, f in fields if f.get("symptom") == symptom]
        assert len({r["urgency"] for r in found}) >= 2 and len({r["personnel"] for r in found}) >= 2, symptom
    for reading in _TRIAGE_READINGS:  # a double dose and one kind of reading: both roles
        assert {r["personnel"] for r, f in fields if f.get("reading", "").startswith(reading + ":")} \
            == {"physician", "pharmacist"}, reading


# ADRD's risk-model, history and rationale checks: tests/test_adrd_prediction.py

