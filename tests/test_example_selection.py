"""Which training rows a trainer takes (medbench.trainingdata.select_examples): --max-examples is a seeded,
label-stratified sample kept in data order, --exclude-difficulty leaves tiers out first; both checked in one line."""

import collections
import json
import os
import subprocess
import sys

import pytest

from medbench.errors import MedbenchError
from medbench.training import build_config
from medbench.trainingdata import (TrainingExample, load_training_examples, select_examples,
                                   stratified_sample)
from medbench_plugins.sft import SFT, SFTOptions
from medbench_plugins.sft import prepare as prepare_sft


@pytest.fixture(scope="module")
def adrd():
    return load_training_examples("adrd_prediction")


def make(labels, difficulty=None):
    return [TrainingExample(doc_id=i, prompt=f"q{i}", completion=f" {a}", answer=a, difficulty=difficulty)
            for i, a in enumerate(labels)]


def labels_of(examples):
    return collections.Counter(e.answer for e in examples)


def test_subset_is_stratified_seeded_and_in_data_order(adrd):
    assert labels_of(adrd[:50]) == {"no": 30, "yes": 20}  # what the first rows gave: not balanced
    draws = {seed: select_examples(adrd, 50, seed) for seed in (1, 2, 3)}
    for seed, chosen in draws.items():
        assert labels_of(chosen) == {"no": 25, "yes": 25}
        ids = [e.doc_id for e in chosen]
        assert ids == sorted(ids)  # the split's own order, for orderings applied afterwards
        assert [e.doc_id for e in select_examples(adrd, 50, seed)] == ids  # deterministic
    assert len({tuple(e.doc_id for e in chosen) for chosen in draws.values()}) == 3  # each seed its own rows
    for seed in (1, 2, 3):  # under one seed, a smaller sample lies inside a larger one
        small, large = ({e.doc_id for e in select_examples(adrd, n, seed)} for n in (50, 100))
        assert small < large
    assert select_examples(adrd, 200, 1) == adrd and select_examples(adrd, None, 1) == adrd


@pytest.mark.parametrize("counts, n, expected", [
    ({"A": 60, "B": 40}, 10, {"A": 6, "B": 4}),
    ({"A": 30, "B": 20, "C": 10}, 12, {"A": 6, "B": 4, "C": 2}),
    ({"A": 45, "B": 15}, 7, {"A": 5, "B": 2}),  # 5.25 / 1.75: the nearest whole shares
    ({"A": 3, "B": 97}, 10, {"A": 0, "B": 10}),  # 0.3 rounds to none
])
def test_each_label_keeps_its_share(counts, n, expected):
    labels = [label for label, k in counts.items() for _ in range(k)]
    for seed in range(5):
        chosen = stratified_sample(make(labels), n, seed)
        assert len(chosen) == n and {k: labels_of(chosen)[k] for k in counts} == expected


def test_unique_answers_give_a_seeded_simple_sample():
    examples = make([f"answer {i}" for i in range(40)])
    chosen = [stratified_sample(examples, 10, seed) for seed in range(20)]
    assert all(len(c) == 10 for c in chosen)
    assert len({tuple(e.doc_id for e in c) for c in chosen}) == 20
    assert len({e.doc_id for c in chosen for e in c}) > 30  # every row can be drawn


def test_the_draw_is_the_same_in_another_process(adrd):
    code = ("from medbench.trainingdata import load_training_examples, select_examples; "
            "print([e.doc_id for e in select_examples(load_training_examples('adrd_prediction'), 50, 2)])")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [e.doc_id for e in select_examples(adrd, 50, 2)]


def test_an_ordering_sees_the_subset_as_it_sees_the_whole_split(adrd):
    from medbench_plugins.curriculum.orderings import order_examples

    chosen = select_examples(adrd, 100, 3)
    ids = {e.doc_id for e in chosen}
    for ordering in ("blocked", "interleaved", "curriculum", "blocked_curriculum"):
        ordered = [e.doc_id for e in order_examples(chosen, ordering, 3)]
        # data-order orderings put each group's rows in the split's order: the subset's come out in that order too
        within = [e.doc_id for e in order_examples(adrd, ordering, 3) if e.doc_id in ids]
        by_group = collections.defaultdict(list)
        for doc_id in ordered:
            by_group[adrd[doc_id].category, adrd[doc_id].difficulty].append(doc_id)
        for group in by_group.values():
            assert group == [d for d in within if d in group]


def test_exclude_difficulty_leaves_out_a_tier_before_the_sample(adrd):
    kept = select_examples(adrd, None, 1, ["hard"])
    assert len(kept) == 152 and all(e.difficulty != "hard" for e in kept)
    assert [e.doc_id for e in kept] == sorted(e.doc_id for e in kept)
    assert labels_of(kept) == {"yes": 78, "no": 74}
    chosen = select_examples(adrd, 50, 1, ["hard"])
    assert labels_of(chosen) == {"yes": 26, "no": 24} and all(e.difficulty != "hard" for e in chosen)
    with pytest.raises(MedbenchError) as error:
        select_examples(adrd, 200, 1, ["hard"], "the training data of task 'adrd_prediction'")
    assert error.value.one_line() == (
        "--max-examples 200 but the training data of task 'adrd_prediction' holds only 152 examples once difficulty "
        "hard is left out — pass --max-examples 152 or fewer, or train on your own larger data file")


def test_bad_exclude_difficulty_values_are_one_line_errors(adrd):
    with pytest.raises(MedbenchError) as error:
        select_examples(adrd, None, 1, ["hrad"], "the data")
    assert error.value.one_line() == ("--exclude-difficulty hrad: the data has no such difficulty — use one of easy, "
                                      "hard, medium")
    with pytest.raises(MedbenchError, match=r"needs a difficulty label on every example, and 3 of 3"):
        select_examples(make(["a", "b", "a"]), None, 1, ["hard"])
    with pytest.raises(MedbenchError, match=r"leaves none of the 2 examples"):
        select_examples(make(["a", "b"], difficulty="hard"), None, 1, ["hard"])
    for bad, message in ((" ", "is not a list of tier names"), ("hard,hard", "names a tier twice")):
        with pytest.raises(MedbenchError, match=message):
            build_config(SFTOptions, {}, {"exclude_difficulty": bad}, "sft")
    assert build_config(SFTOptions, {}, {"exclude_difficulty": "hard"}, "sft").exclude_difficulty == ["hard"]
    assert SFT().plan_check("adrd_prediction", {"exclude_difficulty": ["hard"], "max_examples": 100,
                                                "target": "rationale"}) is None
    assert "holds only 152 examples once difficulty hard is left out" in SFT().plan_check(
        "adrd_prediction", {"exclude_difficulty": ["hard"], "max_examples": 200})
    assert "has no such difficulty" in SFT().plan_check("adrd_prediction", {"exclude_difficulty": "extreme"})


def test_sft_trains_on_the_seeded_stratified_subset(tiny_model_dir, tmp_path, adrd):
    from medbench.training import TrainRequest

    config = build_config(SFTOptions, {}, {"max_examples": 8, "max_steps": 1, "max_length": 2048,
                                           "exclude_difficulty": "hard"}, "sft")
    run = prepare_sft(TrainRequest(model_ref=str(tiny_model_dir), task="adrd_prediction", output_dir=tmp_path / "r",
                                   config=config, seed=2, examples=list(adrd)))
    assert [e.doc_id for e in run.examples] == [e.doc_id for e in select_examples(adrd, 8, 2, ["hard"])]
    assert labels_of(run.examples) == {"yes": 4, "no": 4}



def test_a_plan_reads_each_tasks_training_data_once_and_hands_out_copies(monkeypatch):
    from medbench import trainingdata

    reads = []
    real = trainingdata._read_training_examples
    monkeypatch.setattr(trainingdata, "_read_training_examples", lambda *a: reads.append(a) or real(*a))
    with trainingdata.examples_read_once():
        first = load_training_examples("uti")
        first[0].prompt = "changed by a check"
        again = load_training_examples("uti")
        load_training_examples("uti", None, "validation")  # another split: read on its own
    assert len(reads) == 2 and again[0].prompt != "changed by a check" and len(again) == len(first)
    load_training_examples("uti")  # outside a plan nothing is kept: a file edited between commands is read anew
    assert len(reads) == 3
