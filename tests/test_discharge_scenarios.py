"""discharge_summary holds its scenarios out: a test (or validation) note's scenario never occurs in train.

Without this a model trained on the train split could recall each scenario's summary shape and facts, which
favours SFT on the references and clusters the test items (see tasks/discharge_summary/generate.py).
"""

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

TASK = Path(__file__).resolve().parent.parent / "tasks" / "discharge_summary"
SPLITS = ("train", "validation", "test")


def _module(name):
    spec = importlib.util.spec_from_file_location(f"_test_ds_scenarios_{name}", TASK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _module("generate")


@pytest.fixture(scope="module")
def rows():  # the committed data (another test checks it is the generator's output)
    return {split: [json.loads(line) for line in (TASK / "data" / f"{split}.jsonl").read_text().splitlines()]
            for split in SPLITS}


def test_held_out_names_are_scenarios_and_in_one_split_only(gen):
    names = [sc["diagnosis"] for sc in gen.SCENARIOS]
    assert len(names) == len(set(names))  # the diagnosis names the scenario
    held = [name for split_names in gen.HELD_OUT.values() for name in split_names]
    assert len(held) == len(set(held)) and set(held) <= set(names)
    counts = Counter(gen.split_of(sc) for sc in gen.SCENARIOS)
    assert counts["train"] >= 14 and counts["test"] >= 8 and counts["validation"] >= 4, counts


def test_scenarios_are_disjoint_across_splits_and_all_used(gen, rows):
    by_split = {split: {row["diagnosis"] for row in rows[split]} for split in SPLITS}
    assert not by_split["train"] & by_split["test"]
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["validation"] & by_split["test"]
    for split in SPLITS:
        assert by_split[split] == {sc["diagnosis"] for sc in gen.SCENARIOS if gen.split_of(sc) == split}
    per_scenario = Counter(row["diagnosis"] for row in rows["test"])
    assert max(per_scenario.values()) - min(per_scenario.values()) <= 1  # cycled: evenly spread


def test_held_out_diagnoses_never_appear_in_training_text(rows, gen):
    utils = _module("utils")
    held = {row["diagnosis"] for split in ("validation", "test") for row in rows[split]}
    for row in rows["train"]:
        for diagnosis in held:
            assert not utils.mentions(row["note"] + "\n" + row["summary"], diagnosis), (diagnosis, row["note"])


def test_near_twins_stay_on_one_side_and_every_split_titrates(gen):
    by_name = {sc["diagnosis"]: sc for sc in gen.SCENARIOS}
    for twins in (("acute cholecystitis", "gallstone pancreatitis"), ("acute pyelonephritis", "urosepsis"),
                  ("COPD exacerbation", "asthma exacerbation"),
                  ("diabetic ketoacidosis", "hyperosmolar hyperglycemic state")):
        assert len({gen.split_of(by_name[name]) for name in twins}) == 1, twins
    for split in SPLITS:
        assert any(sc.get("titration") for sc in gen.SCENARIOS if gen.split_of(sc) == split), split


def test_an_unknown_split_name_is_refused(gen):
    with pytest.raises(ValueError, match="no scenarios for split 'dev'"):
        gen.generate(sizes={"dev": 3})
