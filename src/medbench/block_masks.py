"""Several sequences in one row under a block attention mask: what the models can take one, and the mask's form.

Two of medbench's fast paths lay related sequences end to end in one row and let each token attend only to what it
would see in its own sequence: DPO's preference pairs (medbench.trainers.shared_prompt) and the evaluation scorer's
multi-token answer choices (medbench.fastlm). Both need an attention implementation that takes an arbitrary 4D
mask, and a model whose layers read no other mask.
"""

from __future__ import annotations

from typing import Any

MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take an arbitrary 4D mask


def unsupported_reason(model: Any) -> str | None:
    """Why a row of several sequences under a block mask cannot be scored exactly on ``model``, or None."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    attention = getattr(config, "_attn_implementation", None)
    if attention not in MASKED_ATTENTION:
        return f"attention {attention!r} takes no custom mask (sdpa or eager do)"
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    if any(kind != "full_attention" for kind in getattr(text, "layer_types", None) or []) or (
            getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True)):
        return "sliding-window attention (the mask would replace the window)"
    if any(getattr(text, name, None) for name in ("num_experts", "num_local_experts", "output_router_logits")):
        return "a mixture-of-experts model (its load-balancing loss reads a 2D mask)"
    return None


def as_attention_mask(allowed: Any, attention: str, dtype: Any) -> Any:
    """``allowed`` ([B, 1, Q, K] bool, True where a query may see a key) in the form ``attention`` takes: as is for
    SDPA, additive (0 or the dtype's minimum) for eager."""
    import torch

    if attention == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)
