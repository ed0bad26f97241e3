"""Score a placeholder answer before the model loads, so that a task whose scoring fails does so in seconds.

lm-eval calls a task's metric functions only after every request has run: a ``metric_list`` option the function
refuses (``exact_match`` with ``ignore_space: true``) fails an hours-long generation run at its end. medbench runs
lm-eval's own ``process_results`` on the first item with the answer a model could give (an empty generation, equal
log-likelihoods) and names the task and the option. A task's own ``process_results`` code is not run here: a
placeholder answer may be one it never sees, and refusing a task that scores real answers would be worse.
"""

from __future__ import annotations

import warnings
from typing import Any

from medbench.errors import MedbenchError


def placeholder_results(task: Any, doc: dict[str, Any]) -> list[Any]:
    """The results lm-eval hands ``process_results`` for ``doc``, shaped as its output type makes them."""
    kind = task.OUTPUT_TYPE
    if kind == "generate_until":
        return [""]
    if kind == "loglikelihood":
        return [(-1.0, False)]
    if kind == "loglikelihood_rolling":
        return [-1.0]
    requests = len(task.doc_to_choice(doc))  # multiple_choice: one log-likelihood per choice
    if "acc_mutual_info" in getattr(task, "_metric_fn_list", {}):
        requests *= 2  # and one unconditional one per choice
    return [(-1.0, False)] * requests


def check_scoring(task: Any, name: str, entry: Any) -> None:
    """Raise one line when lm-eval's scoring of ``task`` fails on a placeholder answer to its first item."""
    if callable(getattr(task.config, "process_results", None)) or not len(task.eval_docs):
        return
    doc = task.eval_docs[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a metric's warning about one item is not the task's problem
            task.process_results(doc, placeholder_results(task, doc))
    except MedbenchError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        options = {item.get("metric"): sorted(set(item) - {"metric", "aggregation", "higher_is_better"})
                   for item in (task.config.metric_list or []) if isinstance(item, dict)}
        given = "; ".join(f"{metric}: {', '.join(keys)}" for metric, keys in options.items() if keys)
        raise MedbenchError(f"task {name!r} ({entry.path}) cannot score an answer to its first item, before any "
                            f"request runs: {type(exc).__name__}: {detail}"
                            + (f" (its metric_list options: {given})" if given else ""),
                            "give each metric in metric_list only options its function takes (exact_match: "
                            "ignore_case, ignore_punctuation, ignore_numbers, regexes_to_ignore)") from None
