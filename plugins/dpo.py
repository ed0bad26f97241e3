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
  dropped, and how many prompts gave no pair, and why, is reported as a warning and recorded in every checkpoint's
  metrics (pairs_offered, pairs_kept, pairs_dropped_<reason>, pairs_trained; medbench_plugins.dpo_sampling).

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
from dataclasses import dataclass, replace
from pathlib import Path

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.records import read_regular_text
from medbench.training import CheckpointInfo, TrainRequest, option_flag
from medbench.trainingdata import TrainingExample, answer_grader
from medbench.trainers.hf import (Formatter, PreparedRun, TrlOptions, capped, check_trainable, checkpoint_kind,
                                  checkpoint_recorder, load_policy, lora_config, plan_check_with, require_positive,
                                  training_arguments)
from medbench.trainers.shared_prompt import with_shared_prompts
from medbench_plugins.dpo_sampling import sampled_pairs

PAIR_SOURCES = ("task", "file", "sampled")
LOSS_TYPES = ("sigmoid", "ipo", "robust")
PAIR_FIELDS = ("prompt", "chosen", "rejected")
LEARNING_RATES = {"lora": 5e-5, "qlora": 5e-5, "full": 1e-6}


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

    def ignored_options(self) -> dict[str, str]:
        inert = super().ignored_options()
        if self.pairs != "sampled":  # the sampling settings shape sampled pairs only
            for name in ("samples_per_prompt", "sample_max_new_tokens", "sample_temperature", "length_ratio_min",
                         "length_ratio_max"):
                inert[name] = f"only {option_flag('pairs')} sampled samples answers; these pairs come from " \
                              f"{self.pairs!r}"
        return inert


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


def prepare(request: TrainRequest, tally: dict[str, int] | None = None) -> PreparedRun:
    """The DPO run; ``tally`` (if given) receives the pair counts the checkpoints record (DPO.train)."""
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
        pairs = sampled_pairs(loaded.model, formatter, examples, options, request.seed, grade, tally)
    pairs = pairs_trained(pairs, options, request.seed)
    if tally is not None:
        tally["pairs_trained"] = len(pairs)
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
        checkpoints = (prepared := prepare(request, tally := {})).run()
        shared = getattr(prepared.trainer, "shared_prompt_share", lambda: None)()  # the share of packed forwards
        for checkpoint in checkpoints:  # the reference is the starting model, adapters merged in (module docstring)
            checkpoint.metrics = {**checkpoint.metrics, "reference_model": request.model_ref, **tally,
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
