"""Shortcut probes: the next baselines a sceptical reviewer trains after majority and word TF-IDF (baselines.py).

Each trains on the task's train split and answers its test split; ``medbench tasks --baselines`` reports them
and tests/test_baselines.py holds them under the task's ceiling. A probe near the ceiling names the shortcut:

- ``char_lr``: TF-IDF over character 2-5-grams (within word boundaries) + logistic regression: catches leaks
  that word tokens split (number formats, suffixes, units) — classification tasks.
- ``num_rule``: a depth-2 decision tree over the numbers in the prompt, each keyed by the word before it
  ("temperature 38.7" -> temperature=38.7): a label read off one or two values with fixed thresholds, no
  medicine needed — classification tasks.
- ``answer_only``: multiple-choice questions scored per option from the options alone, never the question:
  length and its rank among the options, word count, likeness to the other options (odd one out), position, and
  the option's own words. Above chance, the gold option looks different from the wrong ones.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

NUMBER_AFTER_WORD = re.compile(r"([A-Za-z]+)[^A-Za-z0-9\n]{0,3}(\d+(?:\.\d+)?)")
_WORD = re.compile(r"[a-z0-9]+")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
RANKS = 8  # one-hot width of an option's position and numeric rank (later ones share no column)


def _fast_lr(features, labels, groups=None):
    """One-vs-rest liblinear LR, C from a 3-fold, 3-value search on the train split (grouped per question when
    ``groups``): lbfgs with baselines.py's 5x4 search took up to 30 s over char n-grams; this takes 1-3 s."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score
    from sklearn.multiclass import OneVsRestClassifier

    best_c, best = 10.0, None
    smallest = min(Counter(labels).values())
    folds = GroupKFold(n_splits=3) if groups is not None else StratifiedKFold(min(3, smallest), shuffle=True,
                                                                              random_state=0)
    if smallest >= 2:
        for c in (1.0, 10.0, 100.0):
            model = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear"))
            found = cross_val_score(model, features, labels, cv=folds, groups=groups, scoring="neg_log_loss").mean()
            if best is None or found > best:
                best, best_c = found, c
    return OneVsRestClassifier(LogisticRegression(C=best_c, solver="liblinear")).fit(features, labels)


def char_classify(train: Any, test: Any) -> list[int]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                                 max_features=20000)
    model = _fast_lr(vectorizer.fit_transform(train.texts), train.gold)
    return [int(p) for p in model.predict(vectorizer.transform(test.texts))]


def numbers(text: str) -> dict[str, float]:
    """Every number in ``text`` keyed by the word before it (a repeated word gets #2, #3, ...)."""
    found: dict[str, float] = {}
    seen: Counter = Counter()
    for word, value in NUMBER_AFTER_WORD.findall(text):
        key = word.lower()
        seen[key] += 1
        found[key if seen[key] == 1 else f"{key}#{seen[key]}"] = float(value)
    return found


def number_rule(train: Any, test: Any, depth: int = 2) -> list[int]:
    """The best depth-``depth`` tree over the prompt's numbers (a value absent from a prompt reads as -1)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.tree import DecisionTreeClassifier

    vectorizer = DictVectorizer(sparse=False)
    x_train = vectorizer.fit_transform([{k: v + 1 for k, v in numbers(t).items()} for t in train.texts]) - 1
    x_test = vectorizer.transform([{k: v + 1 for k, v in numbers(t).items()} for t in test.texts]) - 1
    if x_train.shape[1] == 0:
        return [Counter(train.gold).most_common(1)[0][0]] * len(test.texts)
    tree = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train, train.gold)
    return [int(p) for p in tree.predict(x_test)]


def _surface(options: list[str]) -> list[list[float]]:
    """Per option: what it looks like next to the other options, never what it says about the question. Positions
    and numeric ranks are one-hot up to ``RANKS`` (a task's option count may vary); the rank of an option's first
    number among the options' catches "the gold dose is always the second smallest"."""
    lengths = [len(o) for o in options]
    values = [NUMBER.search(o) for o in options]
    ordered = sorted(float(v.group()) for v in values) if all(values) else []
    mean = sum(lengths) / len(lengths)
    spread = (sum((n - mean) ** 2 for n in lengths) / len(lengths)) ** 0.5
    words = [set(_WORD.findall(o.lower())) for o in options]
    rows = []
    for i, option in enumerate(options):
        likeness = [len(words[i] & words[j]) / max(1, len(words[i] | words[j])) for j in range(len(options)) if j != i]
        position = [float(i == p) for p in range(RANKS)]
        rank = ordered.index(float(values[i].group())) if ordered else -1
        numeric = [float(rank == r) for r in range(RANKS)] + [float(rank == len(options) - 1)]
        rows.append([lengths[i] / max(mean, 1), float(lengths[i] == max(lengths)), float(lengths[i] == min(lengths)),
                     (lengths[i] - mean) / (spread + 1), len(option.split()), sum(likeness) / max(1, len(likeness)),
                     float(any(c.isdigit() for c in option)), *position, *numeric])
    return rows


def _option_matrix(vectorizer, items: list[list[str]]):
    import numpy as np
    from scipy import sparse

    surface = np.array([row for options in items for row in _surface(options)], dtype=float)
    words = vectorizer.transform([o for options in items for o in options])
    return sparse.hstack([sparse.csr_matrix(surface), words]).tocsr()


def answer_only(train: Any, test: Any, text_choices: bool = False) -> list[int] | None:
    """Per-option logistic regression over the options alone; None when a prompt does not list its options."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from medbench.baselines import _options

    parsed = {}
    for name, split in (("train", train), ("test", test)):
        items = [_options(text, letters, text_choices) for text, letters in zip(split.texts, split.choices)]
        if not items or any(item is None for item in items):
            return None
        parsed[name] = [options for _, options in items]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    vectorizer.fit([o for options in parsed["train"] for o in options])
    x_train = _option_matrix(vectorizer, parsed["train"])
    y_train = [int(i == g) for options, g in zip(parsed["train"], train.gold) for i in range(len(options))]
    groups = [n for n, options in enumerate(parsed["train"]) for _ in options]
    model = _fast_lr(x_train, y_train, groups)
    scores = model.decision_function(_option_matrix(vectorizer, parsed["test"]))
    preds, start = [], 0
    for options in parsed["test"]:
        preds.append(int(scores[start:start + len(options)].argmax()))
        start += len(options)
    return preds
