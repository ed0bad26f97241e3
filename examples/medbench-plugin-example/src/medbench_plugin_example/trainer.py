"""ORPO (odds-ratio preference optimisation, Hong et al. 2024) through TRL, as a medbench trainer.

ORPO trains on the gold answer with the usual SFT loss plus a term that raises the odds of the gold answer over a
wrong one; unlike DPO it needs no reference model. Every wrong option of a training question becomes one
(prompt, chosen, rejected) pair, so the trainer works on any multiple-choice task medbench knows: this
package's own task, or medqa and medmcqa. A LoRA adapter is trained and saved as the run's final checkpoint;
medbench writes its manifest and scores it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.training import CheckpointInfo, TrainRequest, option_flag
from medbench.trainingdata import TrainingExample, examples_hash


@dataclass
class ORPOOptions:
    """The trainer's options: `medbench train --plugin orpo --beta 0.2 --max-steps 20` or a --config YAML."""

    beta: float = 0.1  # lambda in the paper: weight of the odds-ratio term against the SFT loss
    learning_rate: float = 1e-4
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many optimizer steps (overrides num_epochs)
    train_batch_size: int = 4  # preference pairs per device and step
    gradient_accumulation_steps: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 512  # tokens of prompt + answer; a longer pair is an error, never silently truncated
    max_examples: int | None = None  # train on the first N questions only
    logging_steps: int = 10

    def __post_init__(self):
        for name in ("beta", "learning_rate", "num_epochs", "train_batch_size", "gradient_accumulation_steps",
                     "lora_r", "lora_alpha", "max_length", "max_examples", "logging_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise MedbenchError(f"{option_flag(name)} must be positive, got {value}",
                                    f"pass a positive {option_flag(name)}")


def preference_pairs(examples: list[TrainingExample]) -> list[dict[str, str]]:
    """One (prompt, chosen, rejected) row per wrong option of each question, in the examples' order."""
    return [{"prompt": example.prompt, "chosen": example.completion, "rejected": rejected}
            for example in examples for rejected in example.rejected]


def adapter_base(model_ref: str) -> str:
    """What the saved adapter names as its base: the user's reference, a local path made absolute."""
    path = Path(model_ref).expanduser()
    return str(path.resolve()) if path.exists() else model_ref


class ORPO:
    name = "orpo"
    description = "ORPO via TRL: SFT plus an odds-ratio preference for the gold answer over each wrong option (LoRA)"
    config_class = ORPOOptions

    def train(self, request: TrainRequest) -> list[CheckpointInfo]:
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # TRL 1.x keeps ORPO under trl.experimental
        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        from medbench.models import pick_device, pick_dtype, resolve_model
        from medbench.progress import trainer_progress_callback

        options: ORPOOptions = request.config
        examples = request.training_examples()[: options.max_examples]  # [:None] keeps them all
        pairs = preference_pairs(examples)
        if not pairs:
            raise MedbenchError(f"task {request.task!r} gives no wrong answers to prefer the gold one over",
                                "train ORPO on a multiple-choice task (output_type: multiple_choice in its YAML)")
        # Start from the model as the user named it; an adapter is folded into its base first.
        loaded = resolve_model(request.model_ref, replace(request.load_options, merge_adapter=True))
        longest = max(len(loaded.tokenizer(pair["prompt"] + pair[side])["input_ids"]) + 2  # + BOS and EOS
                      for pair in pairs for side in ("chosen", "rejected"))
        if longest > options.max_length:
            raise MedbenchError(f"the longest training pair has {longest} tokens, more than max_length="
                                f"{options.max_length}", f"pass --max-length {longest} or more")

        device = pick_device(request.load_options.device)
        dtype = pick_dtype(request.load_options.dtype, device)
        args = ORPOConfig(
            output_dir=str(request.output_dir), seed=request.seed, beta=options.beta,
            learning_rate=options.learning_rate, num_train_epochs=options.num_epochs, max_steps=options.max_steps,
            per_device_train_batch_size=options.train_batch_size,
            gradient_accumulation_steps=options.gradient_accumulation_steps, max_length=options.max_length,
            logging_steps=options.logging_steps, save_strategy="no", report_to="none",
            bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16 and device.startswith("cuda"),
            use_cpu=device == "cpu", activation_checkpointing=False, remove_unused_columns=False,
            # A wrapping plugin (an ordering) may ask for its order to be kept; otherwise shuffle with the seed.
            train_sampling_strategy="sequential" if request.keep_order else "random",
        )
        lora = LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        trainer = ORPOTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(pairs),
                              processing_class=loaded.tokenizer, peft_config=lora)
        trainer.remove_callback(ProgressCallback)  # one rich progress bar instead of tqdm and printed dicts
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(trainer_progress_callback(f"{self.name} · {request.task}"))

        class LogLastStep(TrainerCallback):  # so the checkpoint gets the train metrics of its own step
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= state.max_steps:
                    control.should_log = True

        trainer.add_callback(LogLastStep())
        output = trainer.train()

        step = trainer.state.global_step
        path = Path(request.output_dir) / f"checkpoint-{step}"
        trainer.save_model(str(path))
        (path / "training_args.bin").unlink(missing_ok=True)  # a pickle; checkpoints stay safetensors-only
        config_path = path / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = adapter_base(request.model_ref)
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")

        last_log = next((log for log in reversed(trainer.state.log_history) if "loss" in log), {})
        metrics = {key: value for key, value in {**last_log, **output.metrics}.items()
                   if isinstance(value, (int, float))}
        return [CheckpointInfo(path=path, kind="adapter", step=step, final=True, metrics=metrics,
                               data_hash=examples_hash(examples))]
