"""Cohen's kappa over a record's saved (reference, prediction) pairs, computed by scikit-learn."""

import math


def cohen_kappa(references, predictions):
    """Agreement of predictions with references beyond chance: 1 perfect, 0 chance level, below 0 worse than chance.

    Unlike accuracy, a model that always gives the same answer scores 0 however skewed the labels are. When
    kappa is undefined (references and predictions all one same label) it counts as 0.
    """
    if not references:
        return math.nan
    from sklearn.metrics import cohen_kappa_score

    # Labels as text, so that a missing prediction (None) is just one more wrong label.
    return float(cohen_kappa_score([str(r) for r in references], [str(p) for p in predictions],
                                   replace_undefined_by=0.0))
