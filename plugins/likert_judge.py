"""``likert``: an LLM-as-judge that rates a generated answer 1-5 against the reference.

The judge model is any reference on any backend (``--judge-model REF``, ``--judge-model openai:NAME
--judge-base-url URL``; default the embedded model). It reads the source, the reference and the candidate, and is
asked for one digit, judged by the task's rubric (``metadata.judge_rubric``) or a general one.

Two methods. ``expected`` (the default where the judge gives log-likelihoods): the expected rating under the
judge's probabilities of "1".."5" (probability-weighted, as in G-Eval), smoother and less tie-prone than one digit.
``vote`` (the default for a judge that only generates, or with ``--judge-samples K``): K answers sampled at
``temperature`` (0.7 when K > 1), the most frequent rating wins; a tie scores the mean of the tied ratings.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from medbench import hookimpl
from medbench.errors import MedbenchError

RATINGS = ("1", "2", "3", "4", "5")
DEFAULT_CRITERIA = ("faithful to the source (no invented facts), covers the reference's key facts, and is "
                    "concise and clear")
PROMPT = """You are grading a clinical text written by an assistant.

Source:
{prompt}

Reference answer:
{reference}

Candidate answer:
{prediction}

Rate the candidate from 1 (unusable) to 5 (as good as the reference). A good answer is {criteria}.
Reply with one digit."""
# The judge's own options; the rest (base_url, timeout, max_retries, ...) go to the judge model's backend.
JUDGE_KEYS = ("model", "backend", "samples", "temperature", "method", "criteria", "rubric")
METHODS = ("expected", "vote")


def first_rating(text: str) -> str | None:
    """The first rating digit standing alone in a judge's answer (not part of '10' or '3.5')."""
    match = re.search(r"(?<![\d.])([1-5])(?![\d.])", text or "")
    return match.group(1) if match else None


def majority(ratings: list[int]) -> float | None:
    if not ratings:
        return None
    counts = Counter(ratings).most_common()
    tied = [rating for rating, count in counts if count == counts[0][1]]
    return sum(tied) / len(tied)


class LikertJudge:
    name = "likert"
    description = ("1-5 rating by a judge model on any backend (--judge-model REF): probability-weighted over the "
                   "digits, or a majority vote over --judge-samples K answers")

    def __init__(self) -> None:
        self._opened: dict[tuple, Any] = {}

    def _backend(self, options: dict[str, str]):
        from medbench.backends import open_model

        backend_options = {k: v for k, v in options.items() if k not in JUDGE_KEYS}
        key = (options.get("model"), options.get("backend"), tuple(sorted(backend_options.items())))
        if key not in self._opened:
            self._opened[key] = open_model(options.get("model"), options.get("backend"), backend_options)
        return self._opened[key]

    def check(self, options: dict[str, str]) -> None:
        """Before the scored model generates anything: the judge model opens (a wrong reference is one line now,
        not after minutes of generation) and the settings read; kept open for score()."""
        self._settings(options, self._backend(options))

    def _settings(self, options: dict[str, str], backend: Any) -> tuple[str, int, float]:
        try:
            samples = int(options.get("samples") or 1)
            temperature = float(options["temperature"]) if options.get("temperature") else (0.7 if samples > 1 else 0.0)
        except ValueError:
            raise MedbenchError("judge option samples/temperature is not a number",
                                "pass --judge-samples K (an integer) and temperature=T (a number)") from None
        if samples < 1 or temperature < 0:
            raise MedbenchError(f"--judge-samples {samples} / temperature {temperature} out of range",
                                "pass --judge-samples 1 or more and a temperature of 0 or more")
        method = options.get("method") or ("vote" if samples > 1 or backend.loglikelihood_refusal() else "expected")
        if method not in METHODS:
            raise MedbenchError(f"unknown judge method {method!r}", f"pass method={' or method='.join(METHODS)}")
        if method == "expected" and (refusal := backend.loglikelihood_refusal()):
            raise MedbenchError(f"judge method 'expected' needs log-likelihoods, and {backend.ref}: {refusal}",
                                "pass --judge-samples K (a majority vote over generated ratings)")
        return method, samples, temperature

    def _text(self, lm: Any, backend: Any, item: dict[str, Any], criteria: str) -> str:
        body = PROMPT.format(prompt=str(item["prompt"]).strip(), reference=str(item["reference"] or "").strip(),
                             prediction=str(item["prediction"] or "").strip(), criteria=criteria)
        if backend.chat_template:
            return lm.apply_chat_template([{"role": "user", "content": body}], add_generation_prompt=True)
        return body + "\nRating:"

    def score(self, items: list[dict[str, Any]], options: dict[str, str]) -> list[float | None]:
        from lm_eval.api.instance import Instance

        backend = self._backend(options)
        method, samples, temperature = self._settings(options, backend)
        criteria = options.get("criteria") or options.get("rubric") or DEFAULT_CRITERIA
        lm = backend.lm
        texts = [self._text(lm, backend, item, criteria) for item in items]
        if method == "expected":
            requests = [Instance("loglikelihood", {}, (text, digit), i) for text in texts for i, digit in
                        enumerate(RATINGS)]
            logliks = [result[0] for result in lm.loglikelihood(requests)]
            scores: list[float | None] = []
            for start in range(0, len(logliks), len(RATINGS)):
                row = logliks[start:start + len(RATINGS)]
                top = max(row)
                weights = [math.exp(value - top) for value in row]
                scores.append(sum((i + 1) * w for i, w in enumerate(weights)) / sum(weights))
            return scores
        gen_kwargs = {"until": ["\n\n"], "max_gen_toks": 16, "temperature": temperature, "do_sample": temperature > 0}
        requests = [Instance("generate_until", {}, (text, dict(gen_kwargs)), k) for text in texts for k in range(samples)]
        answers = lm.generate_until(requests)
        return [majority([int(r) for r in (first_rating(a) for a in answers[start:start + samples]) if r])
                for start in range(0, len(answers), samples)]

    def describe(self, options: dict[str, str]) -> dict[str, Any]:
        """The judge's identity for the record: its model (as its backend identifies it), method and rubric."""
        backend = self._backend(options)
        method, samples, temperature = self._settings(options, backend)
        identity = {k: v for k, v in backend.model_info.items() if k in ("backend", "ref", "server",
                                                                         "served_model_id", "weights_hash")}
        return {"model": identity, "method": method, "samples": samples, "temperature": temperature,
                "rubric": options.get("criteria") or options.get("rubric") or DEFAULT_CRITERIA}


@hookimpl
def register_judges(register):
    register(LikertJudge())
