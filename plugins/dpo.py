"""Direct preference optimisation with TRL's DPOTrainer: LoRA (default), QLoRA or full.

Pairs come from the task (gold answer chosen, a wrong choice rejected), from a prompt/chosen/rejected jsonl file, or
from sampling the starting model (``pairs: sampled``; the study's set-up: the gold answer is chosen, one of the
model's own answers is rejected).

Sampled rejections are real, complete answers of a length comparable to the chosen one, so that DPO cannot separate
a pair by length alone:

* each prompt gets ``samples_per_prompt`` samples, generated until the model ends its answer: at its end-of-sequence
  token, or, when the gold answer is a single line (a label, an option), at the first line break (on a raw prompt
  a model goes on to write the next question there). A sample still running at ``sample_max_new_tokens`` is
  incomplete and never used; by default that budget is ``length_ratio_max`` times the longest chosen answer in
  the batch (in tokens), since a longer sample would fall outside the band anyway;
* a sample that names the gold answer as a whole word, or that the task's own scoring counts correct (its
  ``process_results``: the aliases and paraphrase rules the evaluation accepts), is never rejected: a correct answer
  in other words, such as "The answer is C." or "TB" for tuberculosis, must not be trained against;
* of the samples left, the one whose token length is closest to the chosen answer's is rejected; a pair whose
  length ratio rejected/chosen falls outside [``length_ratio_min``, ``length_ratio_max``] (default 0.5-2.0) is
  dropped, and how many prompts gave no pair, and why, is reported as a warning.

The starting model can be a fine-tuned checkpoint, e.g. the SFT checkpoint of the same cell (DPO after SFT). An
adapter checkpoint is merged into its base first and a fresh LoRA adapter is trained on top, so the reference model
(the disabled adapter with LoRA; a frozen copy, or precomputed log-probs, for a full fine-tune) is always the
starting model itself: DPO after SFT is regularised towards the SFT model. Each checkpoint records it as
``reference_model`` in its train metrics.
"""

from __future__ import annotations

import copy
import json
import random
import math
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.records import read_regular_text
from medbench.training import CheckpointInfo, TrainRequest
from medbench.trainingdata import TrainingExample, answer_grader
from medbench.trainers.hf import (Formatter, PreparedRun, TrlOptions, capped, check_trainable, checkpoint_kind,
                                  checkpoint_recorder, load_policy, lora_config, plan_check_with, require_positive,
                                  target_delimiter, training_arguments)
from medbench.trainers.shared_prompt import with_shared_prompts

PAIR_SOURCES = ("task", "file", "sampled")
LOSS_TYPES = ("sigmoid", "ipo", "robust")
PAIR_FIELDS = ("prompt", "chosen", "rejected")
LEARNING_RATES = {"lora": 5e-5, "qlora": 5e-5, "full": 1e-6}
SAMPLE_BATCH = 8  # prompts per generate() call when sampling rejected answers


@dataclass
class DPOOptions(TrlOptions):
    pairs: str = "task"  # task | file | sampled
    pairs_file: str | None = None  # jsonl of {"prompt", "chosen", "rejected"} objects, for --pairs file
    beta: float = 0.1
    loss_type: str = "sigmoid"  # sigmoid | ipo | robust
    label_smoothing: float = 0.0  # robust only: the assumed share of flipped preference labels, in [0, 0.5)
    precompute_ref_log_probs: bool = True  # one reference pass over the pairs before training, not one per step
    share_prompt: bool = True  # one row per pair, its prompt run once (medbench.trainers.shared_prompt)
    # --pairs sampled (module docstring): answers drawn per prompt; the wrong, complete one closest in token length
    # to the chosen answer is rejected
    samples_per_prompt: int = 4
    # new tokens per sample; None: length_ratio_max x the batch's longest chosen answer (a longer one is out of band)
    sample_max_new_tokens: int | None = None
    sample_temperature: float = 1.0
    # the band of token-length ratios rejected/chosen a sampled pair must lie in; pairs outside it are dropped
    length_ratio_min: float = 0.5
    length_ratio_max: float = 2.0

    def __post_init__(self):
        super().__post_init__()
        if self.pairs not in PAIR_SOURCES:
            raise MedbenchError(f"unknown pairs source {self.pairs!r}",
                                f"pass --pairs with one of {', '.join(PAIR_SOURCES)}")
        if (self.pairs == "file") != (self.pairs_file is not None):
            raise MedbenchError("--pairs file and --pairs-file go together",
                                "pass both (--pairs file --pairs-file PAIRS.jsonl), or neither")
        if self.loss_type not in LOSS_TYPES:
            raise MedbenchError(f"unknown loss_type {self.loss_type!r}",
                                f"pass --loss-type with one of {', '.join(LOSS_TYPES)}")
        if self.label_smoothing and self.loss_type != "robust":
            # TRL no longer applies label smoothing to the sigmoid loss; it would be silently ignored.
            raise MedbenchError(f"label_smoothing applies only to the robust loss, not {self.loss_type}",
                                "pass --loss-type robust, or drop --label-smoothing")
        if not 0 <= self.label_smoothing < 0.5:
            raise MedbenchError(f"--label-smoothing must lie in [0, 0.5), got {self.label_smoothing}",
                                "pass --label-smoothing 0.1, for example")
        require_positive(self, "beta", "samples_per_prompt", "sample_max_new_tokens", "sample_temperature",
                         "length_ratio_min", "length_ratio_max")
        if self.length_ratio_min > 1 or self.length_ratio_max < 1:
            raise MedbenchError(f"the length band [{self.length_ratio_min}, {self.length_ratio_max}] must contain 1 "
                                "(a rejected answer as long as the chosen one)",
                                "pass e.g. --length-ratio-min 0.5 --length-ratio-max 2.0")


# A pair is a TrainingExample whose completion is the chosen answer and whose only rejection is the rejected one,
# so that examples_hash covers exactly what was trained on.

def task_pairs(examples: list[TrainingExample], seed: int, task: str) -> list[TrainingExample]:
    """Gold answer chosen, one wrong choice rejected: drawn per document from the seed, so it does not depend on
    the order the examples come in."""
    if not all(example.rejected for example in examples):
        raise MedbenchError(f"task {task!r} has no wrong choices to reject (it is not multiple-choice)",
                            "pass --pairs sampled, or --pairs file --pairs-file PAIRS.jsonl")
    for example in examples:
        if any(rejected.strip() == example.completion.strip() for rejected in example.rejected):
            raise MedbenchError(f"task {task!r}, training document {example.doc_id + 1}: a wrong choice is the same "
                                f"text as the gold answer ({example.answer!r}), so a pair would have chosen equal to "
                                "rejected", "make the document's options distinct, or pass --pairs file with your own "
                                "pairs")
    return [replace(example, rejected=[random.Random(f"{seed}:{example.doc_id}").choice(example.rejected)])
            for example in examples]


def file_pairs(path_text: str) -> list[TrainingExample]:
    """Pairs from a jsonl file; text is used verbatim (without a chat template the completion follows the prompt
    directly). ``doc_id`` is the line number."""
    path = Path(path_text).expanduser()
    try:
        lines = read_regular_text(path).split("\n")  # JSON lines end at "\n" only: U+2028 may sit in a string
    except FileNotFoundError:
        raise MedbenchError(f"pairs file {path} does not exist", "check the path given to --pairs-file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise MedbenchError(f"pairs file {path} cannot be read ({reason})", "give --pairs-file a JSON lines file") \
            from None
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # ValueError: bad JSON and 4300+ digit numbers
            raise MedbenchError(f"{path} line {number} is not valid JSON", "write one JSON object per line") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(key), str) and row[key].strip()
                                                for key in PAIR_FIELDS):
            raise MedbenchError(f"{path} line {number} lacks a non-empty prompt, chosen or rejected string",
                                "give every line the three fields as text")
        if row["chosen"].strip() == row["rejected"].strip():
            raise MedbenchError(f"{path} line {number}: chosen and rejected are the same text",
                                "a pair needs a rejected answer that differs from the chosen one; fix or drop the line")
        pairs.append(TrainingExample(doc_id=number, prompt=row["prompt"], completion=row["chosen"],
                                     rejected=[row["rejected"]], answer=row["chosen"].strip()))
    if not pairs:
        raise MedbenchError(f"pairs file {path} holds no pairs", "write one prompt/chosen/rejected object per line")
    return pairs


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
        output = model.generate(**batch, do_sample=True, temperature=options.sample_temperature,
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
                  seed: int, grade=None) -> list[TrainingExample]:
    """Sample the starting model on each prompt and reject one of its wrong answers (module docstring; ``grade``:
    medbench.trainingdata.answer_grader's for the task); prompts without a suitable sample give no pair, and the
    counts of each reason are reported."""
    import torch

    torch.manual_seed(seed)
    pairs, dropped = [], {}
    for example, samples in zip(examples, sample_answers(model, formatter, examples, options)):
        rejected, reason = pick_rejected(example, samples, formatter.tokenizer, options, grade)
        if rejected is None:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            pairs.append(replace(example, rejected=[rejected]))
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


def fixed_pairs(request: TrainRequest, options: DPOOptions) -> list[TrainingExample]:
    if options.pairs == "file":
        return capped(file_pairs(options.pairs_file), options, f"pairs file {options.pairs_file}", request.seed)
    return task_pairs(capped(request.training_examples(), options, f"the training data of task {request.task!r}",
                             request.seed),
                      request.seed, request.task)


def with_reference_progress(trainer_class):
    """``trainer_class`` (TRL's DPOTrainer) with a progress bar over its reference pass, which runs inside
    ``__init__`` and takes minutes on a CPU (TRL's own bar is tqdm, switched off). Hooks TRL's
    ``_precompute_ref_logps``/``compute_ref_log_probs``; a TRL without them trains the same, without the bar."""
    from medbench.progress import progress_bar

    class DPOTrainerWithProgress(trainer_class):
        _advance_reference = None

        def _precompute_ref_logps(self, dataset, name, batch_size):
            batches = math.ceil(len(dataset) / max(batch_size, 1))
            with progress_bar(f"dpo · reference log-probs ({name}, batches)", batches) as advance:
                self._advance_reference = advance
                try:
                    return super()._precompute_ref_logps(dataset, name, batch_size)
                finally:
                    self._advance_reference = None

        def compute_ref_log_probs(self, *args, **kwargs):
            result = super().compute_ref_log_probs(*args, **kwargs)
            if self._advance_reference is not None:
                self._advance_reference(1)
            return result

    return DPOTrainerWithProgress


def pairs_trained(pairs: list[TrainingExample], options: DPOOptions, seed: int) -> list[TrainingExample]:
    """With --max-steps, the pairs those steps can reach (a seeded sample, in order): the reference pass runs over
    every pair before training, which for 2 steps of 180 pairs was 490 s of a 25-minute CPU run."""
    from medbench.training import world_size

    reach = options.max_steps * options.train_batch_size * options.gradient_accumulation_steps * world_size()
    if options.max_steps <= 0 or reach >= len(pairs):
        return pairs
    return [pairs[i] for i in sorted(random.Random(seed).sample(range(len(pairs)), reach))]


def prepare(request: TrainRequest) -> PreparedRun:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    options: DPOOptions = request.config
    # Pairs that need no model come first, so that a bad pairs file fails before a model loads.
    pairs = [] if options.pairs == "sampled" else fixed_pairs(request, options)
    loaded = load_policy(request, options)
    formatter = Formatter(loaded.tokenizer, options.chat_template, request.model_ref, options.system_prompt)
    formatter.require_scored_prefix(request.model_ref, "DPO")  # TRL's DPO tokenizes the pairs itself
    if options.pairs == "sampled":
        examples = capped(request.training_examples(), options, f"the training data of task {request.task!r}",
                          request.seed)
        grade = answer_grader(request.task, request.task_metadata or None)  # correct as the evaluation reads it
        pairs = sampled_pairs(loaded.model, formatter, examples, options, request.seed, grade)
    pairs = pairs_trained(pairs, options, request.seed)
    dataset = Dataset.from_list([{"prompt": formatter.prompt(pair),
                                  "chosen": formatter.completion(pair.completion),
                                  "rejected": formatter.completion(pair.rejected[0])} for pair in pairs])
    needs_ref_copy = options.method == "full" and not options.precompute_ref_log_probs
    recorder = checkpoint_recorder(request.model_ref)
    trainer_class = with_shared_prompts(DPOTrainer) if options.share_prompt else DPOTrainer
    trainer = with_reference_progress(trainer_class)(
        model=loaded.model,
        ref_model=copy.deepcopy(loaded.model) if needs_ref_copy else None,
        args=training_arguments(DPOConfig, request, options, LEARNING_RATES[options.method], beta=options.beta,
                                loss_type=[options.loss_type], label_smoothing=options.label_smoothing,
                                precompute_ref_log_probs=options.precompute_ref_log_probs),
        train_dataset=dataset,
        processing_class=loaded.tokenizer, peft_config=lora_config(options), callbacks=[recorder],
    )
    prepared = trainer.train_dataset
    chosen, rejected = prepared["chosen_ids"], prepared["rejected_ids"]
    check_trainable([len(p) + max(len(c), len(r)) for p, c, r in zip(prepared["prompt_ids"], chosen, rejected)],
                    [min(len(c), len(r)) for c, r in zip(chosen, rejected)], pairs, options.max_length)
    return PreparedRun(trainer, recorder, pairs, checkpoint_kind(options), f"dpo · {request.task}",
                       resume_from=request.resume_from, model_ref=request.model_ref,
                       auto_batch_size=options.auto_batch_size,
                       reference_forward=not options.precompute_ref_log_probs)


class DPO:
    name = "dpo"
    description = "direct preference optimisation (TRL DPOTrainer): pairs from the task, a file, or model samples"
    config_class = DPOOptions
    supports_resume = True  # medbench train --resume: continues from the run's last complete checkpoint

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        checkpoints = (prepared := prepare(request)).run()
        shared = getattr(prepared.trainer, "shared_prompt_share", lambda: None)()  # the share of packed forwards
        for checkpoint in checkpoints:  # the reference is the starting model, adapters merged in (module docstring)
            checkpoint.metrics = {**checkpoint.metrics, "reference_model": request.model_ref,
                                  **({} if shared is None else {"shared_prompt_share": shared})}
        return checkpoints

    def plan_check(self, task: str, options: dict, data_files: dict | None = None) -> str | None:
        """Why this step cannot run on ``task``'s data (too few examples, no wrong choices for task pairs, a bad
        pairs file), or None. Sampled pairs need the model, so only their example count is checked."""
        def check(config: DPOOptions, load_examples):
            if config.pairs == "file":
                capped(file_pairs(config.pairs_file), config, f"pairs file {config.pairs_file}")
                return
            examples = capped(load_examples(), config, f"the training data of task {task!r}")
            if config.pairs == "task":
                task_pairs(examples, 0, task)

        return plan_check_with(DPOOptions, self.name, task, options, data_files, check)


@hookimpl
def register_trainers(register):
    register(DPO())
