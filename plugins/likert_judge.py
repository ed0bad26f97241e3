"""``likert``: an LLM-as-judge that rates a generated answer 1-5 against the reference.

The judge model (``--judge-option model=REF``, any reference medbench resolves; default the embedded model)
reads the source, the reference and the candidate, and is asked for one digit. The score is the expected
rating under its next-token distribution over "1".."5" (probability-weighted, as in G-Eval), which is
smoother and less tie-prone than the single most likely digit.
"""

from __future__ import annotations

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


class LikertJudge:
    name = "likert"
    description = "1-5 rating by a judge model (--judge-option model=REF), probability-weighted over the digits"

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def _model(self, ref: str | None):
        from medbench.models import resolve_model

        key = ref or ""
        if key not in self._loaded:
            self._loaded[key] = resolve_model(ref)
        return self._loaded[key]

    def _digit_ids(self, tokenizer) -> list[int]:
        ids = []
        for digit in RATINGS:
            pieces = tokenizer.encode(digit, add_special_tokens=False)
            if len(pieces) != 1:
                raise MedbenchError(f"the judge model's tokenizer splits the digit {digit!r} into {len(pieces)} tokens",
                                    "pick a judge model whose tokenizer has single-digit tokens")
            ids.append(pieces[0])
        return ids

    def _text(self, tokenizer, item: dict[str, Any], criteria: str) -> str:
        body = PROMPT.format(prompt=str(item["prompt"]).strip(), reference=str(item["reference"] or "").strip(),
                             prediction=str(item["prediction"] or "").strip(), criteria=criteria)
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                                 add_generation_prompt=True)
        return body + "\nRating:"

    def score(self, items: list[dict[str, Any]], options: dict[str, str]) -> list[float | None]:
        import torch

        loaded = self._model(options.get("model"))
        model, tokenizer = loaded.model, loaded.tokenizer
        digit_ids = self._digit_ids(tokenizer)
        criteria = options.get("criteria") or DEFAULT_CRITERIA
        device = next(model.parameters()).device
        weights = torch.arange(1, len(RATINGS) + 1, dtype=torch.float32)
        scores: list[float | None] = []
        with torch.no_grad():
            for item in items:  # one prompt at a time: prompts differ widely in length
                ids = tokenizer(self._text(tokenizer, item, criteria), return_tensors="pt",
                                add_special_tokens=False).input_ids.to(device)
                logits = model(ids).logits[0, -1, digit_ids].float().cpu()
                scores.append(float((logits.softmax(-1) * weights).sum()))
        return scores


@hookimpl
def register_judges(register):
    register(LikertJudge())
