"""Shortcuts of the generation tasks (tenth review): an answer that does not read the item must score low.

The classification and multiple-choice tasks are held under their ceilings by tests/test_baselines.py. The
generation tasks have no labels to learn, so their shortcut is a fixed answer (or a copy of the prompt) that the
metric rewards anyway:

- discharge_summary 2.0 wrote every reference in one frame ("N-year-old man ... admitted ... for a N-day stay;
  ... Started ... Follow up at the ... clinic in ..."): one training summary about any patient scored ROUGE-L 0.38
  on the test references, above the task's ceiling of 0.35 (2.1: 0.24).
- instruction_following 1.2: half the prompts asked only for constraints one fixed text meets whatever the prompt
  (lowercase, no commas, quoted, a title, highlights, placeholders, a p.s., no tempting word, a term unused): such
  a text scored prompt-level strict accuracy 0.41 on test, a copy of the prompt 0.25 (1.3: 0.01 and 0.16).
"""


import pytest

from task_files import task_module, task_rows


# ------------------------------------------------------------------------------------------- discharge_summary
@pytest.fixture(scope="module")
def summaries():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)  # as utils.process_results scores

    def rouge(reference: str, candidate: str) -> float:
        return scorer.score(reference, candidate)["rougeL"].fmeasure

    return task_rows("discharge_summary", "train"), task_rows("discharge_summary", "test"), rouge


def test_no_single_training_summary_scores_well_on_the_test_references(summaries):
    """The constant answer a sceptic fits first: the training summary closest to the others (chosen on train only;
    every third one a candidate, for time), given for every test note. 2.0: 0.40 on train, 0.38 on test."""
    train, test, rouge = summaries
    references = [row["summary"] for row in train]
    best = max(references[::3], key=lambda c: sum(rouge(r, c) for r in references))
    score = sum(rouge(row["summary"], best) for row in test) / len(test)
    assert score < 0.28, (score, best)


def test_the_nearest_training_summary_and_the_note_itself_score_low(summaries):
    """Retrieval (the summary of the training note most like the test note, TF-IDF) and copying the note: 2.0
    scored 0.37 and 0.32; the frame, not the patient, carried the score."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train, test, rouge = summaries
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    train_notes = vectorizer.fit_transform([r["note"] for r in train])
    nearest = (vectorizer.transform([r["note"] for r in test]) @ train_notes.T).toarray().argmax(axis=1)
    retrieved = sum(rouge(row["summary"], train[i]["summary"]) for row, i in zip(test, nearest)) / len(test)
    copied = sum(rouge(row["summary"], row["note"]) for row in test) / len(test)
    assert retrieved < 0.28 and copied < 0.30, (retrieved, copied)


def test_reference_summaries_do_not_share_one_frame():
    """No opening (first three words, numbers masked) starts more than a quarter of the references; 2.0's three
    openings started all of them."""
    import re
    from collections import Counter

    rows = [row for split in ("train", "validation", "test") for row in task_rows("discharge_summary", split)]
    openings = Counter(" ".join(re.sub(r"\d+", "#", row["summary"]).split()[:3]).lower() for row in rows)
    assert openings.most_common(1)[0][1] < 0.25 * len(rows), openings.most_common(3)


# --------------------------------------------------------------------------------------- instruction_following
# One text written without reading any prompt, meeting every constraint type that allows it at once.
_FIXED = ('"<<a short guide>>\n\n*keep this page* near you. *ask for help* when unsure. *call the clinic* if worse. '
          + "take each dose as your care team advised and keep a written list of questions for the next visit. " * 3
          + 'write to [care team] at [clinic address] on [date].\n\np.s. bring this page to every visit."')


@pytest.fixture(scope="module")
def if_scored():
    utils = task_module("instruction_following", "utils")

    def prompt_level(rows: list[dict], answers: list[str]) -> float:
        return sum(utils.process_results(row, [answer])["prompt_level_strict_acc"]
                   for row, answer in zip(rows, answers)) / len(rows)

    return prompt_level


def test_a_fixed_text_and_a_copy_of_the_prompt_fail_most_prompts(if_scored):
    test = task_rows("instruction_following", "test")
    fixed = if_scored(test, [_FIXED] * len(test))
    copied = if_scored(test, [row["prompt"] for row in test])
    assert fixed < 0.05, fixed  # 1.2: 0.41
    assert copied < 0.20, copied  # 1.2: 0.25


def test_no_training_response_answers_the_test_prompts(if_scored):
    """The best single reference response of train (chosen on train), given to every test prompt: 1.2 0.26."""
    train, test = task_rows("instruction_following", "train"), task_rows("instruction_following", "test")
    best = max((row["response"] for row in train), key=lambda r: if_scored(train, [r] * len(train)))
    assert if_scored(test, [best] * len(test)) < 0.10


def test_every_prompt_has_a_constraint_only_its_own_response_meets():
    anchors = set(task_module("instruction_following", "generate").ANCHORS)
    for split in ("train", "validation", "test"):
        for row in task_rows("instruction_following", split):
            assert set(row["instruction_id_list"]) & anchors, (split, row["prompt"])
