"""Shortcuts found by the eleventh probe of the bundled task data: a model that reads no medicine must stay near chance.

- uti 2.1: the review of systems listed the counting symptoms plus two filler findings, so the length of its
  "present" list read the label: "3 or more findings reported -> yes" (a depth-1 tree over the counts of findings
  reported and denied, trained on train) scored F1 0.75 and accuracy 0.69 on test, above the task's ceiling
  (0.70) and always-yes (0.667). In 2.2 both lists take lengths drawn whatever the label (F1 0.39-0.47).
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parent.parent / "tasks"


def _module(task: str, name: str):
    spec = importlib.util.spec_from_file_location(f"_round11_{task}_{name}", TASKS / task / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(task: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (TASKS / task / "data" / f"{split}.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------------- uti
@pytest.fixture(scope="module")
def uti_counts():
    """(findings reported, findings denied, signed CVA/suprapubic findings) read off each note's text, as a
    reader that knows no medicine would count them, with the labels; train and test."""
    gen = _module("uti", "generate")
    ros = re.compile("(?:" + "|".join(re.escape(lead) for lead in gen.ROS_LEADS) + r")(.*?)\.\s")
    lists = re.compile("(?:" + "|".join(gen.PRESENT_LEADS) + r") (.*?) (?:" + "|".join(
        re.escape(d.split()[0]) for d in gen.DURATIONS) + r")\b.*?\. (?:" + "|".join(gen.ABSENT_LEADS) + r") (.*?)\.")
    exam = re.compile(r"(?:\(\+\) |\+)(?:CVA|costovertebral|suprapubic tenderness)|tenderness (?:\(\+\)|\+)")

    def counts(row):
        text = row["text"]
        found = ros.search(text)
        if found:
            items = [item.strip() for item in found.group(1).split(",")]
            reported = sum(1 for item in items if re.search(r"\(\+\)|^\+|\+$", item))
            denied = len(items) - reported
        else:
            found = lists.search(text)
            reported, denied = len(found.group(1).split(", ")), len(found.group(2).split(", "))
        # the reader counts what the note charts: the row's own lists, exam signs aside
        assert reported == len([s for s in row["present"] if s not in gen.EXAM_SIGNS]), text
        assert denied == len(row["absent"]), text
        return [reported, denied, reported - denied, len(exam.findall(text))]

    out = {}
    for split in ("train", "test"):
        rows = _rows("uti", split)
        out[split] = ([counts(r) for r in rows], [int(r["label"] == "yes") for r in rows])
    return out


def _f1(gold, pred):
    tp = sum(g and p for g, p in zip(gold, pred))
    return 2 * tp / (sum(gold) + sum(pred)) if tp else 0.0


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_uti_counting_the_reported_findings_does_not_read_the_label(uti_counts, depth):
    from sklearn.tree import DecisionTreeClassifier

    (x_train, y_train), (x_test, y_test) = uti_counts["train"], uti_counts["test"]
    tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train, y_train)
    pred = [int(p) for p in tree.predict(x_test)]
    accuracy = sum(p == g for p, g in zip(pred, y_test)) / len(y_test)
    assert _f1(y_test, pred) < 0.60 and accuracy < 0.62, (_f1(y_test, pred), accuracy)  # 2.1: 0.75 and 0.69


def test_uti_list_lengths_are_drawn_whatever_the_label():
    """The structured rows: the lengths of the present and absent lists carry (almost) nothing about the label."""
    from sklearn.metrics import roc_auc_score

    gen = _module("uti", "generate")
    rows = [row for split in ("train", "validation", "test") for row in _rows("uti", split)]
    labels = [row["label"] == "yes" for row in rows]
    reported = [len([s for s in row["present"] if s not in gen.EXAM_SIGNS]) for row in rows]
    denied = [len(row["absent"]) for row in rows]
    assert {min(reported), max(reported)} == set(gen.PRESENT_FINDINGS)
    assert {min(denied), max(denied)} == set(gen.ABSENT_FINDINGS)
    assert 0.42 < roc_auc_score(labels, reported) < 0.58  # 2.1: 0.72 on test
    assert 0.42 < roc_auc_score(labels, denied) < 0.58
