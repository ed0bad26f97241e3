"""TRL's fused LM head, projecting only the positions that carry a label on every device.

TRL's trainers (SFT, DPO and the rest) score tokens through ``trl.trainer.utils.add_fused_lm_head``: the backbone's
hidden states go through the output head in vocabulary tiles, never materialising the full logits. On CUDA/XPU
with Triton it projects only the positions whose label is not -100 (``compact``); elsewhere it projects every
position and zeroes the ignored ones afterwards, because on compiled backends (Neuron, XLA) a token count that
changes from batch to batch would recompile the tiles. An eager CPU compiles nothing, so that guard only costs
time there: with a few answer tokens after a 100-300 token prompt, the head (576 x 49,152 for SmolLM2-135M, about
a fifth of the forward) and its log-softmax, entropy and backward ran on every prompt position for nothing.

``project_labelled_positions_only()`` turns TRL's own compact path on for CPU too. The outputs are TRL's compact
ones, which TRL already produces on every GPU: the same per-token values, placed back with ``masked_scatter``
(tests/test_fused_head.py checks losses and gradients against the full projection). The switch is TRL's device
predicate, a private name; where a TRL release lacks it, nothing changes and training runs as before.
"""

from __future__ import annotations

import functools

__all__ = ["project_labelled_positions_only", "labelled_positions_only"]

COMPACT_DEVICES = ("cpu",)  # eager devices where a varying token count costs nothing (no tile recompilation)
_MARK = "_medbench_compact_on"


def project_labelled_positions_only() -> bool:
    """Make TRL's fused head project only labelled positions on the CPU as it does on Triton devices; True if it
    now does (idempotent), False where this TRL has no such switch."""
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    triton_only = getattr(trl_utils, "_use_triton", None)
    if triton_only is None:
        return False
    if getattr(triton_only, _MARK, False):
        return True

    @functools.wraps(triton_only)  # __wrapped__: TRL's own predicate
    def use_compact(device) -> bool:
        return device.type in COMPACT_DEVICES or triton_only(device)

    setattr(use_compact, _MARK, True)
    trl_utils._use_triton = use_compact
    return True


def labelled_positions_only(device) -> bool:
    """Whether TRL's fused head projects only labelled positions on ``device`` in this process."""
    import torch

    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    predicate = getattr(trl_utils, "_use_triton", None)
    return bool(predicate and predicate(torch.device(device)))
