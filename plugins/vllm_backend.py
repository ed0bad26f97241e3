"""``vllm``: score a local Hugging Face model with vLLM on GPUs, through lm-eval's own ``vllm`` model type.

``--backend vllm --model DIR_OR_HUB_ID [--tensor-parallel N] [--data-parallel M]``; install with
``pip install 'medbench[vllm]'``. The model is identified by the content hashes of its directory's files
(medbench.weights_identity.directory_identity) and the load dtype, so a record is reused exactly as for an
in-process model (the backend and its parallelism are part of the record's options: vLLM's numerics differ
slightly from transformers').
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from medbench import hookimpl
from medbench.backends import Backend
from medbench.errors import MedbenchError
from medbench.weights_identity import directory_identity

OPTIONS = ("tensor_parallel", "data_parallel", "dtype", "max_model_len", "gpu_memory_utilization", "max_gen_toks")


def refusal() -> str | None:
    """Why vLLM cannot run here, or None."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed"
    import torch

    if not torch.cuda.is_available():
        return "this machine has no CUDA GPU"
    return None


def local_weights(ref: str) -> Path:
    """The directory vLLM loads: a local HF directory, or a hub id from the local cache (downloaded with --online)."""
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.exists() or ref.endswith(".gguf"):
        raise MedbenchError(f"--backend vllm needs a Hugging Face model directory with config.json; {ref} is not one",
                            "merge adapters first (`medbench train --plugin merge`), or score it in-process")
    from medbench.models import hub_snapshot

    return hub_snapshot(ref)


def _int(options: dict[str, Any], name: str, default: int) -> int:
    try:
        value = int(options.get(name) or default)
    except ValueError:
        value = 0
    if value < 1:
        raise MedbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {options.get(name)!r}",
                            f"pass --{name.replace('_', '-')} 1 or more")
    return value


class VLLMBackend:
    name = "vllm"
    description = "vLLM on CUDA GPUs (lm-eval's vllm model type): --backend vllm --tensor-parallel N --data-parallel M"

    def open(self, ref: str, options: dict[str, Any], *, batch_size: int = 8, seed: int = 1234,
             progress: Any = None) -> Backend:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise MedbenchError(f"backend 'vllm' has no option {', '.join(unknown)}",
                                f"its options are {', '.join(OPTIONS)} (see docs/backends.md)")
        tensor_parallel, data_parallel = _int(options, "tensor_parallel", 1), _int(options, "data_parallel", 1)
        reason = refusal()
        if reason:
            raise MedbenchError(f"--backend vllm cannot run here: {reason}",
                                "on a CUDA machine `pip install 'medbench[vllm]'`, or drop --backend to score "
                                "in-process")
        if data_parallel > 1 and importlib.util.find_spec("ray") is None:
            raise MedbenchError("--data-parallel above 1 runs vLLM replicas through ray, which is not installed",
                                "pip install 'medbench[vllm]' (it brings ray), or pass --data-parallel 1")
        directory = local_weights(ref)
        if not any(directory.glob("*.safetensors")):
            raise MedbenchError(f"{directory} has no *.safetensors weights", "save the model with safetensors")
        model_hash = directory_identity(directory, f"vllm|dtype={options.get('dtype') or 'auto'}")
        if model_hash is None:
            raise MedbenchError(f"the weights in {directory} changed while they were hashed",
                                "let the save finish, then run again")
        from lm_eval.models.vllm_causallms import VLLM

        extra = {k: options[k] for k in ("max_model_len", "gpu_memory_utilization") if options.get(k)}
        lm = VLLM(pretrained=str(directory), dtype=options.get("dtype") or "auto", batch_size="auto", seed=seed,
                  tensor_parallel_size=tensor_parallel, data_parallel_size=data_parallel,
                  max_gen_toks=int(options.get("max_gen_toks") or 256), **extra)
        info = {"backend": self.name, "ref": ref, "kind": "hf-dir", "path": str(directory), "base_ref": None,
                "weights_hash": model_hash, "parameters": None,
                "parallel": {"tensor": tensor_parallel, "data": data_parallel}}
        return Backend(lm, ref, info, model_hash, chat_template=True)


@hookimpl
def register_backends(register):
    register(VLLMBackend())
