"""Trivial baselines per task: what a model must beat before its score means anything.

For every task with labels, trained on the task's train split and scored on its test split with the task's own
primary metric (``metadata.primary_metric``):

- ``majority``: always the train split's most frequent answer (ties: the later choice, "yes" for binary tasks).
- ``bow_lr``: a TF-IDF (word unigrams + bigrams) logistic regression over the task's rendered prompt
  (``doc_to_text``), its inverse regularisation C picked by 5-fold cross-validation on the train split only.
  Multiple-choice questions whose prompt lists its options as ``A. text`` lines are scored per option: a binary
  model over the option's words, the question-option word overlap (element-wise TF-IDF product) and their
  cosine similarity; the option with the highest score is the answer.
- ``rule2``: the best two-word rule, a depth-2 decision tree over word presence (classification tasks only).
  A task whose label a two-word rule finds has a wording shortcut, whatever the BoW score.
- ``lead``: for generation tasks scored by ROUGE, the note's first k sentences (k=3) scored by the task's own
  ``process_results``.
- ``char_lr``, ``num_rule``, ``answer_only``: the shortcut probes of baseline_probes.py (character n-gram LR, a
  depth-2 tree over the prompt's numbers, an options-only model for multiple-choice questions).
- ``constant``, ``copy``: for every generation task, one training reference given for every item and the prompt
  itself as the answer (generation_probes.py).

The ``ceiling`` is ``metadata.baseline_ceiling`` in the task YAML (default 0.70): generated task data whose
BoW baseline scores above it leaks its label through wording (tests/test_baselines.py).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from medbench import baseline_probes as probes
from medbench.errors import MedbenchError

DEFAULT_CEILING = 0.70
LEAD_SENTENCES = 3
_OPTION_LINE = re.compile(r"^([A-Z])[.)]\s+(.*)$")


@dataclass
class BaselineResult:
    task: str
    metric: str
    majority: float | None = None
    bow_lr: float | None = None
    rule2: float | None = None
    lead: float | None = None
    char_lr: float | None = None
    num_rule: float | None = None
    answer_only: float | None = None
    constant: float | None = None
    copy: float | None = None
    ceiling: float = DEFAULT_CEILING
    n_train: int = 0
    n_test: int = 0
    method: str = ""  # how bow_lr scored: "classify", "per-option" or "" (no labels)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------- metrics
def score(metric: str, gold: list[int], pred: list[int], n_choices: int) -> float:
    """The task's primary metric from gold and predicted choice indices (index 1 = positive class for f1)."""
    from sklearn.metrics import accuracy_score, f1_score

    if metric == "acc":
        return float(accuracy_score(gold, pred))
    if metric == "f1":
        return float(f1_score(gold, pred, pos_label=1, average="binary", zero_division=0))
    if metric == "macro_f1":
        return float(f1_score(gold, pred, labels=list(range(n_choices)), average="macro", zero_division=0))
    raise MedbenchError(f"no baseline scorer for metric {metric!r}", "baselines support acc, f1 and macro_f1")


# ---------------------------------------------------------------------------------------------- task data
@dataclass
class _Split:
    texts: list[str]
    gold: list[int]
    choices: list[list[str]]
    docs: list[dict]


def _split(task: Any, docs: Any) -> _Split:
    texts, gold, choices, kept = [], [], [], []
    for doc in docs:
        texts.append(task.doc_to_text(doc))
        target = task.doc_to_target(doc)
        options = task.doc_to_choice(doc) if task.config.output_type == "multiple_choice" else []
        if options and not isinstance(target, int):
            target = options.index(str(target))
        gold.append(target)
        choices.append([str(c) for c in options])
        kept.append(doc)
    return _Split(texts, gold, choices, kept)


def _options(prompt: str, letters: list[str], text_choices: bool = False) -> tuple[str, list[str]] | None:
    """(question, option texts) when the prompt lists every choice letter as an ``A. text`` line; with
    ``text_choices``, choices that are the options' own text (``doc_to_choice: "{{choices}}"``) are the options
    and the whole prompt is the question."""
    if text_choices and letters and not all(_OPTION_LINE.match(f"{c}. x") for c in letters):
        return prompt, list(letters)
    found: dict[str, str] = {}
    question_lines = []
    for line in prompt.splitlines():
        match = _OPTION_LINE.match(line.strip())
        if match and match.group(1) in letters and match.group(1) not in found:
            found[match.group(1)] = match.group(2)
        elif not found:
            question_lines.append(line)
    if set(found) != set(letters):
        return None
    return "\n".join(question_lines), [found[letter] for letter in letters]


# ------------------------------------------------------------------------------------------------ models
def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)


def _pick_c(features, labels, groups=None) -> float:
    """C from 5-fold cross-validated log-loss on the train split (grouped by question for per-option rows)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score

    smallest = min(Counter(labels).values())
    if smallest < 2:
        return 1.0
    folds = GroupKFold(n_splits=5) if groups is not None else StratifiedKFold(min(5, smallest), shuffle=True,
                                                                              random_state=0)
    best, best_c = None, 1.0
    for c in (0.1, 1.0, 10.0, 100.0):
        model = LogisticRegression(C=c, max_iter=5000)
        loss = cross_val_score(model, features, labels, cv=folds, groups=groups, scoring="neg_log_loss").mean()
        if best is None or loss > best:
            best, best_c = loss, c
    return best_c


def bow_classify(train: _Split, test: _Split) -> list[int]:
    from sklearn.linear_model import LogisticRegression

    vectorizer = _vectorizer()
    x_train = vectorizer.fit_transform(train.texts)
    model = LogisticRegression(C=_pick_c(x_train, train.gold), max_iter=5000).fit(x_train, train.gold)
    return [int(p) for p in model.predict(vectorizer.transform(test.texts))]


def _pair_features(vectorizer, questions: list[str], options: list[list[str]]):
    import numpy as np
    from scipy import sparse

    rows_q = vectorizer.transform([q for q, opts in zip(questions, options) for _ in opts])
    rows_o = vectorizer.transform([o for opts in options for o in opts])
    overlap = rows_q.multiply(rows_o).tocsr()
    cosine = np.asarray(overlap.sum(axis=1))
    return sparse.hstack([rows_o, overlap, sparse.csr_matrix(cosine)]).tocsr()


def bow_per_option(train: _Split, test: _Split, text_choices: bool = False) -> list[int] | None:
    """Per-option scoring for MCQ prompts; None when a prompt does not list its options (``_options``)."""
    from sklearn.linear_model import LogisticRegression

    parsed = {}
    for name, split in (("train", train), ("test", test)):
        items = [_options(text, letters, text_choices) for text, letters in zip(split.texts, split.choices)]
        if not items or any(item is None for item in items):
            return None
        parsed[name] = items
    vectorizer = _vectorizer()
    vectorizer.fit([q for q, _ in parsed["train"]] + [o for _, opts in parsed["train"] for o in opts])
    x_train = _pair_features(vectorizer, [q for q, _ in parsed["train"]], [opts for _, opts in parsed["train"]])
    y_train = [int(i == g) for (_, opts), g in zip(parsed["train"], train.gold) for i in range(len(opts))]
    groups = [n for n, (_, opts) in enumerate(parsed["train"]) for _ in opts]
    model = LogisticRegression(C=_pick_c(x_train, y_train, groups), max_iter=5000).fit(x_train, y_train)
    x_test = _pair_features(vectorizer, [q for q, _ in parsed["test"]], [opts for _, opts in parsed["test"]])
    scores = model.decision_function(x_test)
    preds, start = [], 0
    for _, opts in parsed["test"]:
        block = scores[start:start + len(opts)]
        preds.append(int(block.argmax()))
        start += len(opts)
    return preds


def two_word_rule(train: _Split, test: _Split) -> list[int]:
    """The best depth-2 tree over word/bigram presence: a two-feature rule a reviewer would try first."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.tree import DecisionTreeClassifier

    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True, min_df=2)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(vectorizer.fit_transform(train.texts), train.gold)
    return [int(p) for p in tree.predict(vectorizer.transform(test.texts))]


def _lead(text: str, k: int = LEAD_SENTENCES) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    return " ".join(s.strip() for s in sentences[:k])


# ---------------------------------------------------------------------------------------------- per task
def _fixed_labels(split: _Split) -> bool:
    """True when every document has the same choices and they are not just letters (a label set)."""
    first = split.choices[0] if split.choices else []
    return bool(first) and all(c == first for c in split.choices)


@dataclass
class TaskPredictions:
    """Each baseline's answer per test document (index = lm-eval's doc_id), so that a baseline can be scored on
    exactly the test items a model was scored on, not only on the whole split."""

    task: str
    metric: str
    n_choices: int = 0
    gold: list[int] = field(default_factory=list)
    preds: dict[str, list[int]] = field(default_factory=dict)  # "majority", "bow_lr", "rule2", probes: choice indices
    values: dict[str, list[float]] = field(default_factory=dict)  # "lead": the metric's value per document
    n_train: int = 0
    n_test: int = 0
    method: str = ""
    note: str = ""

    def score(self, name: str, indices: list[int] | None = None) -> float | None:
        """Baseline ``name`` on the test documents ``indices`` (default: all), with the task's metric."""
        if name in self.values:
            values = self.values[name]
            chosen = [values[i] for i in indices] if indices is not None else values
            return sum(chosen) / len(chosen)
        if name not in self.preds:
            return None
        chosen = indices if indices is not None else range(len(self.gold))
        return score(self.metric, [self.gold[i] for i in chosen], [self.preds[name][i] for i in chosen],
                     self.n_choices)


def task_predictions(entry: Any, task: Any, *, with_rule2: bool = False, with_probes: bool = False
                     ) -> TaskPredictions:
    """The baselines' answers on the loaded ``task``'s test split (``entry``: its registry entry); ``with_probes``
    adds the shortcut probes (char_lr, num_rule, answer_only)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: these fits are tiny, and threaded BLAS made them 3-10x slower on a busy 2-core machine.
    with threadpool_limits(limits=1):
        return _task_predictions(entry, task, with_rule2, with_probes)


def _task_predictions(entry: Any, task: Any, with_rule2: bool, with_probes: bool = False) -> TaskPredictions:
    out = TaskPredictions(task=entry.name, metric=entry.primary_metric)
    config = task.config
    if not (config.training_split and config.test_split and task.has_training_docs()):
        out.note = "no train/test splits"
        return out
    train, test = _split(task, task.training_docs()), _split(task, task.test_docs())
    out.n_train, out.n_test = len(train.texts), len(test.texts)

    if config.output_type != "multiple_choice":
        if with_probes:
            from medbench.generation_probes import generation_probes

            out.values.update(generation_probes(task, train.docs, test.docs, out.metric))
        if not out.metric.lower().startswith("rouge"):
            out.note = f"no labels to learn ({out.metric} is checked per response)" + \
                ("; a constant answer and the prompt copied" if with_probes else "")
            return out
        reference = entry.metadata.get("reference_field")
        values = []
        for doc in test.docs:
            source = max((v for k, v in doc.items() if k != reference and isinstance(v, str)), key=len, default="")
            values.append(task.process_results(doc, [_lead(source)])[out.metric])
        out.values["lead"] = values
        out.note = f"lead-{LEAD_SENTENCES} sentences of the note"
        return out

    out.n_choices = max(len(c) for c in test.choices)
    out.gold = test.gold
    counts = Counter(train.gold)  # ties go to the higher index: "always yes" is the informative F1 baseline
    majority = max(counts, key=lambda label: (counts[label], label))
    out.preds["majority"] = [majority] * len(test.gold)
    # Lettered options listed in the prompt, else (choices varying per document) the choices' own text.
    preds, text_choices = bow_per_option(train, test), False
    if preds is None and not _fixed_labels(train):
        preds, text_choices = bow_per_option(train, test, text_choices=True), True
    if preds is not None:
        out.method = "per-option"
        if with_probes:
            out.preds["answer_only"] = probes.answer_only(train, test, text_choices)
    elif _fixed_labels(train):
        out.method = "classify"
        preds = bow_classify(train, test)
        if with_rule2:
            out.preds["rule2"] = two_word_rule(train, test)
        if with_probes:
            out.preds["char_lr"] = probes.char_classify(train, test)
            out.preds["num_rule"] = probes.number_rule(train, test)
    else:
        out.note = "choices vary per document and are neither option text nor listed in the prompt"
        return out
    out.preds["bow_lr"] = preds
    return out


def task_baseline(name: str, registry: Any = None) -> BaselineResult:
    from medbench.tasks import build_registry, load_tasks

    registry = registry or build_registry()
    entry = registry.get(name)
    ceiling = float(entry.metadata.get("baseline_ceiling", DEFAULT_CEILING))
    task = load_tasks([name], registry)[name]
    found = task_predictions(entry, task, with_rule2=True, with_probes=True)
    return BaselineResult(task=name, metric=found.metric, majority=found.score("majority"),
                          bow_lr=found.score("bow_lr"), rule2=found.score("rule2"), lead=found.score("lead"),
                          char_lr=found.score("char_lr"), num_rule=found.score("num_rule"),
                          answer_only=found.score("answer_only"), constant=found.score("constant"),
                          copy=found.score("copy"), ceiling=ceiling, n_train=found.n_train, n_test=found.n_test,
                          method=found.method, note=found.note)


def all_baselines(names: list[str] | None = None) -> list[BaselineResult]:
    from medbench.tasks import build_registry

    registry = build_registry()
    names = names or sorted(registry.entries)
    results = []
    for name in names:
        try:
            results.append(task_baseline(name, registry))
        except MedbenchError as exc:
            results.append(BaselineResult(task=name, metric=registry.get(name).primary_metric, note=exc.one_line()))
    return results
