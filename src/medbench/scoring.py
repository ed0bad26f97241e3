"""Scoring modes for multiple-choice tasks, and rationale demonstrations, as lm-eval task overrides.

``loglikelihood`` is the task as its YAML says: lm-eval's ``multiple_choice``, the highest-likelihood choice
wins. ``generate`` lets the model answer freely and takes the choice out of its text with
:class:`ChoiceAnswerFilter`, so chat models that explain before answering are scored fairly. Rationale
demonstrations (``--fewshot-rationales``) make each few-shot example carry its rationale: the task's
``metadata.rationale_field`` (column ``TASK@Nshot@rationales``), or another document field named instead
(``--fewshot-rationales rationale_clinician``: column ``TASK@Nshot@rationales=rationale_clinician``), for a task
with several rationale writers.

Both are applied through lm-eval's own override mechanism (a task referenced from a group with overrides),
so the variant is an ordinary lm-eval task built from the same YAML and data.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from lm_eval.api.filter import Filter

from medbench.errors import MedbenchError
from medbench.answers import INVALID
from medbench.generation import GenerationOptions, generation_overrides

SCORING_MODES = ("loglikelihood", "generate")
DEFAULT_RATIONALE_SHOTS = 3
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # a document field: it becomes part of a column's name
RATIONALE_GEN_TOKENS = 320  # room for a few sentences of reasoning, then "Answer: X"


def _render(spec: Any, doc: dict[str, Any]) -> Any:
    """Resolve an lm-eval ``doc_to_*`` spec the way lm-eval does: a list, a field name, or a Jinja template."""
    from lm_eval.utils import apply_template

    if callable(spec):
        return spec(doc)
    if isinstance(spec, (list, int)):
        return spec
    if isinstance(spec, str):
        if spec in doc:
            return doc[spec]
        rendered = apply_template(spec, doc)
        if rendered.isdigit():
            return int(rendered)
        if rendered.startswith("[") and rendered.endswith("]"):
            import ast

            try:
                return ast.literal_eval(rendered)
            except (ValueError, SyntaxError):
                return rendered
        return rendered
    raise MedbenchError(f"cannot read {spec!r} from a document", "use a list, a field name or a Jinja template")


def choice_labels(config: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    labels = _render(config.get("doc_to_choice"), doc)
    if isinstance(labels, dict):  # lm-eval allows {label: text}
        labels = list(labels.values())
    return [str(label) for label in labels]


def choice_index(target: Any, choices: list[str]) -> Any:
    """A multiple-choice answer as lm-eval reads it: a choice's text (pubmedqa's "yes") is that choice's index;
    an index (or a list of them) is kept."""
    return choices.index(target) if isinstance(target, str) and target in choices else target


def gold_index(config: dict[str, Any], doc: dict[str, Any]) -> Any:
    """The answer as the index of its choice: lm-eval scores a generating task with choices by ``choices[gold]``."""
    return choice_index(_render(config.get("doc_to_target"), doc), choice_labels(config, doc))


def gold_label(config: dict[str, Any], doc: dict[str, Any]) -> str:
    target = _render(config.get("doc_to_target"), doc)
    labels = choice_labels(config, doc)
    return labels[target] if isinstance(target, int) else str(target)


# A label merely mentioned counts as the answer only in a reply this short: in reasoning ("no stroke, no
# diabetes, ...") the first "no" is a negation, and reading it would score an unanswered rationale as "no".
BARE_MENTION_WORDS = 12


def _word(label: str) -> str:
    return rf"(?<![A-Za-z0-9]){re.escape(label)}(?![A-Za-z0-9])"


def extract_choice(text: str, labels: list[str], option_texts: list[str] | None = None) -> str | None:
    """The choice a free-text answer names, or None.

    A list of the options ("Answer (yes or no): no", "A, B, C or D") is ignored first. Then, in order: the last
    "answer is X" / "Answer: X"; a label the answer starts with ("B." / "(B)" / "yes,");
    for letter labels, an option's text quoted in the answer; the first option named ("option B"); in a short
    answer only (BARE_MENTION_WORDS), the first label mentioned. Single-letter labels match case-sensitively (so
    the article "a" is not read as option A); word labels ignore case.
    """
    if not isinstance(text, str) or not labels:
        return None
    text = text.strip()
    by_length = sorted(labels, key=len, reverse=True)

    def pattern(label: str) -> str:
        return _word(label) if len(label) == 1 else f"(?i:{_word(label)})"

    def canonical(found: str) -> str:
        return next((label for label in labels if label.lower() == found.lower()), found)

    # A list of the options ("(yes or no)", "A, B, C or D", "yes/no") is the question's cue, echoed, not an
    # answer: blank it out before looking for the label the answer names.
    any_label = "(?:" + "|".join(pattern(label) for label in by_length) + ")"
    text = re.sub(rf"{any_label}(?:\s*[,/]\s*{any_label})*(?:\s*,?\s+or\s+|\s*/\s*){any_label}", " ", text)

    stated = [(m.start(), label) for label in by_length
              for m in re.finditer(rf"(?i:answer)(?:\s+is)?\s*[:\-]?\s*\(?\**{pattern(label)}", text)]
    if stated:
        return canonical(max(stated)[1])
    short = len(text.split()) <= BARE_MENTION_WORDS
    for label in by_length:
        # "A 50-year-old..." starts with the article, not option A, and "No stroke, ..." with a negation: a
        # leading letter, or a leading word in a long reply, needs a delimiter.
        after = r"(?:[.):,;!]|\s*$|\s*\n)" if len(label) == 1 or not short else ""
        if re.match(rf"\(?\**{pattern(label)}{after}", text):
            return label
    if option_texts and len(option_texts) == len(labels):
        lowered = text.lower()
        hits = [(lowered.find(str(option).lower()), labels[i]) for i, option in enumerate(option_texts)
                if str(option).strip() and str(option).lower() in lowered]
        if hits:
            return min(hits)[1]
    mentions = []
    for label in by_length:
        # A lone capital followed by a lower-case word is the article ("A patient"), unless named as an option.
        named = rf"(?i:(?<=option )|(?<=choice )){re.escape(label)}(?![A-Za-z0-9])"
        if not short:
            mention = named
        elif len(label) == 1:
            mention = rf"{named}|{_word(label)}(?!\s+[a-z0-9])"
        else:
            mention = pattern(label)
        match = re.search(mention, text)
        if match:
            mentions.append((match.start(), -len(label), label))
    return canonical(min(mentions)[2]) if mentions else None


class ChoiceAnswerFilter(Filter):
    """lm-eval filter: free text -> the choice label it names (or ``[invalid]``)."""

    def __init__(self, doc_to_choice: Any = None, option_field: str | None = "choices", **_: Any) -> None:
        self.doc_to_choice = doc_to_choice
        self.option_field = option_field

    def apply(self, resps, docs):
        out = []
        for responses, doc in zip(resps, docs):
            labels = choice_labels({"doc_to_choice": self.doc_to_choice}, doc)
            options = doc.get(self.option_field) if self.option_field else None
            options = options if isinstance(options, list) else None
            # Every response: with --repeats they are voted on afterwards (medbench.generation).
            out.append([extract_choice(text, labels, options) or INVALID for text in responses or [""]])
        return out


def _rationale_target(config: dict[str, Any], field: str, mode: str) -> Callable[[dict[str, Any]], str]:
    def target(doc: dict[str, Any]) -> str:
        label = gold_label(config, doc)
        rationale = str(doc.get(field) or "").strip()
        # Answer first when the choice is scored right after the prompt; reasoning first when generating.
        if mode == "loglikelihood":
            return f"{label}\nExplanation: {rationale}"
        return f"{rationale} So the answer is {label}."

    return target


def checked_rationales(value: Any) -> bool | str:
    """``fewshot_rationales`` as given: true/false, or the document field the demonstrations' rationales come from."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if not isinstance(value, str) or not FIELD_NAME.fullmatch(value):
        raise MedbenchError(f"--fewshot-rationales {str(value)[:60]!r} is neither true/false nor a document field name",
                            "pass --fewshot-rationales alone (the task's rationale_field) or a field such as "
                            "rationale_clinician (letters, digits and _)")
    return value


def demonstration_field(config: dict[str, Any], fewshot_rationales: bool | str) -> str | None:
    """The document field rationale demonstrations read: the task's ``metadata.rationale_field`` for true, the
    field named otherwise, None for none (or a task without one)."""
    if not fewshot_rationales:
        return None
    return (config.get("metadata") or {}).get("rationale_field") if fewshot_rationales is True else fewshot_rationales


def variant_overrides(name: str, config: dict[str, Any], mode: str, fewshot_rationales: bool | str,
                      generation: GenerationOptions | None = None) -> dict[str, Any]:
    """The lm-eval config overrides that turn task ``name`` into the requested variant ({} for none); with
    ``generation``, a generating task also gets its generation controls (medbench.generation)."""
    if mode not in SCORING_MODES:
        raise MedbenchError(f"unknown scoring mode {mode!r}", f"use --mode {' or --mode '.join(SCORING_MODES)}")
    overrides: dict[str, Any] = {}
    multiple_choice = config.get("output_type") == "multiple_choice"
    if mode == "generate" and multiple_choice:
        # A task with rationales may be answered rationale-first (a model trained on them, or shown them): give
        # every model on it the same room to reason before the answer is extracted.
        reasons = fewshot_rationales or bool((config.get("metadata") or {}).get("rationale_field"))
        overrides.update(
            output_type="generate_until",
            doc_to_target=lambda doc: gold_index(config, doc),
            generation_kwargs={"until": ["\n\n", "Question:"], "do_sample": False,
                               "max_gen_toks": RATIONALE_GEN_TOKENS if reasons else 32},
            filter_list=[{"name": "choice", "filter": [
                {"function": ChoiceAnswerFilter, "doc_to_choice": config.get("doc_to_choice")},
                {"function": "take_first"}]}],
            metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        )
    if fewshot_rationales:
        field = demonstration_field(config, fewshot_rationales)
        if not field:
            raise MedbenchError(f"task {name!r} has no rationale_field, so --fewshot-rationales has nothing to show",
                                "set metadata.rationale_field in its YAML, or leave out --fewshot-rationales")
        if not multiple_choice:
            raise MedbenchError(f"--fewshot-rationales needs a multiple-choice task; {name!r} is "
                                f"{config.get('output_type')}", "leave out --fewshot-rationales for this task")
        overrides["fewshot_config"] = {
            "sampler": "default",
            "doc_to_target": _rationale_target(config, field, mode),
            # Only examples that have a rationale can demonstrate one.
            "process_docs": lambda docs: docs.filter(lambda doc: bool(str(doc.get(field) or "").strip())),
        }
    if generation is not None:
        overrides.update(generation_overrides({"task": name, **config, **overrides}, generation))
    return overrides


def scored_output_type(config: dict[str, Any], mode: str) -> str | None:
    """The output type a task (its YAML config) is scored as under ``mode``: generate mode makes a multiple-choice
    task generate."""
    multiple_choice = config.get("output_type") == "multiple_choice"
    return "generate_until" if mode == "generate" and multiple_choice else config.get("output_type")


def column_key(task: str, shots: int, variant: str, chat: bool, user_data_hash: str | None, split: str) -> str:
    """A record's key, its leaderboard column: the task and how it was scored (shots, variant, chat template), and
    where the data is the user's (--data-file) rather than the task's own, that data (``@data-HASH``): a record on
    other data never replaces one on the task's own, and a column never mixes the two. ``@validation`` last."""
    data = f"@data-{user_data_hash[:8]}" if user_data_hash else ""
    return (task + (f"@{shots}shot" if shots else "") + variant + ("@chat" if chat else "") + data
            + ("@validation" if split == "validation" else ""))


def variant_suffix(config: dict[str, Any], mode: str, fewshot_rationales: bool | str,
                   generation: GenerationOptions | None = None) -> str:
    """Record-key suffix: variants, and runs with other generation controls, are separate leaderboard columns.
    ``generation`` is what the task uses of them (GenerationOptions.applied). Rationale demonstrations from a field
    other than the task's own name it (``@rationales=FIELD``): two writers never share a column."""
    suffix = "@gen" if mode == "generate" and config.get("output_type") == "multiple_choice" else ""
    field = demonstration_field(config, fewshot_rationales)
    own = fewshot_rationales is True or field == (config.get("metadata") or {}).get("rationale_field")
    rationales = "" if not fewshot_rationales else "@rationales" if own else f"@rationales={field}"
    return suffix + rationales + (generation.suffix() if generation else "")
