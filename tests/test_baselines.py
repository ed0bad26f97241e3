"""Trivial baselines: every generated task must stay under its ceiling, so its labels are not in the wording.

The ceiling lives next to the task (``metadata.baseline_ceiling`` in its YAML, default 0.70, with a comment
saying why when higher). A failure here means a generator lets its label leak through words a bag-of-words
model can pick up: fix the generator (shared phrase pools, twin cases), not the ceiling.
"""

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from medbench import baselines
from medbench.baselines import DEFAULT_CEILING, BaselineResult, _Split, bow_classify, score, task_baseline, \
    two_word_rule
from medbench.tasks import read_task_yaml

TASKS = Path(__file__).resolve().parent.parent / "tasks"


def _generated_tasks() -> list[str]:
    names = []
    for path in sorted(TASKS.rglob("*.yaml")):
        config = read_task_yaml(path)
        if isinstance(config.get("task"), str) and (config.get("metadata") or {}).get("generator"):
            names.append(config["task"])
    return names


GENERATED = _generated_tasks()


def test_the_generated_tasks_are_found():
    assert {"uti", "hyponatremia", "triage_personnel", "triage_urgency", "adrd_prediction",
            "clinical_reasoning", "discharge_summary"} <= set(GENERATED)


@pytest.mark.parametrize("task", GENERATED)
def test_bow_baseline_stays_under_the_task_ceiling(task):
    result = task_baseline(task)
    if result.bow_lr is None and result.lead is None and result.constant is None:
        assert result.note, result  # a task without labels says why it has no baseline
        return
    assert result.n_train > 0 and result.n_test > 0
    if result.bow_lr is not None:
        assert result.bow_lr <= result.ceiling, (
            f"{task}: TF-IDF logistic regression scores {result.metric} {result.bow_lr:.3f} > ceiling "
            f"{result.ceiling} — the label leaks through wording; fix tasks/.../generate.py")
        assert result.majority is not None and result.majority <= result.ceiling
    if result.rule2 is not None:  # the two-feature shortcut a reviewer tries first
        assert result.rule2 <= min(result.ceiling, DEFAULT_CEILING), (task, result.rule2)
    if result.lead is not None:
        assert result.lead <= result.ceiling, (task, result.lead)
    for probe in ("char_lr", "num_rule", "answer_only", "constant", "copy"):  # baseline_probes, generation_probes
        found = getattr(result, probe)
        if found is not None:
            assert found <= result.ceiling, f"{task}: {probe} scores {result.metric} {found:.3f} > {result.ceiling}"
    if result.method == "per-option":
        assert result.answer_only is not None and result.char_lr is None
    if result.method == "classify":
        assert result.char_lr is not None and result.num_rule is not None


# ------------------------------------------------------------------------------------- the machinery itself
def _synthetic(leaky: bool, n: int, seed: int) -> _Split:
    rng = random.Random(seed)
    words = ["fever", "cough", "pain", "rash", "nausea", "dizzy", "tired", "itch", "swelling", "ache"]
    texts, gold = [], []
    for i in range(n):
        label = i % 2
        body = " ".join(rng.choice(words) for _ in range(8))
        texts.append(body + (" alpha" if leaky and label else " beta" if leaky else ""))
        gold.append(label)
    return _Split(texts, gold, [["no", "yes"]] * n, [{}] * n)


def test_bow_and_two_word_rule_find_a_planted_leak_and_nothing_in_noise():
    train, test = _synthetic(True, 120, 0), _synthetic(True, 60, 1)
    assert score("acc", test.gold, bow_classify(train, test), 2) == 1.0
    assert score("acc", test.gold, two_word_rule(train, test), 2) == 1.0
    train, test = _synthetic(False, 120, 2), _synthetic(False, 200, 3)
    assert score("acc", test.gold, bow_classify(train, test), 2) < 0.65


def test_probes_find_a_planted_number_threshold_suffix_and_longest_answer():
    from medbench.baseline_probes import answer_only, char_classify, number_rule

    rng = random.Random(5)

    def labs(n):  # the label is potassium > 5.5 and nothing else; the suffix "-ase" only when positive
        texts, gold = [], []
        for _ in range(n):
            k, na = round(rng.uniform(3.0, 7.0), 1), rng.randint(125, 145)
            gold.append(int(k > 5.5))
            texts.append(f"Sodium {na} mmol/L, potassium {k} mmol/L, " + ("kinase" if k > 5.5 else "kinetic") + ".")
        return _Split(texts, gold, [["no", "yes"]] * n, [{}] * n)

    train, test = labs(150), labs(100)
    assert score("acc", test.gold, number_rule(train, test), 2) > 0.95
    assert score("acc", test.gold, char_classify(train, test), 2) > 0.95

    def mcq(n, leaky):  # the gold option is the longest one when leaky
        texts, gold = [], []
        for i in range(n):
            options = [" ".join(rng.choice(["aspirin", "heparin", "rest", "fluids", "steroid"]) for _ in range(2))
                       for _ in range(4)]
            g = i % 4
            if leaky:
                options[g] += " followed by a long course of supportive therapy"
            texts.append("Question: which?\n" + "\n".join(f"{'ABCD'[j]}. {o}" for j, o in enumerate(options)))
            gold.append(g)
        return _Split(texts, gold, [list("ABCD")] * n, [{}] * n)

    assert score("acc", mcq(60, True).gold, answer_only(mcq(120, True), mcq(60, True)), 4) == 1.0
    noise = mcq(200, False)
    assert score("acc", noise.gold, answer_only(mcq(120, False), noise), 4) < 0.40


def test_scores_match_the_task_metrics():
    gold, pred = [1, 1, 0, 0], [1, 0, 0, 0]
    assert score("acc", gold, pred, 2) == 0.75
    assert score("f1", gold, pred, 2) == pytest.approx(2 / 3)
    assert score("macro_f1", [0, 1, 2], [0, 0, 0], 3) == pytest.approx((0.5 + 0 + 0) / 3)
    with pytest.raises(Exception, match="no baseline scorer"):
        score("bleu", gold, pred, 2)


def test_mcq_prompts_are_scored_per_option():
    result = task_baseline("medqa")
    assert result.method == "per-option" and result.metric == "acc"
    assert 0.0 <= result.bow_lr <= 1.0 and result.majority == pytest.approx(0.25, abs=0.15)


def test_tasks_baselines_command_prints_a_table_and_json(monkeypatch):
    from medbench.cli import cli

    fake = [BaselineResult(task="uti", metric="f1", majority=0.667, bow_lr=0.81, rule2=0.64, ceiling=0.85,
                           n_train=200, n_test=100, method="classify"),
            BaselineResult(task="discharge_summary", metric="rougeL", lead=0.16, ceiling=0.35,
                           note="lead-3 sentences of the note")]
    monkeypatch.setattr(baselines, "all_baselines", lambda names=None: fake)
    runner = CliRunner()
    out = runner.invoke(cli, ["tasks", "--baselines"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "uti" in out.output and "0.810" in out.output and "lead-3 sentences" in out.output
    out = runner.invoke(cli, ["tasks", "--baselines", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["baselines"]
    assert rows[0]["bow_lr"] == 0.81 and rows[1]["lead"] == 0.16 and rows[1]["bow_lr"] is None


def _mcq_rows(task: str, split: str) -> list[dict]:
    """A bundled MCQ split through the task's own normaliser: question, choices, gold."""
    import importlib

    from medbench.taskdata import read_records

    module = importlib.import_module(f"medbench_tasks.{task}.utils")
    path = TASKS / task / "data" / f"{split}.jsonl"
    return [module.normalize(row, f"{path.name} row {i + 1}") for i, row in enumerate(read_records(path))]


@pytest.mark.parametrize("task", ["clinical_reasoning", "medqa"])
def test_no_option_word_marks_the_wrong_options_in_every_split(task):
    """An exam writer's tell ("X alone", "always", "never") that is only ever on wrong options lets a model drop
    them without reading the case: no word may be on the wrong options of 10% of the items, and on no answer, in
    train and in test both. (clinical_reasoning's "alone" was on 36% and 22%; a drug or disease name reaches ~5%.)"""
    import re
    from collections import Counter

    tells = []
    for split in ("train", "test"):
        rows = _mcq_rows(task, split)
        items_with, on_answer = Counter(), Counter()
        for row in rows:
            words = [set(re.findall(r"[a-z]+", choice.lower())) for choice in row["choices"]]
            on_answer.update(words[row["gold"]])
            items_with.update(set().union(*(w for i, w in enumerate(words) if i != row["gold"])))
        tells.append({w for w, n in items_with.items() if n >= 0.10 * len(rows) and not on_answer[w]})
    assert not tells[0] & tells[1], f"{task}: words only on wrong options, in both splits: {tells[0] & tells[1]}"


def test_clinical_reasoning_options_alone_do_not_give_the_answer_in_any_split():
    """Each option string's share of gold among its appearances in a split: when answers are only ever answers
    (version 1.2: every gold string, in every split), a model fine-tuned on train learns which strings to pick
    without reading the case (0.96 on train). And the longest option must not be the answer more than chance
    allows (1.2: 42% of train)."""
    from collections import Counter

    for split in ("train", "validation", "test"):
        rows = _mcq_rows("clinical_reasoning", split)
        as_gold, seen = Counter(), Counter()
        for row in rows:
            as_gold[row["choices"][row["gold"]]] += 1
            seen.update(row["choices"])
        memorised = sum(max(range(4), key=lambda i: (as_gold[r["choices"][i]] / seen[r["choices"][i]], -i))
                        == r["gold"] for r in rows) / len(rows)
        assert memorised < 0.40, (split, memorised)
        assert all(as_gold[answer] < seen[answer] for answer in as_gold), split  # each answer is also wrong somewhere
        longest = sum(max(range(4), key=lambda i: len(r["choices"][i])) == r["gold"] for r in rows) / len(rows)
        assert longest < 0.34, (split, longest)


def _dose_task(folder: Path, leaky: bool) -> None:
    """A text-choice MCQ (``doc_to_choice: "{{choices}}"``, options in one prompt line, no letters): when leaky
    the gold dose is always the second smallest option, a rank no word gives away."""
    rng = random.Random(7)
    (folder / "data").mkdir(parents=True)
    for split, n in (("train", 60), ("test", 40)):
        rows = []
        for _ in range(n):
            gold = rng.randint(10, 90) * rng.choice([5, 10, 15, 20])
            below = 1 if leaky else rng.randint(0, 3)  # wrong options below the gold dose: its rank
            factors = rng.sample([0.1, 0.3, 0.5], below) + rng.sample([2.0, 4.0, 10.0], 3 - below)
            options = [f"{gold * factor:g} mg" for factor in [1.0, *factors]]
            answer = options[0]
            rng.shuffle(options)
            rows.append({"question": "Single dose?", "choices": options, "answer": options.index(answer)})
        (folder / "data" / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "dose.yaml").write_text(
        "task: dose\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: data/train.jsonl\n"
        "    test: data/test.jsonl\noutput_type: multiple_choice\ntraining_split: train\ntest_split: test\n"
        "doc_to_text: \"{{question}}\\nOptions: {{choices | join('; ')}}\\nAnswer:\"\n"
        "doc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n")


@pytest.mark.parametrize("leaky", [True, False])
def test_text_choice_mcq_gets_per_option_baselines_that_find_a_numeric_rank_leak(tmp_path, monkeypatch, leaky):
    from medbench.tasks import task_sources

    _dose_task(tmp_path / "dose", leaky)
    monkeypatch.chdir(tmp_path / "dose")  # lm-eval's dataset_kwargs.data_files resolve against the working folder
    with task_sources([str(tmp_path / "dose")], False):
        result = task_baseline("dose")
    assert result.method == "per-option" and result.bow_lr is not None, result.note
    assert result.answer_only is not None
    assert (result.answer_only >= 0.95) if leaky else (result.answer_only < 0.5)


class _EchoTask:
    """A generation task scored by exact match against its reference."""

    def doc_to_text(self, doc):
        return doc["prompt"]

    def doc_to_target(self, doc):
        return doc["reference"]

    def process_results(self, doc, results):
        return {"exact_match": float(results[0] == doc["reference"])}


@pytest.mark.parametrize("shared, expected_constant", [(True, 1.0), (False, 0.0)])
def test_the_constant_answer_probe_finds_a_reference_every_item_shares(shared, expected_constant):
    from medbench.generation_probes import generation_probes

    def docs(n, start):
        return [{"prompt": f"case {i}", "reference": "see the clinic" if shared else f"answer {i}"}
                for i in range(start, start + n)]

    found = generation_probes(_EchoTask(), docs(30, 0), docs(10, 100), "exact_match")
    assert sum(found["constant"]) / 10 == expected_constant and sum(found["copy"]) == 0


def test_the_copy_probe_finds_references_that_repeat_the_prompt():
    from medbench.generation_probes import generation_probes

    docs = [{"prompt": f"case {i}", "reference": f"case {i}"} for i in range(20)]
    found = generation_probes(_EchoTask(), docs, docs[:5], "exact_match")
    assert found["copy"] == [1.0] * 5 and found["constant"] == [0.0] * 5
