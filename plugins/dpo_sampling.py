"""Sampled DPO pairs (``--pairs sampled``, medbench_plugins.dpo's docstring): the starting model answers each
prompt in the context it is scored in; the gold answer is chosen and one of its wrong, complete answers of
comparable length is rejected. ``sampled_pairs`` counts the prompts offered, the pairs kept and each reason a
prompt gave none, so a checkpoint's metrics say what DPO trained on."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from medbench.errors import MedbenchError
from medbench.trainers.hf import Formatter, target_delimiter
from medbench.trainingdata import TrainingExample

if TYPE_CHECKING:
    from medbench_plugins.dpo import DPOOptions

SAMPLE_BATCH = 8  # prompts per generate() call when sampling rejected answers


def names_gold(sample: str, example: TrainingExample) -> bool:
    """Whether a sampled answer names the gold answer as a whole word. Only samples that never do become rejected
    answers, so that a correct answer in other words ("The answer is C.", "Yes.") is never trained against. Option
    letters match in their case ("a" is an article); longer answers match in any case."""
    flags = re.IGNORECASE if len(example.answer.strip()) > 1 else 0
    return re.search(rf"(?<!\w){re.escape(example.answer.strip())}(?!\w)", sample, flags) is not None


@dataclass
class Sample:
    text: str  # the answer, whitespace-trimmed
    complete: bool  # the model ended it (EOS, or a line break for a one-line answer) within the token budget


def stop_token_ids(model, tokenizer) -> set[int]:
    """The tokens that end a sampled answer: the tokenizer's EOS and the model's generation EOS (a chat model's
    end-of-turn token)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids if i is not None}


def token_length(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def finish_sample(ids: list[int], stops: set[int], tokenizer, one_line: bool) -> Sample:
    """Cut generated ids where the answer ends; a sample that never ends within its budget is incomplete."""
    end = next((i for i, token in enumerate(ids) if token in stops), None)
    text = tokenizer.decode(ids[:end] if end is not None else ids, skip_special_tokens=True)
    if one_line:
        stripped = text.lstrip()
        if "\n" in stripped:
            return Sample(stripped.split("\n", 1)[0].strip(), True)
    return Sample(text.strip(), end is not None)


def sample_answers(model, formatter: Formatter, examples: list[TrainingExample],
                   options: DPOOptions) -> list[list[Sample]]:
    """``samples_per_prompt`` sampled answers for each example's prompt (module docstring)."""
    from medbench.progress import progress_bar

    tokenizer = formatter.tokenizer
    stops = stop_token_ids(model, tokenizer)
    answers: list[list[Sample]] = []
    with progress_bar(f"dpo · sampling {options.samples_per_prompt} answers per prompt", len(examples)) as advance:
        for start in range(0, len(examples), SAMPLE_BATCH):
            answers.extend(_sample_batch(model, formatter, examples[start:start + SAMPLE_BATCH], options, stops))
            advance(len(examples[start:start + SAMPLE_BATCH]))
    return answers


def _sample_batch(model, formatter: Formatter, batch_examples: list[TrainingExample], options: DPOOptions,
                  stops: set[int]) -> list[list[Sample]]:
    import torch

    tokenizer = formatter.tokenizer
    ids = [formatter.prompt_ids(example) for example in batch_examples]
    budget = options.sample_max_new_tokens or math.ceil(
        options.length_ratio_max * max(token_length(tokenizer, e.completion) for e in batch_examples))
    one_line = ["\n" not in example.answer.strip() for example in batch_examples]
    # One-line answers end at a line break: stop generating there rather than run on to the budget.
    stop_early = {"stop_strings": ["\n"], "tokenizer": tokenizer} if all(one_line) else {}
    batch = tokenizer.pad({"input_ids": ids}, padding_side="left", return_tensors="pt").to(model.device)
    with torch.no_grad():
        # min_new_tokens: without its chat template an instruct model often ends at once, which rejects nothing.
        # top_p/top_k set here: the model's generation_config would otherwise truncate the distribution its own way.
        output = model.generate(**batch, do_sample=True, temperature=options.sample_temperature, top_p=1.0, top_k=0,
                                max_new_tokens=budget, min_new_tokens=1,
                                num_return_sequences=options.samples_per_prompt,
                                pad_token_id=tokenizer.pad_token_id, **stop_early)
    generated = output[:, batch["input_ids"].shape[1]:].tolist()
    k = options.samples_per_prompt
    return [[finish_sample(row, stops, tokenizer, one_line[i]) for row in generated[i * k:(i + 1) * k]]
            for i in range(len(batch_examples))]


def pick_rejected(example: TrainingExample, samples: list[Sample], tokenizer,
                  options: DPOOptions, grade=None) -> tuple[str | None, str]:
    """The rejected completion for one example, or None and why there is none: among the complete, non-empty
    samples that are not correct (they never name the gold answer, and ``grade(doc, answer)``, the task's own
    scoring, does not count them correct), the one closest in token length to the chosen answer, if its length
    ratio lies in the band."""
    complete = [s for s in samples if s.complete and s.text]
    if not complete:
        return None, "no complete answer"
    wrong = [s for s in complete if not names_gold(s.text, example)
             and not (grade is not None and grade(example.doc, s.text))]
    if not wrong:
        return None, "every answer was correct"
    chosen = token_length(tokenizer, example.completion)
    candidates = [target_delimiter(example) + s.text for s in wrong]
    lengths = [token_length(tokenizer, c) for c in candidates]
    best = min(range(len(candidates)), key=lambda i: abs(lengths[i] - chosen))  # ties: the first sampled
    if not options.length_ratio_min <= lengths[best] / max(chosen, 1) <= options.length_ratio_max:
        return None, "no answer within the length band"
    return candidates[best], ""


def sampled_pairs(model, formatter: Formatter, examples: list[TrainingExample], options: DPOOptions,
                  seed: int, grade=None, tally: dict[str, int] | None = None) -> list[TrainingExample]:
    """Sample the starting model on each prompt and reject one of its wrong answers (module docstring; ``grade``:
    medbench.trainingdata.answer_grader's for the task); prompts without a suitable sample give no pair, and the
    counts of each reason are reported, and written into ``tally`` (pairs_offered, pairs_kept,
    pairs_dropped_<reason>) for the checkpoints' metrics."""
    import torch

    torch.manual_seed(seed)
    pairs, dropped = [], {}
    for example, samples in zip(examples, sample_answers(model, formatter, examples, options)):
        rejected, reason = pick_rejected(example, samples, formatter.tokenizer, options, grade)
        if rejected is None:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            pairs.append(replace(example, rejected=[rejected]))
    if tally is not None:
        tally.update(pairs_offered=len(examples), pairs_kept=len(pairs),
                     **{"pairs_dropped_" + reason.replace(" ", "_"): count for reason, count in dropped.items()})
    summary = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
    if not pairs:
        raise MedbenchError(f"none of {len(examples)} prompts gave a sampled pair ({summary}; "
                            f"{options.samples_per_prompt} samples each, length band {options.length_ratio_min}-"
                            f"{options.length_ratio_max})", "raise --samples-per-prompt, widen --length-ratio-min/"
                            "--length-ratio-max, pass --chat-template true for a chat model, or pass --pairs task")
    if dropped:
        warnings.warn(f"sampled pairs: {len(pairs)} of {len(examples)} prompts kept; dropped {summary} "
                      f"(length band {options.length_ratio_min}-{options.length_ratio_max})", stacklevel=2)
    return pairs
