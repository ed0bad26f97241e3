"""ORPO (odds-ratio preference optimisation, Hong et al. 2024) through TRL, as a medbench trainer.

ORPO trains on the gold answer with the usual SFT loss plus a term that raises the odds of the gold answer over a
wrong one; unlike DPO it needs no reference model. Every wrong option of a training question becomes one
(prompt, chosen, rejected) pair, so the trainer works on any multiple-choice task medbench knows: this
package's own task, or medqa and medmcqa.

Built on medbench's public trainer SDK (medbench.trainers.hf), as the built-in sft and dpo are: the options
(LoRA, QLoRA or full, steps, batch, lengths) come from TrlOptions, and PreparedRun.run() gives the run resume
(`medbench train --resume`), the NaN guard, the out-of-memory back-off, throughput and the progress bar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from medbench.errors import MedbenchError
from medbench.trainers.hf import (Formatter, PreparedRun, TrlOptions, capped, checkpoint_kind, checkpoint_recorder,
                                  load_policy, lora_config, require_positive, training_arguments)
from medbench.training import CheckpointInfo, TrainRequest


@dataclass
class ORPOOptions(TrlOptions):
    """`medbench train --plugin orpo --beta 0.2 --max-steps 20`, or a --config YAML; plus every TrlOptions."""

    beta: float = 0.1  # lambda in the paper: weight of the odds-ratio term against the SFT loss

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "beta")


def prepare(request: TrainRequest) -> PreparedRun:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # TRL 1.x keeps ORPO under trl.experimental
    from datasets import Dataset
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    options: ORPOOptions = request.config
    examples = capped(request.training_examples(), options, f"the training data of task {request.task!r}",
                      request.seed)
    if not any(e.rejected for e in examples):
        raise MedbenchError(f"task {request.task!r} gives no wrong answers to prefer the gold one over",
                            "train ORPO on a multiple-choice task (output_type: multiple_choice in its YAML)")
    loaded = load_policy(request, options)
    # Prompts as the evaluation scores them: raw, or in the chat template (--chat-template, --system-prompt).
    text = Formatter(loaded.tokenizer, options.chat_template, request.model_ref, options.system_prompt)
    text.require_scored_prefix(request.model_ref, "ORPO")  # TRL tokenizes the pairs itself
    pairs = [{"prompt": text.prompt(e), "chosen": text.completion(e.completion), "rejected": text.completion(wrong)}
             for e in examples for wrong in e.rejected]
    longest = max(len(loaded.tokenizer(text.rendered(e, answer))["input_ids"]) + 2  # + BOS and EOS
                  for e in examples for answer in (e.completion, *e.rejected))
    if longest > options.max_length:  # ORPO would truncate the answer: refuse instead
        raise MedbenchError(f"the longest training pair has {longest} tokens, more than --max-length "
                            f"{options.max_length}", f"pass --max-length {longest} or more")
    args = training_arguments(ORPOConfig, request, options, 1e-4, beta=options.beta, remove_unused_columns=False)
    args.max_length = options.max_length
    recorder = checkpoint_recorder(request.model_ref)
    trainer = ORPOTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(pairs),
                          processing_class=loaded.tokenizer, peft_config=lora_config(options), callbacks=[recorder])
    return PreparedRun(trainer, recorder, examples, checkpoint_kind(options), f"orpo · {request.task}",
                       resume_from=request.resume_from, model_ref=request.model_ref,
                       auto_batch_size=options.auto_batch_size)


class ORPO:
    name = "orpo"
    description = "ORPO via TRL: SFT plus an odds-ratio preference for the gold answer over each wrong option"
    config_class = ORPOOptions
    supports_resume = True  # PreparedRun keeps the resume state in the newest checkpoint

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        return prepare(request).run()
