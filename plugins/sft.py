"""Supervised fine-tuning with TRL's SFTTrainer: LoRA (default), QLoRA or full; loss on the completion (default)
or on every token.

Two targets, the seed study's comparison: ``label`` (the answer alone) and ``rationale`` (the task's rationale,
then the answer). ``rationale_field`` picks which document field the rationale is read from (default: the task's
``metadata.rationale_field``), for a task with several rationale writers; the run's data hash covers the
rationales it trains on.

Training rows (medbench.trainingdata.select_examples): ``exclude_difficulty`` leaves difficulty tiers out, then
``max_examples`` draws a label-stratified sample with the run's seed, kept in the data's order.

``loss_on``: ``completion`` (the default) trains on the target tokens only, the prompt masked out. ``all`` trains on
every token of prompt + target: plain causal-LM continued training on the task's text. With ``method: full`` that is
the merge study's "clinical foundation model" step (a model continued-pretrained on clinical notes, later merged
with an instruct model), run here on the task's own notes as a fair, small stand-in for continued pretraining.

Padding-free batches (``--padding-free``): each micro-batch's examples, in the sampler's order, are laid end to end
in one row with ``position_ids`` restarting at every example, instead of being padded to the longest. This is not
TRL's packing (``bfd`` re-sorts examples by length, which would undo an ordering plugin's curriculum, and
``wrapped`` lets examples attend across their boundaries): the optimizer steps see exactly the examples they would
see padded, and the loss is the same, because attention stays within each example (varlen kernels for flash
attention, a block-diagonal mask that transformers builds from the position ids for SDPA and eager). It is on by
default where attention takes variable-length sequences natively (flash_attention_2/3). With SDPA it is exact too,
but attention then runs over the whole row under a mask, at a cost growing with the square of the row; on a CPU it
measured no faster, with 14% less memory (benchmarks/RESULTS.md), so there it stays off unless asked for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.trainer_options import option_flag
from medbench.training import CheckpointInfo, TrainRequest
from medbench.trainingdata import SelectionOptions, TrainingExample, select_examples
from medbench.trainers.hf import (
    VARLEN_ATTENTION,
    Formatter,
    PreparedRun,
    TrlOptions,
    check_trainable,
    plan_check_with,
    checkpoint_kind,
    checkpoint_recorder,
    load_policy,
    lora_config,
    target_delimiter,
    training_arguments,
)

TARGETS = ("label", "rationale")
LOSS_ON = ("completion", "all")
LEARNING_RATES = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}


@dataclass
class SFTOptions(SelectionOptions, TrlOptions):  # SelectionOptions: --exclude-difficulty (medbench.trainingdata)
    target: str = "label"  # label: the answer only; rationale: the task's rationale, then the answer
    rationale_field: str | None = None  # the document field rationale targets read (None: the task's rationale_field)
    padding_free: bool | None = None  # None: on where attention is variable-length (flash attention)
    # completion: loss on the target only; all: on prompt + target (causal-LM continued training)
    loss_on: str = "completion"

    def __post_init__(self):
        super().__post_init__()
        if self.target not in TARGETS:
            raise MedbenchError(f"unknown target {self.target!r}", f"pass --target with one of {', '.join(TARGETS)}")
        if self.loss_on not in LOSS_ON:
            raise MedbenchError(f"unknown loss_on {self.loss_on!r}", f"pass --loss-on with one of {', '.join(LOSS_ON)}")
        field = option_flag("rationale_field")
        if self.rationale_field is not None and not str(self.rationale_field).strip():
            raise MedbenchError(f"{field} is empty", f"name a document field, or leave out {field}")
        if self.rationale_field is not None and self.target != "rationale":  # a label target never reads it
            raise MedbenchError(f"{field} is read by {option_flag('target')} rationale only, not {self.target!r}",
                                f"pass {option_flag('target')} rationale, or leave out {field}")


def with_rationale_field(examples: list[TrainingExample], field: str | None, task: str) -> list[TrainingExample]:
    """The examples with their rationale read from document field ``field`` (None: as the task's metadata gave it),
    so that examples_hash, and with it the run's data hash, covers the rationales trained on."""
    if field is None:
        return examples
    if not any(field in example.doc for example in examples):
        known = ", ".join(sorted(k for k in (examples[0].doc if examples else {}) if "rationale" in k)) or "none"
        raise MedbenchError(f"task {task!r} has no field {field!r} in its training documents (rationale fields: "
                            f"{known})", f"pass {option_flag('rationale_field')} with a field its documents have, or "
                            "leave it out for the task's own metadata.rationale_field")
    return [dataclasses.replace(e, rationale=None if e.doc.get(field) in ("", None) else e.doc[field])
            for e in examples]


def target_texts(examples: list[TrainingExample], target: str, task: str) -> list[str]:
    """Each example's completion in the task's raw form (target delimiter first)."""
    if target == "label":
        return [example.completion for example in examples]
    missing = sum(example.rationale is None for example in examples)
    if missing:
        raise MedbenchError(f"task {task!r} gives no rationale for {missing} of {len(examples)} training examples",
                            "pass --target label, or set metadata.rationale_field in the task's YAML (or "
                            f"{option_flag('rationale_field')}) to the field that explains each answer")
    return [f"{target_delimiter(e)}{e.rationale}\nAnswer: {e.answer}" for e in examples]


def prepare(request: TrainRequest) -> PreparedRun:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    options: SFTOptions = request.config
    examples = training_rows(with_rationale_field(request.training_examples(), options.rationale_field, request.task),
                             options, request.seed, request.task)
    targets = target_texts(examples, options.target, request.task)
    loaded = load_policy(request, options)
    formatter = Formatter(loaded.tokenizer, options.chat_template, request.model_ref, options.system_prompt)
    dataset = Dataset.from_list([formatter.sft_row(example, text) for example, text in zip(examples, targets)])
    recorder = checkpoint_recorder(request.model_ref)
    trainer = SFTTrainer(
        model=loaded.model,
        args=training_arguments(SFTConfig, request, options, LEARNING_RATES[options.method],
                                completion_only_loss=options.loss_on == "completion",
                                padding_free=padding_free(options, loaded)),
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        peft_config=lora_config(options),
        callbacks=[recorder],
    )
    prepared = trainer.train_dataset
    check_trainable([len(ids) for ids in prepared["input_ids"]],
                    [sum(label != -100 for label in labels) for labels in prepared["labels"]],
                    examples, options.max_length)
    return PreparedRun(trainer, recorder, examples, checkpoint_kind(options), f"sft · {request.task}",
                       resume_from=request.resume_from, model_ref=request.model_ref,
                       auto_batch_size=options.auto_batch_size)


def training_rows(examples: list[TrainingExample], options: SFTOptions, seed: int, task: str) -> list[TrainingExample]:
    """--exclude-difficulty, then --max-examples as a seeded label-stratified sample, in the data's order
    (medbench.trainingdata.select_examples)."""
    return select_examples(examples, options.max_examples, seed, options.exclude_difficulty,
                           f"the training data of task {task!r}")


def padding_free(options: SFTOptions, loaded) -> bool:
    """--padding-free as given, else on where the model's attention takes variable-length sequences natively."""
    if options.padding_free is not None:
        return options.padding_free
    return loaded.model.config._attn_implementation in VARLEN_ATTENTION


class SFT:
    name = "sft"
    description = ("supervised fine-tuning (TRL SFTTrainer): LoRA, QLoRA or full; label or rationale targets; loss on "
                   "the completion or on all tokens")
    config_class = SFTOptions
    supports_resume = True  # medbench train --resume: continues from the run's last complete checkpoint

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        return prepare(request).run()

    def plan_check(self, task: str, options: dict, data_files: dict | None = None) -> str | None:
        """Why this step cannot run on ``task``'s training data (too few examples, no rationales), or None."""
        def check(config: SFTOptions, load_examples):
            examples = with_rationale_field(load_examples(), config.rationale_field, task)
            training_rows(examples, config, 0, task)  # the counts and the tiers; which rows depends on the seed
            # every row any seed's draw could take must have its rationale
            kept = training_rows(examples, dataclasses.replace(config, max_examples=None), 0, task)
            target_texts(kept, config.target, task)

        return plan_check_with(SFTOptions, self.name, task, options, data_files, check)


@hookimpl
def register_trainers(register):
    register(SFT())
