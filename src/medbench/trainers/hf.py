"""The public SDK for Hugging Face / TRL trainer plugins: what the built-in sft and dpo use, for yours too.

Options (TrlOptions: method, LoRA, steps, batch, lengths, speed switches), policy loading (load_policy: an adapter
folded into its base, 4-bit for QLoRA, the fast attention and kernels), lora_config, training_arguments (a TRL
config with medbench's seed, sampler order, precision and saving), Formatter (raw or chat prompts), the
pre-training checks (capped, check_trainable, plan_check_with), and from medbench.trainers.run the run itself:
checkpoint_recorder plus PreparedRun(trainer, recorder, examples, kind, title).run() gives a trainer resume,
the NaN guard, the out-of-memory back-off, throughput and the rich progress bar. A TRL-based trainer is then about
thirty lines (examples/medbench-plugin-example: ORPO).

Checkpoints are saved by the Hugging Face Trainer itself (``save_steps`` and the final step); a callback records
each one with the train metrics logged at its step, points an adapter at the model reference the user gave, and
removes the pickle the Trainer writes beside the weights. The latest checkpoint of a running job also holds the
optimizer, scheduler and RNG state (``--resume`` continues from it); older checkpoints lose theirs when a newer one
is complete, and a finished run keeps only safetensors weights. A NaN or infinite loss stops training before that
step is saved (medbench.trainers.callbacks.nonfinite_guard).

Speed (GitHub issue #7). Every run is measured by medbench.throughput (real tokens/s, MFU, peak memory: in the logs,
the progress bar and every checkpoint's train metrics). The fast paths below are on by default only where the
trained result stays the same, and each has an option to turn it off:

* attention: ``flash_attention_2`` on CUDA in bf16/fp16 when the flash-attn package is installed, else PyTorch
  SDPA (``--attn-implementation``);
* Liger's Triton kernels for RMSNorm, RoPE and SwiGLU on CUDA when liger-kernel is installed (``--liger-kernel``);
  the cross-entropy is already TRL's chunked log-prob head, which never materialises the full logits, and it
  projects only the positions that carry a label on a CPU too, as TRL does on GPUs (medbench.trainers.fused_head);
* bf16 autocast on GPUs that support it (``--dtype`` of ``medbench train``);
* activation checkpointing by device (``--gradient-checkpointing auto|on|off``): ``auto`` keeps TRL's default (on)
  on a CPU, where turning it off bought 1.2x speed for 1.4-1.6x the memory (benchmarks/RESULTS.md), and turns it
  off on a GPU, where the memory goes to padding-free batches and Liger kernels instead;
* out-of-memory back-off (``--auto-batch-size``): on a CUDA out-of-memory error the per-device batch is halved and
  gradient accumulation doubled, so every optimizer step still sees the same examples, and training starts again
  from the newest checkpoint of the run, or from the state it started in;
* ``torch.compile`` on request (``--torch-compile``);
* SFT only: padding-free batches in the sampler's order (sft.py); DPO: precomputed reference log-probs (dpo.py)
  and one row per pair with its prompt run once (medbench.trainers.shared_prompt, for any TRL pair trainer).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.models import LoadedModel, pick_device, pick_dtype, resolve_model
from medbench.training import TrainRequest, option_flag
from medbench.trainingdata import TrainingExample
from medbench.trainers.chat_format import Formatter, check_trainable
from medbench.trainers.fused_head import project_labelled_positions_only
# The run half of the SDK, re-exported: a trainer plugin imports everything from medbench.trainers.hf.
from medbench.trainers.run import (BatchBackoff, PreparedRun, adapter_base_ref, checkpoint_recorder,
                                   drop_resume_state, finish_checkpoint)

__all__ = ["METHODS", "TrlOptions", "require_positive", "capped", "plan_check_with", "target_delimiter", "load_policy",
           "compute_device_and_dtype", "pick_attention", "use_liger", "speed_up", "lora_config", "checkpoint_kind",
           "training_arguments", "Formatter", "check_trainable", "BatchBackoff", "PreparedRun", "adapter_base_ref",
           "checkpoint_recorder", "drop_resume_state", "finish_checkpoint", "VARLEN_ATTENTION",
           "use_gradient_checkpointing"]

METHODS = ("lora", "qlora", "full")
MAX_STEPS = 10**9  # past any run (a billion optimizer steps): a larger --max-steps is a typo, never a plan


@dataclass
class TrlOptions:
    method: str = "lora"  # lora | qlora (LoRA on a 4-bit base; bitsandbytes + CUDA) | full
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | None = None  # None: every linear layer except the output head
    learning_rate: float | None = None  # None: the trainer's default for the method
    # The schedule, stated so a recipe can write it down: TRL's defaults (linear decay to 0, no warmup, no decay).
    lr_scheduler_type: str = "linear"  # any transformers SchedulerType: linear, cosine, constant, ...
    warmup_ratio: float = 0.0  # the share of optimizer steps spent warming the learning rate up from 0
    weight_decay: float = 0.0
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many optimizer steps (overrides num_epochs); -1: train num_epochs
    train_batch_size: int = 4  # per device; `medbench train --eval-batch-size` is checkpoint scoring's
    gradient_accumulation_steps: int = 1
    max_length: int = 1024  # tokens; a longer example is an error, never silently truncated
    max_examples: int | None = None  # a seeded label-stratified sample of N (capped); more than the data holds is an error
    save_steps: int = 0  # also keep a checkpoint every N steps (0: the final one only)
    save_every_epoch: bool = False  # keep a checkpoint at the end of every epoch instead (a recipe step's select)
    logging_steps: int = 10  # log the training metrics (loss, learning rate, ...) every N optimizer steps
    # false: raw prompt + target, the form lm-eval's log-likelihood scoring reads, so the eval sees what was trained;
    # true: one chat turn in the tokenizer's template (for chat-formatted evaluation); a model without one is refused.
    chat_template: bool = False  # train in the tokenizer's chat template (true) or on raw prompt + target (false)
    chat_template_from: str | None = None  # a model whose chat template to train in (a base model has none)
    system_prompt: str | None = None  # trained as eval's --system-prompt scores it: a system turn, or raw its paragraph
    gradient_checkpointing: str = "auto"  # auto: on on a CPU (as plain TRL), off on a GPU; or on / off
    # Speed (module docstring). Each is equal-output; "auto"/None picks the fast path where it is available.
    attn_implementation: str = "auto"  # auto: flash_attention_2 on CUDA when installed, else sdpa; or sdpa, eager, ...
    liger_kernel: bool | None = None  # None: Liger's RMSNorm/RoPE/SwiGLU kernels on CUDA when liger-kernel is installed
    torch_compile: bool = False  # torch.compile the model: a slower start, often faster steps on a GPU
    auto_batch_size: bool = True  # on CUDA out-of-memory: halve the micro-batch, double accumulation, start again

    def __post_init__(self):
        if self.method not in METHODS:
            raise MedbenchError(f"unknown method {self.method!r}", f"pass --method with one of {', '.join(METHODS)}")
        require_positive(self, "lora_r", "lora_alpha", "num_epochs", "train_batch_size", "gradient_accumulation_steps",
                         "max_length", "logging_steps", "learning_rate", "max_examples")
        if self.chat_template_from and not self.chat_template:  # a template nothing would use: a slip
            raise MedbenchError("--chat-template-from is given but --chat-template is false",
                                "pass --chat-template true with it, or leave --chat-template-from out")
        if self.system_prompt is not None:  # eval's checks (not empty, UTF-8), its option named
            from medbench.generation import GenerationOptions

            try:
                GenerationOptions(system_prompt=self.system_prompt)
            except MedbenchError as exc:
                raise MedbenchError(f"{option_flag('system_prompt')}: {exc.problem}", exc.fix) from None
        if not 0 <= self.lora_dropout < 1:
            raise MedbenchError(f"--lora-dropout must lie in [0, 1), got {self.lora_dropout}", "pass --lora-dropout 0.05")
        if self.max_steps == 0 or not -1 <= self.max_steps <= MAX_STEPS:
            # The Trainer reads 0 as "no limit" and trains anyway; a run asked for no steps must not report success.
            raise MedbenchError(f"--max-steps must be 1 to {MAX_STEPS:,} optimizer steps, or -1 to train --num-epochs, "
                                f"got {self.max_steps}", "pass --max-steps 1 or more, or --max-steps -1")
        if self.num_epochs > MAX_STEPS:  # each epoch is one optimizer step at least; past int64 once multiplied
            flag = option_flag("num_epochs")
            raise MedbenchError(f"{flag} must be at most {MAX_STEPS:,}, got {self.num_epochs}", f"pass {flag} 3, say")
        if self.save_steps < 0:
            raise MedbenchError(f"--save-steps must be 0 or more, got {self.save_steps}",
                                "pass --save-steps 0 for the final checkpoint only")
        if self.save_steps and self.save_every_epoch:
            raise MedbenchError(f"--save-steps {self.save_steps} and --save-every-epoch both say when to keep a "
                                "checkpoint", "pass one of them")
        self.gradient_checkpointing = checkpointing_choice(self.gradient_checkpointing)
        from transformers import SchedulerType

        schedules = [s.value for s in SchedulerType]
        if self.lr_scheduler_type not in schedules:
            raise MedbenchError(f"unknown --lr-scheduler-type {self.lr_scheduler_type!r}",
                                f"pass one of {', '.join(schedules)}")
        if not 0 <= self.warmup_ratio < 1 or not self.weight_decay >= 0:
            raise MedbenchError(f"--warmup-ratio must lie in [0, 1) and --weight-decay be 0 or more, got "
                                f"{self.warmup_ratio} and {self.weight_decay}", "pass --warmup-ratio 0.03 --weight-decay 0")
        if not self.attn_implementation or not str(self.attn_implementation).strip():
            raise MedbenchError("--attn-implementation is empty", "pass --attn-implementation auto, sdpa or eager")

    def ignored_options(self) -> dict[str, str]:
        """Options the others make inert (the trainer SDK's hook; medbench.trainer_options.refuse_ignored_options):
        `medbench train` refuses them when given, a recipe's shared options stay quiet."""
        inert: dict[str, str] = {}
        if self.method == "full":
            for name in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"):
                inert[name] = f"{option_flag('method')} full trains every weight, with no LoRA adapter"
        if self.max_steps > 0:
            inert["num_epochs"] = f"{option_flag('max_steps')} {self.max_steps} ends training, whatever the epochs"
        if self.warmup_ratio and self.lr_scheduler_type in ("constant", "reduce_lr_on_plateau"):
            inert["warmup_ratio"] = (f"the {self.lr_scheduler_type} schedule has no warmup (constant_with_warmup "
                                     "has)")
        return inert


CHECKPOINTING = ("auto", "on", "off")


def checkpointing_choice(value: Any) -> str:
    """--gradient-checkpointing as auto, on or off; true/false (the option's earlier boolean form) still read."""
    text = str(value).strip().lower()
    text = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(text, text)
    if text not in CHECKPOINTING:
        raise MedbenchError(f"--gradient-checkpointing {value!r} is not auto, on or off",
                            "pass --gradient-checkpointing auto (on on a CPU, off on a GPU), on or off")
    return text


def use_gradient_checkpointing(requested: str, device: str) -> bool:
    """``auto``: on on a CPU, off on an accelerator (module docstring); ``on`` / ``off`` as asked."""
    if requested == "auto":
        return device == "cpu"
    return requested == "on"


def require_positive(options: Any, *names: str) -> None:
    """Options that must be above zero when set (None means 'use the default')."""
    for name in names:
        value = getattr(options, name)
        if value is not None and value <= 0:
            raise MedbenchError(f"{option_flag(name)} must be positive, got {value}", f"pass a positive {option_flag(name)}")


def capped(examples: list[TrainingExample], options: TrlOptions, source: str = "the training data",
           seed: int = 0) -> list[TrainingExample]:
    """``--max-examples`` of ``examples``: a label-stratified sample drawn with ``seed`` (pass the run's,
    ``request.seed``), kept in the data's order (medbench.trainingdata.select_examples), so every trainer given one
    seed takes the same rows. Asking for more than ``source`` holds is an error, never a silent cut: a study's
    "256 shots" must not quietly train on 200."""
    from medbench.trainingdata import select_examples

    return select_examples(examples, options.max_examples, seed, None, source)


def plan_check_with(config_class: type, plugin: str, task: str, options: dict[str, Any],
                    data_files: dict[str, str] | None, check: Any) -> str | None:
    """A trainer's plan-time check (read by a sweep before anything trains): build the options, load the task's
    training documents the way training does (no model), run ``check(config, load_examples)`` and return the
    one-line reason it gave, or None. ``check`` may return the reason (a string; any other value is no reason)
    or raise a MedbenchError with it.
    ``data_files`` maps ``TASK:SPLIT`` (``TASK`` alone: its test split) to a path, as ``--data-file`` does. Options
    the trainer does not take raise: the recipe is wrong everywhere, not only in this cell."""
    from medbench.training import build_config
    from medbench.trainingdata import data_file_metadata, load_training_examples

    config = build_config(config_class, {}, dict(options), plugin)  # a bad option is the recipe's error: raised
    try:
        reason = check(config, lambda: load_training_examples(task, data_file_metadata(task, data_files)))
    except MedbenchError as exc:
        return exc.one_line()
    return reason if isinstance(reason, str) and reason.strip() else None  # other return values: no reason


def target_delimiter(example: TrainingExample) -> str:
    """What the task puts between prompt and answer (its completion is delimiter + answer)."""
    return example.completion[: len(example.completion) - len(example.answer)]


def load_policy(request: TrainRequest, options: TrlOptions) -> LoadedModel:
    """The starting model, with any adapter folded in so that a new adapter (or a full fine-tune) goes on top."""
    from medbench.trainers.chat_format import borrow_chat_template
    from medbench.trainers.lora_targets import check_lora_rank, check_lora_targets

    project_labelled_positions_only()  # TRL's fused head: labelled positions only on the CPU too (fused_head.py)
    if options.method == "qlora":
        loaded = _load_4bit(request)
    else:  # a full fine-tune keeps fp32 master weights (bf16 is then autocast); a frozen LoRA base can sit in bf16
        dtype = "fp32" if options.method == "full" else request.load_options.dtype
        loaded = speed_up(resolve_model(request.model_ref, replace(request.load_options, dtype=dtype,
                                                                   merge_adapter=True)), request, options)
    check_lora_targets(loaded.model, options.method, options.lora_target_modules)  # before the trainer is built
    if options.chat_template_from:  # saved with every checkpoint, so the checkpoint is scored in it too
        borrow_chat_template(loaded.tokenizer, options.chat_template_from)
    check_lora_rank(loaded.model, options.method, options.lora_r)
    return loaded


# Attention implementations that take a padding-free batch as variable-length sequences, without a dense mask.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")


def compute_device_and_dtype(request: TrainRequest):
    """The device training runs on and its compute dtype (bf16 on a GPU that supports it, else fp32)."""
    device = pick_device(request.load_options.device)
    return device, pick_dtype(request.load_options.dtype, device)


def pick_attention(requested: str, device: str, dtype: Any) -> str:
    """``auto``: flash_attention_2 on CUDA in bf16/fp16 when the flash-attn package is installed, else sdpa."""
    import torch

    if requested != "auto":
        return requested
    if device.startswith("cuda") and dtype in (torch.bfloat16, torch.float16) and \
            importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def use_liger(requested: bool | None, device: str) -> bool:
    """``None``: on when liger-kernel is installed and training runs on CUDA (its kernels are Triton, GPU only)."""
    if requested is None:
        return device.startswith("cuda") and importlib.util.find_spec("liger_kernel") is not None
    if requested and importlib.util.find_spec("liger_kernel") is None:
        raise MedbenchError("--liger-kernel true needs the liger-kernel package", "pip install liger-kernel, or drop "
                                                                                  "--liger-kernel")
    return requested


def speed_up(loaded: LoadedModel, request: TrainRequest, options: TrlOptions) -> LoadedModel:
    """Set the model's attention implementation and apply Liger's layer kernels (module docstring)."""
    import warnings

    device, dtype = compute_device_and_dtype(request)
    attention = pick_attention(options.attn_implementation, device, dtype)
    current = getattr(loaded.model.config, "_attn_implementation", None)
    if attention != current:
        try:
            loaded.model.set_attn_implementation(attention)
        except (ValueError, ImportError) as exc:
            if options.attn_implementation != "auto":
                raise MedbenchError(f"attention implementation {attention!r} is not available for this model: "
                                    f"{' '.join(str(exc).split())[:200]}",
                                    "pass --attn-implementation auto (or sdpa)") from None
            warnings.warn(f"attention {attention!r} unavailable ({exc}); keeping {current!r}", stacklevel=2)
    loaded.details["attn_implementation"] = getattr(loaded.model.config, "_attn_implementation", attention)
    if use_liger(options.liger_kernel, device):
        try:
            from transformers.integrations.liger import apply_liger_kernel

            # Not the fused linear cross-entropy: TRL's own chunked log-prob head replaces the model's forward.
            apply_liger_kernel(loaded.model, {"fused_linear_cross_entropy": False, "cross_entropy": False})
            loaded.details["liger_kernel"] = True
        except Exception as exc:  # a kernel set for another architecture, a Triton problem: train without it
            if options.liger_kernel:
                raise MedbenchError(f"Liger kernels could not be applied: {' '.join(str(exc).split())[:200]}",
                                    "pass --liger-kernel false") from None
            warnings.warn(f"Liger kernels not applied ({exc})", stacklevel=2)
    return loaded


def _load_4bit(request: TrainRequest) -> LoadedModel:
    import torch

    device = pick_device(request.load_options.device)
    if importlib.util.find_spec("bitsandbytes") is None or not device.startswith("cuda"):
        raise MedbenchError("QLoRA needs the bitsandbytes package and a CUDA GPU",
                            "pip install bitsandbytes on a machine with a CUDA GPU, or pass --method lora")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    # medbench's loaders do not quantise: find the weights' directory through them, then reload it in 4 bits.
    located = resolve_model(request.model_ref, replace(request.load_options, device="cpu", dtype="bf16",
                                                       merge_adapter=True))
    if not located.path or not (Path(located.path) / "config.json").is_file():
        raise MedbenchError(f"QLoRA needs a Hugging Face model directory, and {request.model_ref!r} is a "
                            f"{located.kind} model", "point --model at a model directory or hub id, or pass --method lora")
    tokenizer, path = located.tokenizer, located.path
    del located
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quantization, dtype=torch.bfloat16,
                                                 device_map={"": device}, use_safetensors=True,
                                                 trust_remote_code=request.load_options.trust_remote_code)
    return LoadedModel(model, tokenizer, ref=request.model_ref, kind="4bit", path=path)


def lora_config(options: TrlOptions):
    if options.method == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                      target_modules=options.lora_target_modules or "all-linear", task_type="CAUSAL_LM")


def checkpoint_kind(options: TrlOptions) -> str:
    return "model" if options.method == "full" else "adapter"


def training_arguments(config_class: type, request: TrainRequest, options: TrlOptions, learning_rate: float,
                       **trainer_specific: Any):
    """A TRL config (SFTConfig / DPOConfig) with medbench's choices: seed, sampler order, precision, saving."""
    import torch

    device, dtype = compute_device_and_dtype(request)  # the compute dtype; bf16 on a GPU that supports it
    return config_class(
        output_dir=str(request.output_dir),
        seed=request.seed,
        learning_rate=options.learning_rate or learning_rate,
        num_train_epochs=options.num_epochs,
        lr_scheduler_type=options.lr_scheduler_type,
        weight_decay=options.weight_decay,
        **_warmup(config_class, options.warmup_ratio),
        max_steps=options.max_steps,
        per_device_train_batch_size=options.train_batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        activation_checkpointing=use_gradient_checkpointing(options.gradient_checkpointing, device),
        torch_compile=options.torch_compile,
        # An ordering plugin's order must reach the model as given; otherwise shuffle with the run's seed.
        train_sampling_strategy="sequential" if request.keep_order else "random",
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16 and device.startswith("cuda"),
        use_cpu=device == "cpu",
        logging_steps=options.logging_steps,
        save_strategy="epoch" if options.save_every_epoch else "steps",
        save_steps=options.save_steps,
        # The optimizer/scheduler/RNG state goes into the newest checkpoint so a killed run can resume; it is
        # removed from older ones as soon as a newer checkpoint is complete (see RESUME_STATE).
        save_only_model=False,
        logging_nan_inf_filter=False,  # a NaN loss is reported (and stops training), never averaged away
        # --report-to: the Trainer's own integrations log into the tracker runs medbench.tracking fixed for this run
        report_to=request.report_to or "none",
        run_name=Path(request.output_dir).name,
        # Lengths are checked against options.max_length before training instead of being truncated by TRL.
        max_length=None,
        **trainer_specific,
    )


def _warmup(config_class: type, ratio: float) -> dict[str, float]:
    """transformers 5 reads a warmup_steps below 1 as a ratio and has no warmup_ratio; 4.x has both."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    return {"warmup_ratio": ratio} if "warmup_ratio" in names else {"warmup_steps": ratio}
