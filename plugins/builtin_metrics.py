"""Classification metrics over saved samples: accuracy, macro/binary/per-label F1, AUROC and the yes-rate."""

from __future__ import annotations

import json
import math

from medbench import hookimpl
from medbench.leaderboard.stats import accuracy_resampled, binary_f1_resampled, macro_f1_resampled


def accuracy(refs, preds):
    if not refs:
        return float("nan")
    return sum(r == p for r, p in zip(refs, preds)) / len(refs)


def _f1_for(label, refs, preds):
    tp = sum(r == label and p == label for r, p in zip(refs, preds))
    fp = sum(r != label and p == label for r, p in zip(refs, preds))
    fn = sum(r == label and p != label for r, p in zip(refs, preds))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _hashable(value):
    """A label as a set member: a list or mapping (a damaged or unusual sample) by its JSON."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (list, dict)) else value


def macro_f1(refs, preds):
    """Unweighted mean of per-class F1 over the classes present in the references."""
    refs, preds = [_hashable(r) for r in refs], [_hashable(p) for p in preds]
    labels = sorted(set(refs), key=str)
    if not labels:
        return float("nan")
    return sum(_f1_for(label, refs, preds) for label in labels) / len(labels)


def _positive(value):
    # Binary tasks list the negative choice first, so the positive class is index 1 (or True / "yes").
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() == "yes")


def binary_f1(refs, preds):
    """F1 of the positive class; the positive class is 1, True or "yes" (case-insensitive)."""
    return _f1_for(True, [_positive(r) for r in refs], [_positive(p) for p in preds])


def yes_rate(refs, preds):
    """Share of items answered with the positive class (1 / true / yes); an unanswered item is not a "yes".
    Read beside a binary score: an arm that gains by answering "yes" more shows it here."""
    if not preds:
        return float("nan")
    return sum(_positive(p) for p in preds) / len(preds)


def _label_name(sample, index):
    choices = sample.get("choices")
    if isinstance(index, int) and choices and 0 <= index < len(choices):
        return str(choices[index])
    return str(index)


def per_label_f1(samples):
    """F1 of each reference class, named by its choice label (``per_label_f1:nurse``)."""
    refs = [s.get("gold") for s in samples]
    preds = [s.get("pred") for s in samples]
    names = {}
    for sample in samples:
        names.setdefault(sample.get("gold"), _label_name(sample, sample.get("gold")))
    return {names[label]: _f1_for(label, refs, preds) for label in sorted(names, key=str)}


def roc_auc(labels, scores):
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) identity; ties count one half."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    if not positives or not negatives:
        return float("nan")
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auroc(samples):
    """AUROC of P(positive choice) from the per-choice log-likelihoods (softmax over choices).

    Only loglikelihood-scored binary samples carry the scores; otherwise the metric does not apply (NaN).
    """
    labels, scores = [], []
    for sample in samples:
        logliks = sample.get("logliks")
        if not logliks or len(logliks) != 2:
            return float("nan")
        top = max(logliks)
        weights = [math.exp(x - top) for x in logliks]
        scores.append(weights[1] / sum(weights))
        labels.append(_positive(sample.get("gold")))
    return roc_auc(labels, scores)


@hookimpl
def register_metrics(register):
    register("accuracy", accuracy, description="share of predictions equal to the reference",
             resampled=accuracy_resampled)
    register("macro_f1", macro_f1, description="mean per-class F1 over the reference classes",
             resampled=macro_f1_resampled)
    register("f1", binary_f1, description="F1 of the positive class (1 / true / yes)", resampled=binary_f1_resampled)
    register("yes_rate", yes_rate, description="share of items answered with the positive class (no direction: "
             "read it beside the score)")
    register("per_label_f1", per_label_f1, needs="samples", description="F1 of each reference class")
    register("auroc", auroc, needs="samples",
             description="area under the ROC curve of P(positive choice); loglikelihood mode, binary tasks")
