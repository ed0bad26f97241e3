"""Direct preference optimisation with TRL's DPOTrainer: LoRA (default), QLoRA or full.

Pairs come from the task (gold answer chosen, a wrong choice rejected), from a prompt/chosen/rejected jsonl file, or
from sampling the starting model and keeping a wrong answer as rejected. With LoRA the reference model is the base
with the adapter disabled; a full fine-tune gets a frozen copy, or none when reference log-probs are precomputed.
"""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.training import CheckpointInfo, TrainRequest
from medbench.trainingdata import TrainingExample
from medbench_plugins._trl_common import (
    Formatter,
    PreparedRun,
    TrlOptions,
    capped,
    check_trainable,
    checkpoint_kind,
    checkpoint_recorder,
    load_policy,
    lora_config,
    require_positive,
    target_delimiter,
    training_arguments,
)

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
    samples_per_prompt: int = 4  # --pairs sampled: answers drawn per prompt; the first wrong one is kept
    sample_max_new_tokens: int = 16
    sample_temperature: float = 1.0

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
            raise MedbenchError(f"label_smoothing must lie in [0, 0.5), got {self.label_smoothing}",
                                "pass --label-smoothing 0.1, for example")
        require_positive(self, "beta", "samples_per_prompt", "sample_max_new_tokens", "sample_temperature")


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
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MedbenchError(f"pairs file {path} does not exist", "check the path given to --pairs-file") from None
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
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
    answers, so that a correct answer in other words ("The answer is C.") is never trained against."""
    return re.search(rf"(?<!\w){re.escape(example.answer)}(?!\w)", sample) is not None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def sample_answers(model, formatter: Formatter, prompts: list[str], options: DPOOptions) -> list[list[str]]:
    """``samples_per_prompt`` sampled answers (their first line) for each prompt."""
    import torch

    tokenizer = formatter.tokenizer
    answers = []
    for start in range(0, len(prompts), SAMPLE_BATCH):
        ids = [formatter.prompt_ids(prompt) for prompt in prompts[start:start + SAMPLE_BATCH]]
        batch = tokenizer.pad({"input_ids": ids}, padding_side="left", return_tensors="pt").to(model.device)
        with torch.no_grad():
            # min_new_tokens: without its chat template an instruct model often ends at once, which rejects nothing.
            output = model.generate(**batch, do_sample=True, temperature=options.sample_temperature,
                                    max_new_tokens=options.sample_max_new_tokens, min_new_tokens=1,
                                    num_return_sequences=options.samples_per_prompt,
                                    pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
        k = options.samples_per_prompt
        answers += [[_first_line(text) for text in texts[i:i + k]] for i in range(0, len(texts), k)]
    return answers


def sampled_pairs(model, formatter: Formatter, examples: list[TrainingExample], options: DPOOptions,
                  seed: int) -> list[TrainingExample]:
    """Sample the starting model on each prompt and keep its first wrong answer as the rejected completion;
    prompts with no non-empty sample that misses the gold answer give no pair."""
    import torch

    torch.manual_seed(seed)
    pairs = []
    for example, samples in zip(examples, sample_answers(model, formatter, [e.prompt for e in examples], options)):
        wrong = next((sample for sample in samples if sample and not names_gold(sample, example)), None)
        if wrong is not None:
            pairs.append(replace(example, rejected=[target_delimiter(example) + wrong]))
    if not pairs:
        raise MedbenchError(f"none of {options.samples_per_prompt} samples on any of {len(examples)} prompts was a "
                            "non-empty wrong answer, so there is nothing to reject",
                            "raise --samples-per-prompt or --sample-temperature, or pass --pairs task")
    return pairs


def fixed_pairs(request: TrainRequest, options: DPOOptions) -> list[TrainingExample]:
    if options.pairs == "file":
        return capped(file_pairs(options.pairs_file), options)
    return task_pairs(capped(request.training_examples(), options), request.seed, request.task)


def prepare(request: TrainRequest) -> PreparedRun:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    options: DPOOptions = request.config
    # Pairs that need no model come first, so that a bad pairs file fails before a model loads.
    pairs = [] if options.pairs == "sampled" else fixed_pairs(request, options)
    loaded = load_policy(request, options)
    formatter = Formatter(loaded.tokenizer, options.chat_template)
    if options.pairs == "sampled":
        pairs = sampled_pairs(loaded.model, formatter, capped(request.training_examples(), options), options,
                              request.seed)
    dataset = Dataset.from_list([{"prompt": formatter.prompt(pair.prompt),
                                  "chosen": formatter.completion(pair.completion),
                                  "rejected": formatter.completion(pair.rejected[0])} for pair in pairs])
    needs_ref_copy = options.method == "full" and not options.precompute_ref_log_probs
    recorder = checkpoint_recorder(request.model_ref)
    trainer = DPOTrainer(
        model=loaded.model,
        ref_model=copy.deepcopy(loaded.model) if needs_ref_copy else None,
        args=training_arguments(DPOConfig, request, options, LEARNING_RATES[options.method], beta=options.beta,
                                loss_type=[options.loss_type], label_smoothing=options.label_smoothing,
                                precompute_ref_log_probs=options.precompute_ref_log_probs),
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        peft_config=lora_config(options),
        callbacks=[recorder],
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
        return prepare(request).run()


@hookimpl
def register_trainers(register):
    register(DPO())
