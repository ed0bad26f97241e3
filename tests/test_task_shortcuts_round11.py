"""Shortcuts found by the eleventh probe of the bundled task data: a model that reads no medicine must stay near chance.

- uti 2.1: the review of systems listed the counting symptoms plus two filler findings, so the length of its
  "present" list read the label: "3 or more findings reported -> yes" (a depth-1 tree over the counts of findings
  reported and denied, trained on train) scored F1 0.75 and accuracy 0.69 on test, above the task's ceiling
  (0.70) and always-yes (0.667). In 2.2 both lists take lengths drawn whatever the label (F1 0.39-0.47).
- instruction_following 1.3: one prompt-blind text built from train met every constraint of 25% of the test prompts
  (1.4: at most 1%).
- clinical_reasoning 1.3: vignettes named the answer's words; question-option overlap models scored 0.37 (1.4: <= 0.30).
"""

import re

import pytest

from task_files import task_module, task_rows


# ---------------------------------------------------------------------------------------------------------- uti
@pytest.fixture(scope="module")
def uti_counts():
    """(findings reported, findings denied, signed CVA/suprapubic findings) read off each note's text, as a
    reader that knows no medicine would count them, with the labels; train and test."""
    gen = task_module("uti", "generate")
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
        rows = task_rows("uti", split)
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

    gen = task_module("uti", "generate")
    rows = [row for split in ("train", "validation", "test") for row in task_rows("uti", split)]
    labels = [row["label"] == "yes" for row in rows]
    reported = [len([s for s in row["present"] if s not in gen.EXAM_SIGNS]) for row in rows]
    denied = [len(row["absent"]) for row in rows]
    assert {min(reported), max(reported)} == set(gen.PRESENT_FINDINGS)
    assert {min(denied), max(denied)} == set(gen.ABSENT_FINDINGS)
    assert 0.42 < roc_auc_score(labels, reported) < 0.58  # 2.1: 0.72 on test
    assert 0.42 < roc_auc_score(labels, denied) < 0.58


# ------------------------------------------------------------------------------------------- instruction_following
# instruction_following 1.3: a text built from train without reading any prompt (the topics' vocabulary, a <<title>>,
# *highlights*, [placeholders], six "Section X" headers, a p.s. line) met every constraint of 25% of the test prompts:
# a word list meets every "include" constraint, IFEval's section check is "at least N" and exact counts are 1-in-3
# guesses. 1.4 anchors each prompt with a closing phrase (one of 120) or with words to include plus forbidden words
# taken from the other topics' words to include.
def _if_prompt_level():
    utils = task_module("instruction_following", "utils")
    return lambda rows, text: sum(utils.process_results(row, [text])["prompt_level_strict_acc"] for row in rows) / len(
        rows)


def _kwargs(rows: list[dict], instruction_id: str) -> list[dict]:
    return [kw for row in rows for i, kw in zip(row["instruction_id_list"], row["kwargs"]) if i == instruction_id]


def test_if_a_vocabulary_list_with_every_fixed_format_fails_the_test_prompts():
    train, test = task_rows("instruction_following", "train"), task_rows("instruction_following", "test")
    forbidden = {w.lower() for kw in _kwargs(train, "keywords:forbidden_words") for w in kw["forbidden_words"]}
    words = dict.fromkeys(re.findall(r"[a-z]+", " ".join(row["response"] for row in train).lower()))
    vocab = " ".join(w for w in words if w not in forbidden)
    frame = ("<<a short guide>>\n\n*keep this page* near you. *ask for help* when unsure. *call the clinic* if worse. "
             "write to [care team] at [clinic address] on [date]." + "".join(f"\n\nSection {i}\nsee below."
                                                                              for i in range(1, 7)))
    endings = [kw["end_phrase"] for kw in _kwargs(train, "startend:end_checker")]
    score = _if_prompt_level()
    for ending in [None, *sorted(set(endings), key=endings.count)[-2:]]:
        for text in (vocab, ""):  # with and without the word list
            fixed = f"{frame}\n\n{text}\n\np.s. bring this page to every visit." + (f" {ending}" if ending else "")
            assert score(test, fixed) <= 0.03, (ending, bool(text))  # 1.3: 0.25


def test_if_no_closing_phrase_or_word_list_serves_many_prompts():
    test = task_rows("instruction_following", "test")
    endings = [kw["end_phrase"].lower() for kw in _kwargs(test, "startend:end_checker")]
    assert max(endings.count(e) for e in endings) <= 0.02 * len(test)
    gen = task_module("instruction_following", "generate")
    keywords = {w for topic in gen.TOPICS for w in topic["keywords"]}
    for split in ("validation", "test"):  # the scored splits (1.5: train's json prompts ask for words to include
        for row in task_rows("instruction_following", split):  # alone, as json's set with the pair is held out)
            ids = row["instruction_id_list"]
            assert "startend:end_checker" in ids or set(gen.KEYWORD_PAIR) <= set(ids), row["prompt"]
            if set(gen.KEYWORD_PAIR) <= set(ids):  # forbidden: words that other prompts ask to include
                forbidden = row["kwargs"][ids.index("keywords:forbidden_words")]["forbidden_words"]
                assert len(forbidden) == 3 and set(forbidden) <= keywords, row["prompt"]


# ------------------------------------------------------------------------------------------- clinical_reasoning
# clinical_reasoning 1.3: five test conditions' vignettes used the answer's own words (acetaminophen, stone, duodenal
# ulcer, difficile, aortic), so a logistic regression over question-option word overlap and length rank, trained on
# train, scored 0.37 on test (chance 0.25). 1.4 rewords those findings and picks wrong options that share as many of
# the question's words as the gold.
_CR_STOP = set("a an the of and or to in on with for by is are was which following most likely best what this these "
               "his her he she".split())


def _cr_items(split: str):
    for row in task_rows("clinical_reasoning", split):
        asked = set(re.findall(r"[a-z0-9]+", row["question"].lower())) - _CR_STOP
        options = [row["options"][k] for k in "ABCD"]
        yield [len(asked & set(re.findall(r"[a-z0-9]+", o.lower()))) for o in options], options, "ABCD".index(
            row["answer_idx"])


def test_cr_the_question_does_not_name_the_answer_more_than_a_wrong_option():
    for split, most in (("train", 0.02), ("validation", 0.0), ("test", 0.0)):
        items = list(_cr_items(split))
        ahead = sum(shared[gold] > max(s for i, s in enumerate(shared) if i != gold) for shared, _, gold in items)
        assert ahead <= most * len(items), (split, ahead)  # 1.3: train 38 / 320, test 45 / 400


def test_cr_question_option_overlap_models_stay_near_chance():
    from sklearn.linear_model import LogisticRegression

    def features(split):
        x, y, golds = [], [], []
        for shared, options, gold in _cr_items(split):
            lengths = [len(o) for o in options]
            for j, option in enumerate(options):
                others = shared[:j] + shared[j + 1:]
                x.append([shared[j], shared[j] - max(others), sorted(lengths, reverse=True).index(lengths[j]),
                          len(option), len(option) == min(lengths)])
                y.append(int(j == gold))
            golds.append(gold)
        return x, y, golds

    x_train, y_train, _ = features("train")
    x_test, _, golds = features("test")
    for c in (0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        scores = model.decision_function(x_test)
        picks = [max(range(4), key=lambda j: scores[4 * i + j]) for i in range(len(golds))]
        acc = sum(p == g for p, g in zip(picks, golds)) / len(golds)
        assert acc <= 0.30, (c, acc)  # 1.3: 0.37
    most_shared = [max(range(4), key=lambda j: (s[j], len(o[j]))) == g for s, o, g in _cr_items("test")]
    assert sum(most_shared) / len(most_shared) <= 0.30
