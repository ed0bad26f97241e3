"""Training throughput: real tokens per second, model FLOPs per token and MFU, measured inside a Trainer.

What is counted
---------------
* **Tokens** are the real tokens of each micro-batch the model trains on: the sum of ``attention_mask`` for a
  padded batch, the length of the flattened row for a padding-free batch (``position_ids`` and no mask; TRL's
  collator adds no padding there), else every position of ``input_ids``. Padding never counts. A DPO batch holds
  the chosen and the rejected sequences, so both count (the prompt twice: the model runs it twice).
* **FLOPs per token** and the devices' **peak FLOP/s** are estimated in medbench.flops (6 per trainable weight,
  4 per frozen one; attention's own matmuls only with ``include_attention=True``).
* **Time** is wall-clock time between optimizer-step ends, with CUDA synchronised at the window edges; the first
  ``warmup_steps`` optimizer steps (CUDA context, allocator, kernels, compilation) and checkpoint saving are
  excluded. Data loading and collation between steps are included.
* **MFU** = achieved model FLOP/s / peak FLOP/s of the devices in use; ``None`` where no peak is known (a CPU,
  or an accelerator not in medbench.flops.PEAK_TFLOPS, unless ``MEDBENCH_PEAK_TFLOPS`` is set).

Logged keys (every Trainer log, so the progress bar and ``trainer_state.json`` get them): ``tokens_per_s`` and
``mfu`` for the window since the previous log, ``flops_per_token``, ``peak_memory_gb``. The final train-summary
log (and so the last checkpoint's ``train_metrics``) adds ``train_tokens_per_s``, ``train_mfu``, ``train_tokens``,
``trainable_params``, ``total_params``, ``measured_steps`` and ``peak_flops``.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

from medbench.flops import ParameterCounts, attention_flops_per_sequence, flops_per_token, parameter_counts, peak_flops


def count_tokens(batch: dict[str, Any]) -> Any:
    """Real (non-padding) tokens in a collated batch: an int, or a 0-d tensor on the batch's device (no sync)."""
    mask = batch.get("attention_mask")
    if mask is not None and hasattr(mask, "sum") and getattr(mask, "ndim", 0) == 2:
        return mask.sum()
    for key in ("input_ids", "position_ids", "inputs_embeds"):
        value = batch.get(key)
        if value is not None and hasattr(value, "shape"):
            return int(value.shape[0] * value.shape[1]) if len(value.shape) >= 2 else int(value.shape[0])
    return 0


def sequence_lengths(batch: dict[str, Any]) -> list[int]:
    """Length of every sequence in a batch (for the attention FLOPs): from the mask, or the padding-free boundaries."""
    mask = batch.get("attention_mask")
    if mask is not None and getattr(mask, "ndim", 0) == 2:
        return [int(n) for n in mask.sum(-1).tolist()]
    cu = batch.get("cu_seq_lens_q")
    if cu is not None:
        return [int(n) for n in cu.diff().tolist() if n > 0]
    ids = batch.get("input_ids")
    return [int(ids.shape[1])] * int(ids.shape[0]) if ids is not None and ids.ndim == 2 else []


def _cpu_peak_reset() -> bool:
    """Reset the process's resident-set high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def cpu_peak_memory_bytes() -> int:
    """The process's resident-set high-water mark (since the last reset where one was possible)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _sync(device: Any) -> None:
    import torch

    if device is not None and getattr(device, "type", None) == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


_UNSET = object()  # ThroughputMeter.attach: the trainer had no instance attribute of that name


def throughput_meter(**kwargs: Any):
    """A :class:`ThroughputMeter` (a transformers TrainerCallback); call ``.attach(trainer)`` to wire it in."""
    from transformers import TrainerCallback

    class ThroughputMeter(TrainerCallback):
        """Counts real tokens per optimizer step, times the steps and logs tokens/s and MFU (module docstring).

        ``attach(trainer)`` registers it and wraps the trainer's ``training_step`` (to see each micro-batch) and
        ``log`` (so every log, the trainer's state and the summary ``train()`` returns carry the figures);
        ``detach()`` takes it off again once training is over (``summary`` stays).
        """

        def __init__(self, warmup_steps: int = 1, reference_forward: bool = False, include_attention: bool = False):
            self.warmup_steps = max(0, int(warmup_steps))
            self.reference_forward = reference_forward
            self.include_attention = include_attention
            self.trainer: Any = None
            self.counts: ParameterCounts | None = None
            self.flops_per_token = 0.0
            self.peak: float | None = None
            self.peak_source = ""
            self.summary: dict[str, Any] = {}
            self._replaced: dict[str, Any] = {}  # what attach() replaced on the trainer, for detach()
            self._reset()

        def _reset(self) -> None:
            self._device = None
            self._steps = 0  # optimizer steps finished in this train() call
            self._step_tokens: Any = 0  # tokens of the micro-batches since the last optimizer step (maybe a tensor)
            self._step_attention = 0.0
            self._window_tokens: Any = 0
            self._window_attention = 0.0
            self._window_steps = 0
            self._window_start: float | None = None  # set once the warm-up steps are over
            self._all_tokens: Any = 0  # every step, warm-up included
            self._measured_tokens = 0
            self._measured_attention = 0.0
            self._measured_seconds = 0.0
            self._measured_steps = 0
            self._train_start = time.perf_counter()

        # --- wiring ----------------------------------------------------------------------------------------------
        def attach(self, trainer: Any) -> ThroughputMeter:
            self.trainer = trainer
            trainer.add_callback(self)
            step, log = trainer.training_step, trainer.log
            self._replaced = {name: vars(trainer).get(name, _UNSET) for name in ("training_step", "log")}

            def training_step(model, inputs, *args, **kwargs):
                self.observe(inputs)
                return step(model, inputs, *args, **kwargs)

            def log_with_throughput(logs, *args, **kwargs):
                self.add_to_logs(logs)
                return log(logs, *args, **kwargs)

            trainer.training_step = training_step
            trainer.log = log_with_throughput
            return self

        def detach(self) -> None:
            """Undo ``attach``. The wrappers close over the trainer's bound methods, a trainer -> wrapper -> trainer
            cycle that would keep the trainer and its model alive until a full garbage collection."""
            trainer, self.trainer = self.trainer, None
            if trainer is None:
                return
            trainer.remove_callback(self)
            replaced, self._replaced = self._replaced, {}
            for name, previous in replaced.items():
                if previous is _UNSET:
                    vars(trainer).pop(name, None)
                else:
                    setattr(trainer, name, previous)

        def observe(self, inputs: dict[str, Any]) -> None:
            tokens = count_tokens(inputs)
            self._step_tokens = self._step_tokens + tokens
            if self.include_attention and self.counts is not None:
                config = getattr(self.trainer.model, "config", None)
                self._step_attention += sum(attention_flops_per_sequence(config, n) for n in sequence_lengths(inputs))

        # --- callback events -------------------------------------------------------------------------------------
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            import torch

            self._reset()
            model = model if model is not None else getattr(self.trainer, "model", None)
            self._device = getattr(args, "device", None)
            if model is not None:
                self.counts = parameter_counts(model)
                peft = hasattr(model, "get_base_model") and hasattr(model, "disable_adapter")
                self.flops_per_token = flops_per_token(self.counts, self.reference_forward, peft)
                dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else \
                    next((p.dtype for p in model.parameters() if p.requires_grad), torch.float32)
                self.peak, self.peak_source = peak_flops(self._device, dtype)
            if self._device is not None and self._device.type == "cuda" and torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats(self._device)
            else:
                _cpu_peak_reset()
            _sync(self._device)
            self._train_start = time.perf_counter()
            if self.warmup_steps == 0:
                self._window_start = self._train_start

        def on_step_end(self, args, state, control, **kwargs):
            self._steps += 1
            self._all_tokens = self._all_tokens + self._step_tokens
            if self._window_start is not None:
                self._window_tokens = self._window_tokens + self._step_tokens
                self._window_attention += self._step_attention
                self._window_steps += 1
            self._step_tokens, self._step_attention = 0, 0.0
            if self._window_start is None and self._steps >= self.warmup_steps:
                _sync(self._device)
                self._window_start = time.perf_counter()

        def on_save(self, args, state, control, **kwargs):
            # A save comes right after a log closed the window: restart it, so saving does not count as training.
            if self._window_start is not None and self._window_steps == 0:
                _sync(self._device)
                self._window_start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self._close_window()
            self.summary = self._summary()

        # --- figures ---------------------------------------------------------------------------------------------
        def _processes(self) -> int:
            accelerator = getattr(self.trainer, "accelerator", None)
            return int(getattr(accelerator, "num_processes", 1) or 1)

        def _total(self, value: Any) -> int:
            """``value`` summed over the processes (a collective: every process logs at the same steps)."""
            import torch

            accelerator = getattr(self.trainer, "accelerator", None)
            if self._processes() > 1 and accelerator is not None:
                tensor = torch.as_tensor(value, device=accelerator.device, dtype=torch.float64)
                return int(accelerator.reduce(tensor, reduction="sum").item())
            return int(value.item()) if hasattr(value, "item") else int(value)

        def _close_window(self) -> tuple[int, float, float] | None:
            """End the current measuring window: (tokens, attention FLOPs, seconds), or None if it holds no step."""
            if self._window_start is None or self._window_steps == 0:
                return None
            _sync(self._device)
            now = time.perf_counter()
            tokens, seconds = self._total(self._window_tokens), now - self._window_start
            attention = self._window_attention * max(1, self._processes())  # an estimate: this rank x ranks
            self._measured_tokens += tokens
            self._measured_attention += attention
            self._measured_seconds += seconds
            self._measured_steps += self._window_steps
            self._window_tokens, self._window_attention, self._window_steps = 0, 0.0, 0
            self._window_start = now
            return tokens, attention, seconds

        def _rate(self, tokens: int, attention: float, seconds: float) -> tuple[float, float | None]:
            per_s = tokens / max(seconds, 1e-12)
            mfu = None
            if self.peak:
                achieved = (tokens * self.flops_per_token + attention) / max(seconds, 1e-12)
                mfu = achieved / (self.peak * self._processes())
            return per_s, mfu

        def peak_memory_gb(self) -> float:
            import torch

            if self._device is not None and self._device.type == "cuda" and torch.cuda.is_available():
                return torch.cuda.max_memory_allocated(self._device) / 2**30
            return cpu_peak_memory_bytes() / 2**30

        def _summary(self) -> dict[str, Any]:
            out: dict[str, Any] = {"flops_per_token": self.flops_per_token,
                                   "peak_memory_gb": round(self.peak_memory_gb(), 3),
                                   "train_tokens": self._total(self._all_tokens), "measured_steps": self._measured_steps}
            if self.counts is not None:
                out.update(trainable_params=self.counts.trainable, total_params=self.counts.total)
            if self._measured_steps:
                per_s, mfu = self._rate(self._measured_tokens, self._measured_attention, self._measured_seconds)
            else:  # no step after the warm-up: the whole run, warm-up included
                seconds = time.perf_counter() - self._train_start
                per_s, mfu = self._rate(out["train_tokens"], 0.0, seconds)
                out["measured_steps"] = self._steps
                out["includes_warmup"] = True
            out["train_tokens_per_s"] = round(per_s, 2)
            out["train_mfu"] = None if mfu is None else float(f"{mfu:.6g}")
            out["peak_flops"] = self.peak
            return out

        def add_to_logs(self, logs: dict[str, Any]) -> None:
            """Put the figures into a log dict in place (the Trainer's summary metrics are such a dict too)."""
            final = "train_runtime" in logs
            window = self._close_window()
            if window is not None:
                per_s, mfu = self._rate(*window)
                logs["tokens_per_s"] = round(per_s, 2)
                if mfu is not None:
                    logs["mfu"] = float(f"{mfu:.6g}")
            logs["flops_per_token"] = self.flops_per_token
            logs["peak_memory_gb"] = round(self.peak_memory_gb(), 3)
            if final:
                self.summary = self._summary()
                logs.update({k: v for k, v in self.summary.items() if v is not None})

    return ThroughputMeter(**kwargs)


def describe(figures: dict[str, Any]) -> str:
    """``1,234 tok/s · MFU 12.3%`` from logged figures (what the progress bar shows)."""
    parts = []
    if figures.get("tokens_per_s") is not None:
        parts.append(f"{figures['tokens_per_s']:,.0f} tok/s")
    if figures.get("mfu") is not None:
        parts.append(f"MFU {100 * figures['mfu']:.1f}%")
    return " · ".join(parts)
