"""A TRL trainer run as medbench runs it (public SDK, re-exported by medbench.trainers.hf): every checkpoint
recorded with the train metrics of its own step and made medbench's (safetensors only, an adapter naming the
user's model reference), resume state kept in the newest checkpoint only, the NaN guard, the out-of-memory
back-off, throughput (tokens/s, MFU) and the progress bar. PreparedRun.run() returns the CheckpointInfo list a
trainer plugin's ``train`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.errors import MedbenchError
from medbench.records import atomic_write_json, atomic_write_text
from medbench.training import MANIFEST_NAME, CheckpointInfo
from medbench.trainingdata import TrainingExample, examples_hash


def adapter_base_ref(model_ref: str) -> str:
    """What a saved adapter names as its base: the user's reference, with a local path made absolute so the
    checkpoint still resolves from another directory."""
    path = Path(model_ref).expanduser()
    return str(path.resolve()) if path.exists() else model_ref


# What the Trainer writes into a checkpoint besides the weights so it can resume: torch pickles, loaded back only
# by transformers' resume with torch.load(weights_only=True). Kept in the newest checkpoint of an unfinished run only.
RESUME_STATE = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt", "rng_state*.pth")


def drop_resume_state(run_dir: Path, keep: Path | None = None) -> None:
    """Remove the resume state from every checkpoint in ``run_dir`` except ``keep``."""
    from medbench.run_dirs import is_trainer_checkpoint

    for checkpoint in Path(run_dir).glob("checkpoint-*"):
        if not is_trainer_checkpoint(checkpoint):  # checkpoint-best, a link: the user's, never emptied
            continue
        if keep is not None and checkpoint.resolve() == Path(keep).resolve():
            continue
        for pattern in RESUME_STATE:
            for file in checkpoint.glob(pattern):
                file.unlink(missing_ok=True)


def finish_checkpoint(path: Path, model_ref: str) -> None:
    """Make a saved checkpoint medbench's: no pickled training arguments, and an adapter that names ``model_ref``."""
    (path / "training_args.bin").unlink(missing_ok=True)  # a pickle; medbench checkpoints are safetensors
    adapter_config = path / "adapter_config.json"
    if adapter_config.exists():
        config = _checkpoint_json(adapter_config)
        if config.get("base_model_name_or_path") != adapter_base_ref(model_ref):
            atomic_write_json(adapter_config, {**config, "base_model_name_or_path": adapter_base_ref(model_ref)})


def _checkpoint_json(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON object, read without blocking on a FIFO; one line naming the file when it is damaged."""
    from medbench.run_dirs import read_state_json

    try:
        data = read_state_json(path)
    except (OSError, ValueError) as exc:
        raise MedbenchError(f"{path} is unreadable ({exc.strerror if isinstance(exc, OSError) else exc})",
                            f"restore it, or move {path.parent} out of the run directory") from None
    if not isinstance(data, dict):
        raise MedbenchError(f"{path} holds a JSON {type(data).__name__}, not an object",
                            f"restore it, or move {path.parent} out of the run directory")
    return data


def write_run_card(run_dir: Path, model_ref: str) -> None:
    """The run folder's README.md: TRL writes a model card there at every save that names a local base model as
    "[None]" and shows a pipeline loading model="None"; medbench's says what the run is and where its record is."""
    atomic_write_text(run_dir / "README.md", f"""# {run_dir.name}

A medbench training run from `{model_ref}`. Each `checkpoint-N/` holds its weights and
`{MANIFEST_NAME}`: the trainer plugin and its options, the training data's hash, the metrics at that step.
Score one with `medbench eval --model {run_dir.name}/checkpoint-N --tasks TASK`; `medbench_run.json` holds what
the run was asked to do.
""")


def checkpoint_recorder(model_ref: str):
    """A Trainer callback that records every checkpoint the Trainer saves, with the metrics logged at its step
    (``.saved``: step, path, metrics), among them medbench.throughput's tokens/s and MFU of the last logging window.
    An adapter's config is made to name ``model_ref`` as its base, so medbench resolves it the way the user named
    it."""
    from transformers import TrainerCallback  # imported here so that listing plugins stays fast

    class CheckpointRecorder(TrainerCallback):
        def __init__(self):
            self.saved: list[tuple[int, Path, dict[str, float]]] = []
            self._last_log: dict[str, Any] = {}
            self._flipped = False  # save_only_model turned on for the last step's checkpoint (on_step_end)

        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save:  # log at every save, so each checkpoint has the metrics of its own step
                control.should_log = True
                # The last step's checkpoint ends the run, and a finished run keeps no resume state (run() drops
                # it): not written at all. Full fine-tuning's optimizer state is twice the weights in fp32.
                if 0 < state.max_steps <= state.global_step and not args.save_only_model:
                    args.save_only_model = self._flipped = True

        def on_epoch_end(self, args, state, control, **kwargs):
            if control.should_save:  # save_every_epoch: the checkpoint gets the metrics of its own step too
                control.should_log = True

        def on_save(self, args, state, control, **kwargs):
            self._restore(args)
            self._record(args, state)

        def on_train_begin(self, args, state, control, **kwargs):
            self._restore(args)  # a retry after the out-of-memory back-off starts with the arguments as given

        def _restore(self, args):
            if self._flipped:  # the arguments are the Trainer's: hand them back as they were
                args.save_only_model = self._flipped = False

        def on_log(self, args, state, control, logs=None, **kwargs):
            self._last_log = dict(logs or {})

        def _record(self, args, state):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            finish_checkpoint(path, model_ref)
            write_run_card(Path(args.output_dir), model_ref)
            drop_resume_state(args.output_dir, keep=path)  # this checkpoint is complete: older states are not needed
            metrics = {k: v for k, v in self._last_log.items() if isinstance(v, (int, float))}
            if state.epoch is not None:  # the trainer's own count, whatever the last log held
                metrics["epoch"] = round(float(state.epoch), 4)
            # The value `--gradient-checkpointing auto` chose for this device, recorded with what it cost.
            metrics["gradient_checkpointing"] = bool(getattr(args, "activation_checkpointing", False))
            if "tokens_per_s" in metrics:  # the name manifests had before medbench.throughput
                metrics["train_tokens_per_second"] = metrics["tokens_per_s"]
            self.saved.append((state.global_step, path, metrics))

    return CheckpointRecorder()


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error (never raised on a CPU, so the back-off is a no-op there)."""
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc))


def may_run_out_of_memory(trainer: Any) -> bool:
    """Whether the back-off can ever fire: training on one CUDA device (with several processes, one rank alone
    cannot change the batch)."""
    device = getattr(trainer.args, "device", None)
    processes = getattr(getattr(trainer, "accelerator", None), "num_processes", 1) or 1
    return getattr(device, "type", None) == "cuda" and processes == 1


class BatchBackoff:
    """Out-of-memory back-off: halve the per-device batch and double gradient accumulation, so that each optimizer
    step still averages over the same examples in the same order, then train again from the newest checkpoint this
    run saved, or from the state training started in (trainable weights and RNG, kept on the CPU before the first
    attempt; the optimizer and scheduler are rebuilt). A batch of 1 that does not fit is an error."""

    def __init__(self, trainer: Any, enabled: bool):
        self.trainer = trainer
        self.enabled = enabled and may_run_out_of_memory(trainer)
        self.retries: list[tuple[int, int]] = []  # (per-device batch, accumulation) after each back-off
        self._snapshot: dict[str, Any] | None = None

    def take_snapshot(self) -> None:
        if not self.enabled:
            return
        import random

        import numpy as np
        import torch

        model = self.trainer.model
        self._snapshot = {
            "params": {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()
                       if p.requires_grad},
            "torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def restore_snapshot(self) -> None:
        import random

        import numpy as np
        import torch

        snapshot = self._snapshot
        with torch.no_grad():
            for name, param in self.trainer.model.named_parameters():
                if name in snapshot["params"]:
                    param.copy_(snapshot["params"][name].to(param.device))
        torch.set_rng_state(snapshot["torch"])
        random.setstate(snapshot["python"])
        np.random.set_state(snapshot["numpy"])
        if snapshot["cuda"] is not None:
            torch.cuda.set_rng_state_all(snapshot["cuda"])

    def shrink(self, exc: BaseException) -> None:
        """Halve the micro-batch after ``exc`` (an out-of-memory error), or raise a one-line error at batch 1."""
        import gc

        import torch

        args = self.trainer.args
        if args.per_device_train_batch_size <= 1:
            raise MedbenchError("out of GPU memory with a per-device batch of 1 "
                                f"({' '.join(str(exc).split())[:160]})",
                                "pass --gradient-checkpointing on, --method qlora, or a smaller --max-length; or "
                                "train on a GPU with more memory") from exc
        args.per_device_train_batch_size //= 2
        args.gradient_accumulation_steps *= 2
        self.trainer._train_batch_size = args.train_batch_size
        self.trainer.optimizer, self.trainer.lr_scheduler = None, None  # rebuilt by train()
        self.trainer.model.zero_grad(set_to_none=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.retries.append((args.per_device_train_batch_size, args.gradient_accumulation_steps))
        import warnings

        warnings.warn(f"out of GPU memory: training again with a per-device batch of {args.per_device_train_batch_size}"
                      f" x {args.gradient_accumulation_steps} accumulation steps (same effective batch)", stacklevel=2)


@dataclass
class PreparedRun:
    """A TRL trainer built and checked, not yet trained."""

    trainer: Any
    recorder: Any  # the CheckpointRecorder registered on trainer
    examples: list[TrainingExample]  # what it trains on, in order; hashed into every checkpoint
    kind: str  # "adapter" or "model"
    title: str  # of the progress bar, e.g. "sft · medqa"
    resume_from: Path | None = None  # a checkpoint of this run to continue from (TrainRequest.resume_from)
    model_ref: str | None = None  # what adapters name as their base (for checkpoints saved before a resume)
    auto_batch_size: bool = True  # out-of-memory back-off (BatchBackoff)
    reference_forward: bool = False  # a reference model runs forward in every step (for the FLOP count)
    warmup_steps: int = 1  # optimizer steps left out of the tokens/s and MFU figures
    meter: Any = None  # the medbench.throughput meter, once run() has attached it
    backoff: Any = None  # the BatchBackoff, once run() has started

    def run(self) -> list[CheckpointInfo]:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        from medbench.progress import trainer_progress_callback
        from medbench.throughput import throughput_meter
        from medbench.trainers.callbacks import nonfinite_guard, rank_agreement
        from medbench.training import TrainingDiverged

        # One rich bar instead of the Trainer's tqdm bar and the dict it prints at every log.
        self.trainer.remove_callback(ProgressCallback)
        self.trainer.remove_callback(PrinterCallback)
        progress = trainer_progress_callback(self.title)
        self.trainer.add_callback(progress)
        guard = nonfinite_guard()
        self.trainer.add_callback(guard)
        ranks = rank_agreement()
        self.trainer.add_callback(ranks)
        self.meter = throughput_meter(warmup_steps=self.warmup_steps, reference_forward=self.reference_forward)
        self.meter.attach(self.trainer)
        try:
            earlier = self._earlier_checkpoints()
            output = self._train(progress)
        finally:
            self.meter.detach()  # else a reference cycle keeps the trainer and its model alive (ThroughputMeter)
        data_hash = examples_hash(self.examples)
        saved = earlier + self.recorder.saved
        if guard.failure is not None:  # nothing was saved at or after the failing step
            step, what = guard.failure
            drop_resume_state(self.trainer.args.output_dir)  # a diverged run is not resumed: keep the weights only
            raise TrainingDiverged(step, what, [CheckpointInfo(path=path, kind=self.kind, step=s, data_hash=data_hash,
                                                               metrics=metrics) for s, path, metrics in saved])
        drop_resume_state(self.trainer.args.output_dir)  # finished: nothing left to resume
        last = len(saved) - 1
        final = {**output.metrics, **({"rank_weights_hashes": ranks.hashes} if ranks.hashes else {})}
        return [CheckpointInfo(path=path, kind=self.kind, step=step, final=i == last, data_hash=data_hash,
                               metrics={**metrics, **(final if i == last else {})})
                for i, (step, path, metrics) in enumerate(saved)]

    def _train(self, progress: Any) -> Any:
        """trainer.train(), with the out-of-memory back-off (BatchBackoff) around it."""
        self.backoff = backoff = BatchBackoff(self.trainer, self.auto_batch_size)
        backoff.take_snapshot()
        resume_from = self.resume_from
        while True:
            try:
                return self.trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            except BaseException as exc:
                # The Trainer does not end its callbacks when training raises: take the bar off the screen.
                progress.on_train_end(self.trainer.args, self.trainer.state, self.trainer.control)
                if not backoff.enabled or not is_out_of_memory(exc):
                    raise
                backoff.shrink(exc)
                if self.recorder.saved:  # this attempt saved a checkpoint: go on from it
                    resume_from = self.recorder.saved[-1][1]
                else:
                    backoff.restore_snapshot()

    def _earlier_checkpoints(self) -> list[tuple[int, Path, dict[str, float]]]:
        """When resuming: the checkpoints saved before, up to the one resumed from, with the train metrics the
        Trainer logged at their step (from the resumed checkpoint's trainer_state.json)."""
        if self.resume_from is None:
            return []
        from medbench.run_dirs import complete_checkpoints

        state = _checkpoint_json(Path(self.resume_from) / "trainer_state.json")
        logged = {entry.get("step"): entry for entry in state.get("log_history", [])}
        out = []
        for step, path in complete_checkpoints(Path(self.resume_from).parent):
            if step <= state["global_step"]:
                if self.model_ref:
                    finish_checkpoint(path, self.model_ref)  # in case the kill came between its save and on_save
                metrics = {k: v for k, v in logged.get(step, {}).items() if isinstance(v, (int, float)) and k != "step"}
                out.append((step, path, metrics))
        return out
