"""Shared-prompt preference batches: each pair's prompt runs through the model once, not twice.

TRL's DPOTrainer scores B pairs as 2B rows, ``prompt + chosen`` then ``prompt + rejected``, so every prompt is
computed twice per forward (and the reference pass repeats it). Medical MCQ prompts run to 100-300 tokens against
answers of a few, so about half of every step is a second copy of work already done. Here each pair is one row::

    prompt · chosen · prompt[-1] · rejected

under a block mask: the prompt and the chosen tokens are causal as usual; the rejected tokens see the prompt without
its last token, a copy of that last token, and their own earlier tokens, never the chosen ones. The copy has the
last prompt token's position id, so its key and value equal the original's, and it predicts the first rejected
token as the original predicts the first chosen one; the rejected part's positions continue from the prompt. Each
token so sees exactly what it sees in its own row: per-token log-probs (and their gradients) equal the two-row
form's up to float reassociation (tests/test_shared_prompt.py).

The packed row is built inside the model's forward, behind TRL's fused LM head (``trl.trainer.utils.
add_fused_lm_head``), from the ``[chosen; rejected]`` batch TRL collates; the per-token outputs are put back in
that layout, so TRL's losses, metrics and reference pass run unchanged. Where a custom mask cannot express this
(flash-attention, sliding-window or mixture-of-experts models) nothing is installed; a batch whose two rows of a
pair do not share their prompt tokens (e.g. truncated from the left), or a call with inputs beyond ids and mask,
runs in the two-row form. ``sharing_counts(model)`` says how many forwards ran each way.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from medbench.block_masks import as_attention_mask, unsupported_reason

__all__ = ["with_shared_prompts", "install_shared_prompt", "sharing_counts", "pack_pairs", "unsupported_reason",
           "PackedPairs"]

IGNORE = -100
ROW_INPUTS = ("input_ids", "attention_mask", "use_cache")  # a call with any other input runs in two rows
_COUNTS = "_medbench_shared_prompt_counts"


@dataclass
class PackedPairs:
    input_ids: Any  # [B, P] one row per pair
    position_ids: Any  # [B, P]
    attention_mask: Any  # [B, 1, P, P]: bool (sdpa) or additive float (eager)
    shift_labels: Any  # [B, P]: the label each position predicts, IGNORE where none
    gather: Any  # [2B, L-1]: for each position of TRL's shifted two-row layout, its index in the flattened packed rows
    valid: Any  # [2B, L-1]: whether that position has a packed counterpart (the others are zero, as TRL's are)


def _row_spans(ids: list[list[int]], mask: list[list[int]], labels: list[list[int]]):
    """(length, prompt length) per row, or None if a row is not right-padded or has no completion token."""
    spans = []
    for row_mask, row_labels in zip(mask, labels):
        length = sum(row_mask)
        if row_mask[:length] != [1] * length:
            return None
        start = next((i for i, label in enumerate(row_labels[:length]) if label != IGNORE), None)
        if not start:  # no completion token, or no prompt token to predict the first one
            return None
        spans.append((length, start))
    return spans


def pack_pairs(input_ids, attention_mask, labels, attention: str, dtype) -> PackedPairs | None:
    """The packed form of TRL's ``[chosen; rejected]`` batch (module docstring), or None if its pairs do not share
    their prompts."""
    import torch

    rows, width = input_ids.shape
    if rows % 2 or attention_mask is None or attention_mask.dim() != 2:
        return None
    ids, mask, labs = input_ids.tolist(), attention_mask.tolist(), labels.tolist()
    spans = _row_spans(ids, mask, labs)
    if spans is None:
        return None
    pairs = rows // 2
    packed_ids, positions, shift_labels, chosen_ends, prompts = [], [], [], [], []
    gather = [[0] * (width - 1) for _ in range(rows)]
    valid = [[False] * (width - 1) for _ in range(rows)]
    for i in range(pairs):
        (n_c, p), (n_r, p_r) = spans[i], spans[pairs + i]
        chosen, rejected = ids[i], ids[pairs + i]
        if p_r != p or chosen[:p] != rejected[:p]:
            return None
        packed_ids.append(chosen[:n_c] + [chosen[p - 1]] + rejected[p:n_r])
        positions.append(list(range(n_c)) + list(range(p - 1, n_r)))
        shift_labels.append(labs[i][1:n_c] + [IGNORE] + labs[pairs + i][p:n_r] + [IGNORE])
        chosen_ends.append(n_c)
        prompts.append(p)
        for t in range(n_c - 1):  # chosen: the same positions as in its own row
            gather[i][t], valid[i][t] = t, True
        for t in range(p - 1, n_r - 1):  # rejected: shifted past the chosen part, the copy standing at p - 1
            gather[pairs + i][t], valid[pairs + i][t] = n_c - p + 1 + t, True
    length = max(map(len, packed_ids))
    device = input_ids.device

    def padded(values: list[list[int]], fill: int):
        return torch.tensor([v + [fill] * (length - len(v)) for v in values], dtype=torch.long, device=device)

    index = torch.tensor(gather, dtype=torch.long, device=device)
    index = index + torch.arange(rows, device=device).remainder(pairs)[:, None] * length
    return PackedPairs(padded(packed_ids, 0), padded(positions, 0),
                       _block_mask(chosen_ends, prompts, [len(v) for v in packed_ids], length, attention, dtype,
                                   device),
                       padded(shift_labels, IGNORE), index, torch.tensor(valid, device=device))


def _block_mask(chosen_ends: list[int], prompts: list[int], lengths: list[int], width: int, attention: str, dtype,
                device):
    """Query j may see key k if k <= j and both lie in the same part, or j is a rejected token and k a prompt token
    other than the last; padding sees only itself (an empty row would give NaN in SDPA)."""
    import torch

    position = torch.arange(width, device=device)
    ends = torch.tensor(chosen_ends, device=device)[:, None]
    # 0: prompt and chosen, 1: the copy and rejected, 2: padding
    part = (position >= ends).long() + (position >= torch.tensor(lengths, device=device)[:, None]).long()
    shared = position < torch.tensor(prompts, device=device)[:, None] - 1  # the prompt without its last token
    query, key = part[:, :, None], part[:, None, :]
    allowed = (position[None, None, :] <= position[None, :, None]) & (
        (query == key) | ((query == 1) & shared[:, None, :]))
    allowed &= (query != 2) | (position[None, None, :] == position[None, :, None])
    return as_attention_mask(allowed[:, None], attention, dtype)


def _unpack(value, packed: PackedPairs):
    import torch

    if value is None:
        return None
    picked = value.reshape(-1)[packed.gather.reshape(-1)].view(packed.gather.shape)
    return torch.where(packed.valid, picked, torch.zeros((), dtype=picked.dtype, device=picked.device))


def install_shared_prompt(model: Any) -> str | None:
    """Score ``model``'s fused-head forwards (``fused_lm_head=True``, after TRL's ``add_fused_lm_head``) in packed
    rows; returns why not when the model cannot be (nothing is installed then). Installing twice is a no-op."""
    if hasattr(model, _COUNTS):
        return None
    reason = unsupported_reason(model)
    if reason is not None:
        return reason
    fused_forward = model.forward
    counts = {"packed": 0, "two_rows": 0}
    setattr(model, _COUNTS, counts)

    @functools.wraps(fused_forward)
    def forward(*args, fused_lm_head=False, labels=None, **kwargs):
        extra = {k for k, v in kwargs.items() if v is not None and k not in ROW_INPUTS}
        packed = None
        if fused_lm_head and labels is not None and not args and not extra and kwargs.get("input_ids") is not None:
            packed = pack_pairs(kwargs["input_ids"], kwargs.get("attention_mask"), labels,
                                model.config._attn_implementation, model.get_input_embeddings().weight.dtype)
        if packed is None:
            if fused_lm_head:
                counts["two_rows"] += 1
            return fused_forward(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)
        counts["packed"] += 1
        outputs = fused_forward(input_ids=packed.input_ids, attention_mask=packed.attention_mask,
                                position_ids=packed.position_ids, shift_labels=packed.shift_labels, fused_lm_head=True,
                                use_cache=False)
        per_token = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")
        values = {field.name: getattr(outputs, field.name) for field in dataclasses.fields(outputs)}
        values.update({name: _unpack(values.get(name), packed) for name in per_token if name in values})
        return type(outputs)(**values)

    model.forward = forward
    return None


def sharing_counts(model: Any) -> dict[str, int] | None:
    """How many fused forwards ran packed and how many in two rows since install, or None if not installed."""
    return getattr(model, _COUNTS, None)


def with_shared_prompts(trainer_class):
    """``trainer_class`` (TRL's DPOTrainer, or one with its ``[chosen; rejected]`` batches and fused LM head) with
    its policy, and a separate reference model if it has one, scoring in packed rows from the first forward on (the
    reference pass inside ``__init__`` included). ``shared_prompt_share()`` is the share of the policy's fused
    forwards that ran packed; a model that cannot be packed is reported once, as a warning, and trains as before."""

    class SharedPromptTrainer(trainer_class):
        _shared_prompt_ready = False

        def _share_prompts(self):
            if self._shared_prompt_ready:
                return
            self._shared_prompt_ready = True
            reasons = {install_shared_prompt(model) for model in self._shared_prompt_models()} - {None}
            if reasons:
                import warnings

                warnings.warn(f"shared-prompt pairs are off: {'; '.join(sorted(reasons))}; each pair runs as two "
                              "rows", stacklevel=3)

        def _shared_prompt_models(self):
            policy = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            return [policy] + ([self.ref_model] if getattr(self, "ref_model", None) is not None else [])

        def shared_prompt_share(self) -> float | None:
            counts = sharing_counts(self._shared_prompt_models()[0])
            calls = counts and counts["packed"] + counts["two_rows"]
            return counts["packed"] / calls if calls else None

        def _precompute_ref_logps(self, *args, **kwargs):
            self._share_prompts()
            return super()._precompute_ref_logps(*args, **kwargs)

        def _compute_loss(self, *args, **kwargs):
            self._share_prompts()
            return super()._compute_loss(*args, **kwargs)

    return SharedPromptTrainer
