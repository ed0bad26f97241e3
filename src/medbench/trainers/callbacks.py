"""The transformers TrainerCallbacks every TRL-based trainer runs with (medbench.trainers.run.PreparedRun adds them):
the guard that stops at a non-finite loss, and the check that data-parallel ranks end with the same weights.
Their findings go back through medbench.training: TrainingDiverged, and ``rank_weights_hashes`` in the final
checkpoint's metrics."""

from __future__ import annotations

from typing import Any


def rank_agreement():
    """A TrainerCallback that, at the end of distributed training, hashes every rank's trainable weights and
    gathers the hashes on all ranks (``.hashes``, rank order). Data-parallel ranks must end with equal weights: a
    trainer puts the hashes in its final checkpoint's metrics as ``rank_weights_hashes``, and the engine records
    them in the run manifest and refuses to score a run whose ranks disagree."""
    import hashlib

    from transformers import TrainerCallback

    class RankAgreement(TrainerCallback):
        hashes: list[str] | None = None

        def on_train_end(self, args, state, control, model=None, **kwargs):
            import torch.distributed as dist

            if model is None or not (dist.is_available() and dist.is_initialized()):
                return
            digest = hashlib.blake2b(digest_size=8)
            for name, param in sorted(model.named_parameters()):
                if param.requires_grad:
                    digest.update(name.encode())
                    digest.update(param.detach().float().cpu().numpy().tobytes())
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, digest.hexdigest())
            self.hashes = [str(h) for h in gathered]

    return RankAgreement()


def nonfinite_guard():
    """A transformers TrainerCallback that stops training at the first step whose weights (after the optimizer
    step) or logged loss are NaN or infinite, and makes sure that step is never saved. ``.failure`` is then
    ``(step, what)``. Every TRL-based trainer gets it (medbench.trainers.run.PreparedRun)."""
    import math

    import torch
    from transformers import TrainerCallback

    class NonFiniteGuard(TrainerCallback):
        def __init__(self):
            self.failure: tuple[int, str] | None = None

        def _stop(self, state, control, what: str) -> None:
            if self.failure is None:
                self.failure = (state.global_step, what)
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False

        def on_step_end(self, args, state, control, model=None, **kwargs):
            params = [p for p in model.parameters() if p.requires_grad] if model is not None else []
            if params and not bool(torch.stack([torch.isfinite(p.detach()).all() for p in params]).all()):
                self._stop(state, control, "the weights became NaN or infinite at the optimizer step")
                control.should_log = True  # log the step, so the loss that caused it is reported
            elif self.failure is not None:
                self._stop(state, control, self.failure[1])

        def on_log(self, args, state, control, logs=None, **kwargs):
            bad = {k: v for k, v in (logs or {}).items() if k in ("loss", "grad_norm") and isinstance(v, float)
                   and not math.isfinite(v)}
            if bad:
                shown = ", ".join(f"{k} {v}" for k, v in bad.items())
                if self.failure is not None and self.failure[0] == state.global_step:
                    self.failure = (self.failure[0], f"{shown} (the weights became NaN or infinite)")
                self._stop(state, control, shown)

        def on_epoch_end(self, args, state, control, **kwargs):
            if self.failure is not None:
                self._stop(state, control, self.failure[1])

    return NonFiniteGuard()
