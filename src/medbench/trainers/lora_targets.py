"""``--lora-target-modules`` and ``--lora-r`` checked against the loaded model before training: PEFT's own error
for names that match nothing comes from deep inside the trainer plugin and reads as a bug in medbench; this one
lists the names the model has."""

from __future__ import annotations

from typing import Any

from medbench.errors import MedbenchError


def check_lora_targets(model: Any, method: str, targets: list[str] | None) -> None:
    """Refuse targets of which none names a module of ``model`` (PEFT's rule for a list: the module's full name, or
    its last dotted parts)."""
    if method == "full" or not targets:
        return
    import torch

    names = [name for name, _ in model.named_modules() if name]
    if any(name == target or name.endswith(f".{target}") for target in targets for name in names):
        return
    head = getattr(model, "get_output_embeddings", lambda: None)()  # "all-linear" leaves the output head out too
    linear = sorted({name.rpartition(".")[2] for name, module in model.named_modules()
                     if isinstance(module, torch.nn.Linear) and name and module is not head})
    shown = ", ".join(linear[:12]) + (", ..." if len(linear) > 12 else "")
    raise MedbenchError(f"--lora-target-modules {','.join(targets)} names no module of the model",
                        f"pass some of its linear modules ({shown}), or leave the option out for all of them")


def check_lora_rank(model: Any, method: str, rank: int) -> None:
    """Refuse a rank above the widest side of every linear layer: it adds no capacity, and an absurd one (a mistyped
    --lora-r 4000000000) would otherwise end in an out-of-memory crash when PEFT allocates the adapters."""
    if method == "full":
        return
    import torch

    widest = max((max(module.in_features, module.out_features) for module in model.modules()
                  if isinstance(module, torch.nn.Linear)), default=0)
    if widest and rank > widest:
        raise MedbenchError(f"--lora-r {rank} is larger than any layer of the model (the widest has {widest} features)"
                            ": a rank above a layer's size adds no capacity", "pass --lora-r 16, say (8-64 is usual)")
