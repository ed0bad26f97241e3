"""What training costs per token and what a device can do: model FLOPs per token and peak FLOP/s, the two figures
medbench.throughput divides by to turn measured tokens/s into MFU. Pure arithmetic on a model, a config or a device
name: nothing is timed here.

* **FLOPs per token** follow the usual dense-transformer estimate: the forward pass costs 2 FLOPs per weight,
  the backward pass 2 for the gradient with respect to the activations (every weight, frozen or not, since the
  gradient must flow through it to reach the trainable ones) and 2 more for the gradient with respect to the weight
  (trainable weights only). So ``6 N_trainable + 4 N_frozen``: 6N for full fine-tuning, about 4N for LoRA.
  N counts the weights a token is multiplied by: every parameter except the input embedding table, which is a
  lookup (a tied output head shares that table and is counted once). A reference forward pass inside each step
  (DPO without precomputed reference log-probs) adds 2 FLOPs per reference weight. Attention's own matmuls
  (``12 x layers x hidden x context`` per token for forward + backward, after PaLM, appendix B) are left out by
  default, as in the anchors' figures; the meter's ``include_attention=True`` adds them, with each sequence's own
  length as its context.
* **Peak FLOP/s** come from ``MEDBENCH_PEAK_TFLOPS`` (per device, in TFLOP/s) when set, else from
  :data:`PEAK_TFLOPS`, nominal dense (no sparsity) tensor-core figures from the vendors' data sheets for the
  training dtype. On a CPU, or an accelerator not in the table, there is no peak unless the variable is set. Note
  that the nominal peak is not reachable: on an H100 SXM a bf16 dense matmul measured ~800 of the nominal 989
  TFLOP/s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

PEAK_ENV = "MEDBENCH_PEAK_TFLOPS"

# Nominal dense peak TFLOP/s per device: (bf16/fp16 tensor cores, fp32 without TF32). The first name contained in
# torch.cuda.get_device_name() wins, so the more specific names come first.
PEAK_TFLOPS: list[tuple[str, float, float]] = [
    ("GH200", 989.0, 67.0),
    ("H200", 989.0, 67.0),
    ("H100 PCIe", 756.0, 51.0),
    ("H100 NVL", 835.0, 60.0),
    ("H100", 989.0, 67.0),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("B200", 2250.0, 80.0),
    ("A100", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L40", 181.0, 90.5),
    ("L4", 121.0, 30.3),
    ("A10G", 70.0, 31.2),
    ("A10", 125.0, 31.2),
    ("V100", 125.0, 15.7),  # fp16 (no bf16)
    ("T4", 65.0, 8.1),  # fp16 (no bf16)
]


def peak_flops(device: Any = None, dtype: Any = None) -> tuple[float | None, str]:
    """Peak FLOP/s of one device for training in ``dtype``, and where the figure comes from.

    ``MEDBENCH_PEAK_TFLOPS`` wins; then the table for a CUDA device; else ``(None, reason)``.
    """
    override = os.environ.get(PEAK_ENV)
    if override:
        try:
            value = float(override)
        except ValueError:
            value = 0.0
        if value > 0:
            return value * 1e12, f"{PEAK_ENV}={override}"
    import torch

    device = torch.device(device) if device is not None else None
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return None, f"no peak known for {device.type if device is not None else 'this device'} (set {PEAK_ENV})"
    name = torch.cuda.get_device_name(device)
    low_precision = dtype in (torch.bfloat16, torch.float16)
    for key, half, single in PEAK_TFLOPS:
        if key.lower() in name.lower():
            value = half if low_precision else single
            return value * 1e12, f"{name}, {'bf16/fp16' if low_precision else 'fp32'} dense, nominal {value:g} TFLOP/s"
    return None, f"{name} is not in medbench.flops.PEAK_TFLOPS (set {PEAK_ENV})"


@dataclass
class ParameterCounts:
    total: int  # every parameter
    trainable: int  # with requires_grad
    matmul_trainable: int  # trainable and multiplied with every token (the input embedding table excluded)
    matmul_frozen: int  # frozen and multiplied with every token

    @property
    def matmul(self) -> int:
        return self.matmul_trainable + self.matmul_frozen


def _numel(param: Any) -> int:
    # bitsandbytes packs two 4-bit weights per byte: its Params4bit report the unpacked count in quant_state.shape
    state = getattr(param, "quant_state", None)
    shape = getattr(state, "shape", None)
    if shape is not None:
        count = 1
        for size in shape:
            count *= int(size)
        return count
    return param.numel()


def parameter_counts(model: Any) -> ParameterCounts:
    """Parameter counts for the FLOP estimate (see the module docstring). Works on PEFT-wrapped models."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    lookup_ids: set[int] = set()
    get_in = getattr(base, "get_input_embeddings", None)
    get_out = getattr(base, "get_output_embeddings", None)
    embedding = get_in() if callable(get_in) else None
    head = get_out() if callable(get_out) else None
    if embedding is not None and getattr(embedding, "weight", None) is not None:
        tied = head is not None and getattr(head, "weight", None) is not None and \
            head.weight.data_ptr() == embedding.weight.data_ptr()
        if not tied:
            lookup_ids.add(id(embedding.weight))
    total = trainable = matmul_trainable = matmul_frozen = 0
    seen: set[int] = set()
    for param in model.parameters():
        if id(param) in seen:  # tied weights appear once
            continue
        seen.add(id(param))
        count = _numel(param)
        total += count
        if param.requires_grad:
            trainable += count
        if id(param) in lookup_ids:
            continue
        if param.requires_grad:
            matmul_trainable += count
        else:
            matmul_frozen += count
    return ParameterCounts(total, trainable, matmul_trainable, matmul_frozen)


def flops_per_token(counts: ParameterCounts, reference_forward: bool = False, peft: bool = False) -> float:
    """Training FLOPs per token: 6 per trainable weight, 4 per frozen one, plus 2 per reference weight when a
    reference model runs forward in every step (with PEFT the reference is the base with the adapter disabled)."""
    flops = 6.0 * counts.matmul_trainable + 4.0 * counts.matmul_frozen
    if reference_forward:
        flops += 2.0 * (counts.matmul_frozen if peft else counts.matmul)
    return flops


def attention_flops_per_sequence(config: Any, length: int) -> float:
    """Forward + backward FLOPs of the attention score and value matmuls for one sequence of ``length`` tokens:
    12 x layers x (heads x head_dim) x length per token (no saving for the causal half), so x length**2 in all."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(config, "num_hidden_layers", 0) or 0
    heads = getattr(config, "num_attention_heads", 0) or 0
    head_dim = getattr(config, "head_dim", None) or ((getattr(config, "hidden_size", 0) or 0) // max(heads, 1))
    return 12.0 * layers * heads * head_dim * float(length) ** 2
