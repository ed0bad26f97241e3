"""Checks of a task's configuration and documents before any model work, whatever loader built its docs.

A YAML's metrics, aggregations, primary metric, repeats and splits are checked when the task is read or built;
each scored document of a multiple-choice task must name one of its choices, and (for data from local files) give
a value for every field its templates read. Each problem is one line naming the task, the row and the fix.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any

from medbench.console import short_repr
from medbench.errors import MedbenchError

# lm-eval scores every choice of every document (one request each): a few hundred covers real label sets
# (intent or ICD-chapter classification), far beyond the 2-10 of MCQ, and keeps a runaway template bounded.
MAX_CHOICES = 500
# A YAML's `repeats` multiplies every request, and every answer is kept until the item is voted on: the same
# bound as --repeats (medbench.generation.MAX_REPEATS, not imported here: it pulls in lm-eval at task listing).
MAX_TASK_REPEATS = 1000
SPLIT_KEYS = ("test_split", "validation_split", "training_split", "fewshot_split")


def _where(entry: Any) -> str:
    return f"task {entry.name!r} ({entry.path})"


def _listed(values: list[Any], most: int = 12) -> str:
    shown = ", ".join(short_repr(v) for v in values[:most])
    return shown + (f", ... ({len(values)} in all)" if len(values) > most else "")


# --- the YAML, before lm-eval builds the task ---------------------------------------------------------------------

def _lm_eval_registries() -> tuple[Any, Any]:
    from lm_eval.api.registry import aggregation_registry, metric_registry

    if not len(metric_registry):
        import lm_eval.api.metrics  # noqa: F401  registers lm-eval's metrics and aggregations
    return metric_registry, aggregation_registry


def check_task_config(entry: Any, runs_code: bool) -> None:
    """The YAML's metric names, aggregations, primary metric, repeats and fixed choices; ``runs_code``: the task
    may run code (a trusted folder, or --trust-task-code)."""
    from medbench.metrics import metric_registry as medbench_metrics

    config, metadata = entry.config, entry.metadata
    wanted = metadata.get("medbench_metrics") or []
    known = medbench_metrics() if wanted else {}
    unknown = [name for name in wanted if name not in known]
    if unknown:  # a misspelt metric fails here, before any model is loaded or scored
        raise MedbenchError(f"{_where(entry)} names unknown metric(s) {', '.join(unknown)} in "
                            "metadata.medbench_metrics", f"use registered metrics ({', '.join(sorted(known))}), or "
                            "install the plugin that provides it")
    _check_metric_list(entry, runs_code)
    _check_primary_metric(entry)
    repeats = config.get("repeats")
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int)
                                or not 1 <= repeats <= MAX_TASK_REPEATS):
        raise MedbenchError(f"{_where(entry)} sets repeats: {short_repr(repeats)}; medbench runs 1 to "
                            f"{MAX_TASK_REPEATS} per item",
                            "set repeats to a whole number from 1 to 20 or so, or leave it out")
    choices = config.get("doc_to_choice")
    if isinstance(choices, (list, dict)) and len(choices) > MAX_CHOICES:
        raise MedbenchError(f"{_where(entry)} lists {len(choices)} choices in doc_to_choice, more than medbench scores "
                            f"per item ({MAX_CHOICES})", f"give at most {MAX_CHOICES} choices")


def _check_metric_list(entry: Any, runs_code: bool) -> None:
    metrics, aggregations = _lm_eval_registries()
    own_results = entry.config.get("process_results") is not None  # the task's code scores: any name goes
    for i, metric in enumerate(entry.config.get("metric_list") or []):
        if not isinstance(metric, dict):
            continue
        name, field = metric.get("metric"), f"metric_list[{i}]"
        aggregation = metric.get("aggregation")
        if isinstance(aggregation, str) and not aggregation.startswith("!function ") \
                and aggregation not in aggregations:
            raise MedbenchError(f"{_where(entry)}: {field}.aggregation is {short_repr(aggregation)}, which lm-eval "
                                "does not know", f"use one of {', '.join(sorted(aggregations))}")
        if not isinstance(name, str) or name.startswith("!function ") or (name in metrics
                                                                           and not metric.get("hf_evaluate")):
            continue
        valid = f"use one of lm-eval's metrics ({', '.join(sorted(metrics))})"
        if not runs_code and not own_results:  # lm-eval would fetch and run a Hugging Face `evaluate` script
            raise MedbenchError(f"{_where(entry)}: {field}.metric is {short_repr(name)}, not a metric lm-eval "
                                "registers, and a folder medbench does not trust may not load an `evaluate` metric "
                                "(its script is code)", f"{valid}, or pass --trust-task-code if you trust "
                                f"{entry.path.parent}")
        if aggregation is None:  # lm-eval has no default aggregation for it and fails with "KeyError: None"
            raise MedbenchError(f"{_where(entry)}: {field}.metric is {short_repr(name)}, which lm-eval does not "
                                "register, and it gives no aggregation", f"{valid}, or give its aggregation (one of "
                                f"{', '.join(sorted(aggregations))})")


def declared_metrics(entry: Any) -> list[str] | None:
    """The metrics a task's record can hold, as its YAML declares them; None when code names them."""
    from lm_eval.api.registry import DEFAULT_METRIC_REGISTRY

    config = entry.config
    listed = config.get("metric_list")
    if listed is None:
        names = list(DEFAULT_METRIC_REGISTRY.get(config.get("output_type") or "generate_until", []))
    else:
        names = [m.get("metric") for m in listed if isinstance(m, dict)]
    if any(not isinstance(n, str) or n.startswith("!function ") for n in names):
        return None
    return list(dict.fromkeys([*names, *(entry.metadata.get("medbench_metrics") or [])]))


def _check_primary_metric(entry: Any) -> None:
    primary = entry.metadata.get("primary_metric")
    known = declared_metrics(entry)
    if primary is None or known is None or primary in known or str(primary).startswith(("judge:", "pass@")):
        return  # judge:NAME and pass@k come from --judge and --repeats
    raise MedbenchError(f"{_where(entry)}: metadata.primary_metric is {short_repr(primary)}, not one of its metrics "
                        f"({', '.join(known)})", "set metadata.primary_metric to one of them, or add the metric to "
                        "metric_list or metadata.medbench_metrics")


def check_fewshot(task: Any, name: str, num_fewshot: int | None, rationales: bool | str = False) -> None:
    """--num-fewshot beyond the few-shot split is one line naming both numbers, not 'Sample larger than
    population' from deep inside lm-eval; ``rationales`` (demonstrations keep only the documents that have one):
    a field no few-shot document fills is one line naming it."""
    from medbench.tasks import eval_split

    shots = task.config.num_fewshot if num_fewshot is None else num_fewshot
    if not shots:
        return
    docs = task.fewshot_docs()
    split = task.config.fewshot_split or task.config.training_split or task.config.validation_split \
        or eval_split(task)  # lm-eval's last resort: examples from the split being scored
    if docs is None:
        raise MedbenchError(f"task {name!r} has no split to draw {shots} few-shot example(s) from",
                            "pass --num-fewshot 0, or give the task a fewshot_split / training_split")
    # lm-eval draws one extra when the examples come from the split being scored, then drops the item itself.
    same = split == eval_split(task)
    available = len(docs) - (1 if same else 0)
    if rationales and not len(docs):
        field = rationales if isinstance(rationales, str) else (task.config.metadata or {}).get("rationale_field")
        raise MedbenchError(f"task {name!r} has no rationale in field {field!r} in its few-shot split {split!r}",
                            "pass --fewshot-rationales with a field its documents fill (alone: the task's "
                            "metadata.rationale_field), or give a file with that field")
    if shots > available:
        raise MedbenchError(f"--num-fewshot {shots} is more than the {max(available, 0)} example(s) task {name!r} "
                            f"can draw from its few-shot split {split!r}",
                            f"pass --num-fewshot {max(available, 0)} or less, or give a larger split with "
                            f"--data-file {name}:{split}=PATH")


# --- the documents ----------------------------------------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _unconditional_names(node: Any, out: set[str], guarded: bool = False) -> set[str]:
    """Names a Jinja template reads on every render: not inside an if, a conditional expression, and/or, a test
    (`is none`) or a `default` filter, where the template itself allows for a missing value."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        if node.ctx == "load" and not guarded:
            out.add(node.name)
        return out
    if isinstance(node, (nodes.If, nodes.CondExpr, nodes.And, nodes.Or, nodes.Test)) or \
            (isinstance(node, nodes.Filter) and node.name in ("default", "d")):
        guarded = True
    for child in node.iter_child_nodes():
        _unconditional_names(child, out, guarded)
    return out


def template_fields(task: Any) -> set[str]:
    """The document fields a task's doc_to_text / doc_to_target / doc_to_choice read on every document."""
    features = set(getattr(task, "features", None) or ())
    return template_reads(task, features) & features


def template_reads(task: Any, features: set[str]) -> set[str]:
    """The names a task's doc_to_text / doc_to_target / doc_to_choice templates read on every document, whether
    or not the data (columns ``features``) has them; Jinja's own globals (range, dict, ...) left out."""
    from jinja2 import Environment, TemplateSyntaxError, meta

    fields: set[str] = set()
    for spec in (task.config.doc_to_text, task.config.doc_to_target, task.config.doc_to_choice):
        if not isinstance(spec, str):
            continue
        if spec in features or spec.isidentifier():  # a field's name: lm-eval reads the field itself
            fields.add(spec)
            continue
        try:
            tree = Environment().parse(spec)  # parsed only, never rendered here
        except TemplateSyntaxError:
            continue
        fields |= _unconditional_names(tree, set()) & meta.find_undeclared_variables(tree)
    return fields - set(Environment().globals)


def _names_a_choice(gold: Any, choices: list[str]) -> bool:
    """lm-eval's reading of a multiple-choice target: an int indexes the choices, a str is one of them, a list
    (several right answers) holds indices."""
    if isinstance(gold, list):
        return bool(gold) and all(isinstance(g, numbers.Integral) and 0 <= g < len(choices) for g in gold)
    if isinstance(gold, numbers.Integral):
        return 0 <= gold < len(choices)
    return isinstance(gold, str) and gold in choices


def _multiple_input(task: Any, doc: dict[str, Any]) -> bool:
    """winogrande's shape: doc_to_text gives the gold index into the choices (the contexts), doc_to_target the
    shared continuation. lm-eval sets ``multiple_input`` only after reading its first document's target, where
    the construction check runs, so it is read from the document as lm-eval then reads it."""
    if getattr(task, "multiple_input", 0):
        return True
    if getattr(task.config, "doc_to_choice", None) is None:
        return False
    text = task.doc_to_text(doc)
    return isinstance(text, int) and not isinstance(text, bool)


def document_problem(task: Any, doc: dict[str, Any], fields: set[str], multiple_choice: bool
                     ) -> tuple[str, str] | None:
    """(problem, fix) for one document, or None."""
    for field in sorted(fields):
        if _missing(doc.get(field)):
            return (f"has no value for {field!r}, which the task's templates read (the row leaves it out, or it is "
                    "null or NaN)", f"give that row its {field}, or drop the row; a template that allows a missing "
                    f"value tests it ({{% if {field} %}}...{{% endif %}})")
    if not multiple_choice:
        return None
    choices = task.doc_to_choice(doc)
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        return (f"gives the choices {short_repr(choices, 80)}, not a list of texts",
                "make doc_to_choice give a list of strings for every row")
    if len(choices) > MAX_CHOICES:
        return (f"has {len(choices)} choices, more than medbench scores per item ({MAX_CHOICES})",
                f"give each row at most {MAX_CHOICES} choices")
    multiple_input = _multiple_input(task, doc)
    gold = task.doc_to_text(doc) if multiple_input else task.doc_to_target(doc)
    if _names_a_choice(gold, choices):
        return None
    what = "the context index" if multiple_input else "the answer"
    return (f"has {what} {short_repr(gold)}, which is not among its {len(choices)} choices ({_listed(choices)})",
            "fix that row's answer so it names one of the choices, as an index from 0 or as the choice's text")


def _check_sources(entry: Any, task: Any) -> tuple[set[str], bool]:
    """(the fields every row must give, whether targets are checked). Published datasets (hub, lm-eval's) are
    scored as published, so their nulls stay; a user's or medbench's local rows must give every field read."""
    return (set() if _published(entry, task) else template_fields(task)), \
        entry.config.get("output_type") == "multiple_choice"


def _published(entry: Any, task: Any) -> bool:
    from medbench.task_facts import data_source

    return data_source(entry, task).get("kind") in ("hub", "lm-eval")


def _raise_for(entry: Any, task: Any, index: int, doc: dict[str, Any], fields: set[str], multiple_choice: bool) -> None:
    from medbench.tasks import eval_split, template_refusal

    try:
        problem = document_problem(task, doc, fields, multiple_choice)
    except MedbenchError:
        raise
    except Exception as exc:
        refused = template_refusal(entry, exc)
        if refused is not None:
            raise refused from None
        return  # lm-eval meets the same error when it scores, and names it there
    if problem is not None:
        raise MedbenchError(f"task {entry.name!r}: row {index + 1} of its {eval_split(task)!r} split {problem[0]}",
                            problem[1])


def check_documents(task: Any, entry: Any, limit: int | None) -> None:
    """Every document that will be scored (the first ``limit``), before the model is loaded. A published data
    set's row whose answer is not among its choices is scored as stock lm-eval scores it (wrong, with a warning),
    so medbench's scores stay comparable with lm-eval's on real benchmarks; a user's or medbench's rows stop."""
    fields, multiple_choice = _check_sources(entry, task)
    if not fields and not multiple_choice:
        return
    import warnings

    published, odd, repeated = _published(entry, task), [], []
    for index, doc in enumerate(itertools.islice(task.eval_docs, limit)):
        if not published:
            _raise_for(entry, task, index, doc, fields, multiple_choice)
        try:
            problem = None if not published else document_problem(task, doc, fields, multiple_choice)
            twice = _repeated_choice(task, doc) if multiple_choice else None
        except Exception:  # lm-eval meets the same error when it scores, and names it there
            problem = twice = None
        odd += [(index, problem[0])] if problem else []
        repeated += [(index, twice)] if twice else []
    if odd:
        warnings.warn(f"task {entry.name!r}: {len(odd)} row(s) of its published {task.config.test_split!r} data are "
                      f"scored wrong whatever the model answers, as lm-eval scores them (first: row {odd[0][0] + 1} "
                      f"{odd[0][1]})", stacklevel=2)
    if repeated:  # real benchmarks carry a few; lm-eval scores them, so medbench does too, and says so
        warnings.warn(f"task {entry.name!r}: {len(repeated)} row(s) list a choice more than once (first: row "
                      f"{repeated[0][0] + 1}, {repeated[0][1]}); equal choices score alike and the first copy wins, "
                      "so a gold on a later copy is never reached: scored as lm-eval scores them", stacklevel=2)


def check_cluster_field(task: Any, entry: Any, limit: int | None) -> None:
    """metadata.cluster_field must name a field every scored row fills: otherwise the leaderboard quietly treats
    the items as independent. The task's own rows stop (a typo in the YAML); a user's file or a hub split warns."""
    field = (entry.metadata or {}).get("cluster_field")
    if not field:
        return
    docs = list(itertools.islice(task.eval_docs, limit))
    lacking = [i for i, doc in enumerate(docs) if not isinstance(doc, dict) or doc.get(field) in (None, "")]
    if not lacking:
        return
    from medbench.task_facts import data_source
    from medbench.tasks import eval_split

    problem = (f"task {entry.name!r}: metadata.cluster_field names {field!r}, but {len(lacking)} of the {len(docs)} "
               f"scored rows of its {eval_split(task)!r} split have no such field (first: row {lacking[0] + 1})")
    if data_source(entry, task).get("kind") == "bundled":
        raise MedbenchError(f"{problem} ({entry.path})", "name the document field holding each item's cluster "
                            "(normalize may add it), fill it in every row, or leave cluster_field out")
    import warnings

    warnings.warn(f"{problem}: its CIs and tests treat every item as independent", stacklevel=2)


def _repeated_choice(task: Any, doc: dict[str, Any]) -> str | None:
    choices = task.doc_to_choice(doc)
    if isinstance(choices, list) and len(set(map(str, choices))) < len(choices):
        return short_repr(next(c for c in choices if choices.count(c) > 1))
    return None
