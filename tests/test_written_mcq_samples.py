"""The bundled MedQA / MedMCQA samples (written for medbench) must not give their answer away through the options.

Hand-written multiple-choice items drift towards a gold option that is the longest, most detailed one; a model
that never reads the question then beats chance. For every split of both samples this checks the gold option's
length rank among its options, the balance of the gold letters, and the answer-only probe of
baseline_probes.py (options only, never the question), trained on train as ``medbench tasks --baselines`` does.
A failure names the file to fix: reword its options (mostly the distractors) so the four are parallel in form
and length, without changing which letter is gold.
"""

from collections import Counter
from pathlib import Path

import pytest

from medbench import baseline_probes
from medbench.baselines import _split, score
from medbench.tasks import load_tasks

DATA = Path(__file__).resolve().parent.parent / "tasks"
FILES = {
    "medqa": {"train": "medqa/data/train.jsonl", "validation": "medqa/data/validation.jsonl",
              "test": "medqa/data/test.jsonl"},
    "medmcqa": {"train": "medmcqa/data/train.json", "validation": "medmcqa/data/dev.json",
                "test": "medmcqa/data/test.json"},
}
MAX_UNIQUE_LONGEST = 0.30  # chance is about 0.25 when the four options are of similar length
MAX_UNIQUE_SHORTEST = 0.30
LETTER_SHARE = (0.20, 0.30)
MAX_ANSWER_ONLY_TEST = 0.30  # chance is 0.25
MAX_ANSWER_ONLY_VALIDATION = 0.35  # a 20-item split: one item is 0.05


@pytest.fixture(scope="module")
def tasks():
    return load_tasks(list(FILES))


def _docs(task, split):
    return {"train": task.training_docs, "validation": task.validation_docs, "test": task.test_docs}[split]()


CASES = [(name, split) for name in FILES for split in FILES[name]]


@pytest.mark.parametrize("name,split", CASES)
def test_gold_option_is_not_marked_by_its_length(tasks, name, split):
    docs = _docs(tasks[name], split)
    where = f"tasks/{FILES[name][split]}"
    longest = shortest = 0
    for doc in docs:
        lengths = [len(choice) for choice in doc["choices"]]
        gold = lengths[doc["gold"]]
        longest += gold == max(lengths) and lengths.count(gold) == 1
        shortest += gold == min(lengths) and lengths.count(gold) == 1
    n = len(docs)
    assert n > 0
    assert longest / n <= MAX_UNIQUE_LONGEST, (
        f"{name} {split}: the gold option is the unique longest in {longest}/{n} items ({longest / n:.0%} > "
        f"{MAX_UNIQUE_LONGEST:.0%}) — option length gives the answer away; reword options in {where}")
    assert shortest / n <= MAX_UNIQUE_SHORTEST, (
        f"{name} {split}: the gold option is the unique shortest in {shortest}/{n} items ({shortest / n:.0%} > "
        f"{MAX_UNIQUE_SHORTEST:.0%}) — option length gives the answer away; reword options in {where}")


@pytest.mark.parametrize("name,split", CASES)
def test_gold_letters_are_balanced(tasks, name, split):
    docs = _docs(tasks[name], split)
    counts = Counter(doc["gold"] for doc in docs)
    low, high = LETTER_SHARE
    for index, letter in enumerate("ABCD"):
        share = counts[index] / len(docs)
        assert low <= share <= high, (
            f"{name} {split}: gold letter {letter} in {counts[index]}/{len(docs)} items ({share:.0%}, want "
            f"{low:.0%}-{high:.0%}) — the answer position leaks; rebalance the gold letters in "
            f"tasks/{FILES[name][split]}")


@pytest.mark.parametrize("name", list(FILES))
def test_answer_only_probe_stays_near_chance(tasks, name):
    from threadpoolctl import threadpool_limits

    task = tasks[name]
    train = _split(task, task.training_docs())
    for split, ceiling in (("test", MAX_ANSWER_ONLY_TEST), ("validation", MAX_ANSWER_ONLY_VALIDATION)):
        evaluated = _split(task, _docs(task, split))
        with threadpool_limits(limits=1):  # as baselines.task_predictions runs it
            preds = baseline_probes.answer_only(train, evaluated)
        assert preds is not None, f"{name}: the prompt no longer lists its options as 'A. text' lines"
        found = score("acc", evaluated.gold, preds, 4)
        assert found <= ceiling, (
            f"{name}: the answer-only probe (options only, never the question; trained on train) scores acc "
            f"{found:.3f} on {split} > {ceiling} — the gold option looks different from the distractors "
            f"(length, wording, form); make the options parallel in tasks/{FILES[name][split]} and "
            f"tasks/{FILES[name]['train']}")
