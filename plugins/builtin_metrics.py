"""Classification metrics over (reference, prediction) lists."""

from __future__ import annotations

from medbench import hookimpl


def accuracy(refs, preds):
    if not refs:
        return float("nan")
    return sum(r == p for r, p in zip(refs, preds)) / len(refs)


def _f1_for(label, refs, preds):
    tp = sum(r == label and p == label for r, p in zip(refs, preds))
    fp = sum(r != label and p == label for r, p in zip(refs, preds))
    fn = sum(r == label and p != label for r, p in zip(refs, preds))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def macro_f1(refs, preds):
    """Unweighted mean of per-class F1 over the classes present in the references."""
    labels = sorted(set(refs), key=str)
    if not labels:
        return float("nan")
    return sum(_f1_for(label, refs, preds) for label in labels) / len(labels)


def binary_f1(refs, preds):
    """F1 of the positive class; the positive class is 1, True or "yes" (case-insensitive)."""
    def positive(value):
        return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() == "yes")

    return _f1_for(True, [positive(r) for r in refs], [positive(p) for p in preds])


@hookimpl
def register_metrics(register):
    register("accuracy", accuracy, description="share of predictions equal to the reference")
    register("macro_f1", macro_f1, description="mean per-class F1 over the reference classes")
    register("f1", binary_f1, description="F1 of the positive class (1 / true / yes)")
