"""Reading generated answers: reasoning blocks stripped, repeated samples voted on, pass@k.

Used by medbench.generation (lm-eval filters that strip reasoning and vote) and medbench.evaluation (the
samples.jsonl rows of a generating task and the pass@k metrics of repeated samples).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from lm_eval.api.filter import Filter

INVALID = "[invalid]"  # an extracted answer that names no choice (medbench.scoring)

# (opening, closing) delimiters of reasoning that precedes the answer, as reasoning models emit them.
REASONING_DELIMITERS = (
    ("<think>", "</think>"),  # DeepSeek-R1, Qwen3, QwQ, Phi-4-reasoning, SmolLM3
    ("<thinking>", "</thinking>"),
    ("<reasoning>", "</reasoning>"),
    ("<thought>", "</thought>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),  # OpenThoughts / Bespoke-Stratos
    ("<seed:think>", "</seed:think>"),  # Seed-OSS
    ("◁think▷", "◁/think▷"),  # Kimi
    ("[THINK]", "[/THINK]"),  # Magistral
    ("<|START_THINKING|>", "<|END_THINKING|>"),  # Command A reasoning
)
# gpt-oss (harmony), when special tokens are kept: an analysis channel, then the final one. Its <|end|> also ends
# ordinary turns (Phi-3), so it only closes an analysis block, never stands alone.
_HARMONY = re.compile(r"<\|channel\|>analysis<\|message\|>.*?(?:<\|end\|>|\Z)|(?:<\|start\|>assistant)?"
                      r"<\|channel\|>final<\|message\|>", re.S)


def _delimiter_patterns() -> list[tuple[re.Pattern, re.Pattern, re.Pattern]]:
    out = []
    for opening, closing in REASONING_DELIMITERS:
        o, c = re.escape(opening), re.escape(closing)
        out.append((re.compile(f"{o}.*?{c}", re.S | re.I),  # a complete block
                    re.compile(f"{o}.*\\Z", re.S | re.I),  # an unterminated block: thinking cut off by the budget
                    re.compile(f"\\A.*{c}", re.S | re.I)))  # a closing delimiter alone: the opening was in the prompt
    return out


_PATTERNS = _delimiter_patterns()


def strip_reasoning(text: Any) -> Any:
    """``text`` without its reasoning blocks: complete ones, one left open at the end (the model ran out of
    tokens while thinking, so there is no answer), and everything before a closing delimiter whose opening was
    in the prompt (chat templates that start the turn with ``<think>``). Non-text is returned unchanged."""
    if not isinstance(text, str):
        return text
    stripped = text
    for block, unterminated, orphan_close in _PATTERNS:
        stripped = block.sub("", stripped)
        stripped = unterminated.sub("", stripped)
        stripped = orphan_close.sub("", stripped)
    stripped = _HARMONY.sub("", stripped)
    return stripped.strip() if stripped != text else text


class StripReasoningFilter(Filter):
    """lm-eval filter: every response without its reasoning blocks (see strip_reasoning)."""

    def apply(self, resps, docs):
        return [[strip_reasoning(r) for r in responses] for responses in resps]


class MajorityVoteFilter(Filter):
    """lm-eval filter: a document's responses -> the answer most of them give (see majority_vote)."""

    def apply(self, resps, docs):
        return [majority_vote(list(responses)) for responses in resps]


def _vote_key(answer: Any) -> Any:
    return " ".join(answer.split()).lower() if isinstance(answer, str) else json.dumps(answer, default=str)


def majority_vote(answers: list[Any]) -> Any:
    """The answer given most often (text compared without case or extra spaces); a tie goes to the answer
    sampled first. An answer that names nothing (``[invalid]``, empty) does not vote unless none does."""
    voting = [a for a in answers if not (isinstance(a, str) and (not a.strip() or a == INVALID))]
    if not voting:
        return answers[0] if answers else ""
    counts = Counter(_vote_key(a) for a in voting)
    best = max(counts.values())
    return next(a for a in voting if counts[_vote_key(a)] == best)


# ------------------------------------------------------------------------------------------- samples


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021): the probability that at least one of k answers drawn without replacement from n
    samples, c of them correct, is correct: 1 - C(n-c, k) / C(n, k), as a product (no huge binomials)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_ks(n: int) -> list[int]:
    """The k reported for n samples: 1, the powers of two below n, and n."""
    return sorted({1, n, *(2 ** i for i in range(1, max(n - 1, 1).bit_length()) if 2 ** i < n)})


def _pipeline(task: Any, name: str | None) -> Any:
    return next((f for f in getattr(task, "_filters", []) if f.name == name), None)


def annotate_samples(rows: list[dict[str, Any]], raw_samples: list[dict[str, Any]], task: Any, repeats: int,
                     primary: str | None) -> dict[str, dict[str, float | None]]:
    """Complete the samples.jsonl rows of a generating task; return the metrics repeats add (pass@k).

    Every row's ``response`` is the answer without its reasoning (``raw_response`` keeps the text as generated).
    With repeats, a row also lists every sample's ``responses`` and extracted ``answers``, how many ``votes`` the
    majority answer had and each sample's primary metric as the task scores it (``correct`` when the metric is
    0/1 on every item, with the item's pass@k; ``sample_scores`` otherwise); ``pred`` is the majority answer, so
    paired statistics compare one answer per item."""
    if task.config.output_type != "generate_until":
        return {}
    scores: list[list[Any]] = []
    for row, sample in zip(rows, raw_samples):
        raw = list((sample.get("resps") or [[]])[0] or [])
        stripped = [strip_reasoning(text) for text in raw]
        pick = 0
        if repeats > 1:
            pipeline = _pipeline(task, sample.get("filter"))
            answers = stripped
            if pipeline is not None:  # the pipeline's own extraction, without its final vote
                answers = [list(stripped)]
                for step in pipeline.filters[1:-1]:
                    answers = list(step().apply(answers, [sample.get("doc")]))
                answers = list(answers[0])
            vote = majority_vote(answers)
            pick = next((i for i, a in enumerate(answers) if _vote_key(a) == _vote_key(vote)), 0)
            row.update(responses=stripped, votes=sum(_vote_key(a) == _vote_key(vote) for a in answers))
            if answers != stripped:
                row["answers"] = answers
            if primary is not None:
                scores.append([task.process_results(sample.get("doc"), [answer]).get(primary) for answer in answers])
        if raw and stripped[pick] != raw[pick]:
            row["raw_response"] = raw[pick]
        if raw:
            row["response"] = stripped[pick]
            if row["response"] == row.get("pred"):
                del row["response"]
    if not scores or len(scores) != len(rows):
        return {}
    if not all(isinstance(v, (int, float)) and float(v) in (0.0, 1.0) for item in scores for v in item):
        for row, item in zip(rows, scores):  # ROUGE and the like: no pass@k
            row["sample_scores"] = item
        return {}
    per_item: dict[str, list[float]] = {}
    for row, item in zip(rows, scores):
        row["correct"] = [float(v) for v in item]
        for k in pass_ks(len(item)):
            row[f"pass@{k}"] = pass_at_k(len(item), int(sum(item)), k)
            per_item.setdefault(f"pass@{k}", []).append(row[f"pass@{k}"])
    metrics = {}
    for name, values in per_item.items():
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
        metrics[name] = {"value": mean, "stderr": sd / math.sqrt(len(values)) if sd is not None else None}
    return metrics


