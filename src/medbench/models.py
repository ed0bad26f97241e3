"""Resolve a model reference into a loaded model and tokenizer.

A reference is whatever the user typed after ``--model``: a hub id, a local HF directory, a PEFT adapter
directory, a ``.gguf`` file, or a registered name such as ``smollm2-135m-instruct``. Loaders come from the
``register_model_loaders`` hook; the one with the highest priority whose ``can_load`` accepts the
reference loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from medbench.errors import MedbenchError
from medbench.plugin_calls import plugin_call
from medbench.registries import named_registry

DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """Where medbench keeps converted models: ``$MEDBENCH_CACHE`` or ``~/.cache/medbench``."""
    root = os.environ.get("MEDBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medbench"
    return Path(root)


def hub_online() -> bool:
    """medbench is offline unless the user cleared HF_HUB_OFFLINE (the CLI sets it unless --online)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes", "on")


def hub_snapshot(ref: str, allow_patterns: list[str] | None = None) -> Path:
    """The local directory of hub model ``ref``: downloaded when online, else found in the local hub cache; a miss
    is one line saying which of the two it was (for model loaders and backends alike)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref, allow_patterns=allow_patterns, local_files_only=not hub_online()))
    except LocalEntryNotFoundError:
        raise MedbenchError(f"model {ref!r} is not in the local hub cache and medbench is offline",
                            "pass --online on a networked machine, or give a local directory") from None
    except Exception as exc:  # noqa: BLE001 - any other hub failure gets the same one-line fix
        raise MedbenchError(f"model {ref!r} could not be fetched from the hub ({type(exc).__name__})",
                            "check the id and your network, or give a local directory") from None


@dataclass
class LoadOptions:
    dtype: str = "auto"  # auto: bf16 on a GPU that supports it, else fp32
    device: str = "auto"  # auto: cuda if available, else cpu
    trust_remote_code: bool = False
    merge_adapter: bool = False  # fold a PEFT adapter into its base after loading


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    ref: str
    kind: str
    path: str | None = None
    base_ref: str | None = None  # for adapters: the reference of the base model
    details: dict[str, Any] = field(default_factory=dict)
    # Every file the model and tokenizer were built from, in a fixed order (medbench.weights_identity): hashed, they
    # identify the model while it is unchanged in memory. Empty: the model's tensors are hashed instead.
    source_files: tuple[str, ...] = ()
    _load_state: Any = field(default=None, init=False, repr=False, compare=False)  # set by resolve_model


class ModelLoader(Protocol):
    name: str
    priority: int

    def can_load(self, ref: str) -> bool: ...

    def load(self, ref: str, options: LoadOptions) -> LoadedModel: ...

    def describe(self) -> list[dict[str, Any]]: ...


def loaders_by_plugin() -> list[tuple[str, ModelLoader]]:
    """(plugin name, loader), highest priority first: a named registry like the others (a second loader of a
    name already taken is skipped with a warning naming both plugins)."""
    found = named_registry("register_model_loaders", "model loader", ("name", "priority", "can_load", "load"))
    return sorted(((loader.plugin, loader) for loader in found.values()), key=lambda pair: -pair[1].priority)


def model_loaders() -> list[ModelLoader]:
    return [loader for _, loader in loaders_by_plugin()]


def _checked_reference(ref: str | None) -> str:
    from medbench.adapter_files import check_adapter_config

    if ref is not None and not str(ref).strip():  # an empty --model is a slip, not a request for the default
        raise MedbenchError("the model reference is empty",
                            f"pass --model a checkpoint folder or a name from `medbench models`, or leave it out "
                            f"for {DEFAULT_MODEL}")
    ref = ref or DEFAULT_MODEL
    check_adapter_config(ref)  # a copied adapter folder's config, vetted before any loader parses it
    return ref


def check_reference(ref: str | None) -> None:
    """What :func:`resolve_model` would refuse about ``ref``, without loading it: an empty reference, or one that no
    loader accepts (a path that does not exist, an unknown name). A command calls it before it makes anything."""
    ref = _checked_reference(ref)
    for plugin, loader in loaders_by_plugin():
        with plugin_call(plugin, f"model loader {loader.name!r}"):
            if loader.can_load(ref):
                return
    _refuse_unloadable(ref)


def resolve_model(ref: str | None, options: LoadOptions | None = None) -> LoadedModel:
    """Load ``ref`` (default: the embedded model) with the first loader that accepts it."""
    from medbench.weights_identity import remember_load_state

    ref = _checked_reference(ref)
    options = options or LoadOptions()
    for plugin, loader in loaders_by_plugin():
        with plugin_call(plugin, f"model loader {loader.name!r}"):
            if not loader.can_load(ref):
                continue
            loaded = loader.load(ref, options)
            if not isinstance(loaded, LoadedModel):  # the plugin's fault, named here rather than as a crash later
                raise TypeError(f"load() returned {type(loaded).__name__}, not medbench.models.LoadedModel")
        remember_load_state(loaded)
        return loaded
    _refuse_unloadable(ref)


def _refuse_unloadable(ref: str) -> NoReturn:
    path = Path(ref).expanduser()
    if path.is_dir():  # it exists, but no loader recognises what is inside
        what = "is empty" if not any(path.iterdir()) else "has no config.json (model) nor adapter_config.json (adapter)"
        raise MedbenchError(f"model directory {ref!r} {what}",
                            "point --model at a saved checkpoint (config.json + *.safetensors), a PEFT adapter "
                            "directory or a .gguf file")
    if path.is_file():
        raise MedbenchError(f"model file {ref!r} is not a .gguf file",
                            "give a .gguf file, or the directory of a saved checkpoint")
    if "/" in ref or ref.startswith((".", "~")) or Path(ref).suffix:
        raise MedbenchError(f"model path {ref!r} does not exist",
                            "check the path, or run `medbench models` to list what resolves")
    raise MedbenchError(f"unknown model {ref!r}", "run `medbench models` to list the references that resolve")


DEVICE_FIX = "use --device auto, cpu, cuda, cuda:N or mps"


def check_device(device: str) -> str:
    """``device`` if this machine has it; otherwise a one-line error (before any model is loaded)."""
    if device == "auto":
        return device
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise MedbenchError(f"unknown device {device!r}", DEVICE_FIX) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MedbenchError(f"--device {device} but no CUDA GPU is visible here",
                                "use --device cpu (or auto, which picks a GPU when there is one)")
        if parsed.index is not None and parsed.index >= count:
            raise MedbenchError(f"--device {device} but only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1})",
                                f"use --device cuda:0 .. cuda:{count - 1}, or auto")
    elif parsed.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise MedbenchError(f"--device {device} but MPS (Apple GPU) is not available here", "use --device cpu or auto")
    elif parsed.type != "cpu":
        raise MedbenchError(f"device {device!r} is not supported by medbench", DEVICE_FIX)
    return device


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return check_device(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


# Beyond the weights, what a GPU needs to score on them: CUDA's context, activations, the KV cache of a generation.
GPU_RUN_HEADROOM = 2 << 30
WEIGHT_SLACK = 1.1  # buffers, layers that do not split evenly across GPUs


def plan_gpu_memory(weight_bytes: int, free_bytes: list[int]) -> dict[int, int] | None:
    """How much of each GPU a model of ``weight_bytes`` may take (a ``max_memory`` map for transformers'
    ``device_map="auto"``), or None when it fits the first GPU with room to run, as nearly every model does. A
    70B model on two 80 GB GPUs is spread over both; one that all the GPUs together cannot hold is refused in one
    line rather than a CUDA out-of-memory error (never offloaded to the CPU: scoring would crawl)."""
    need = int(weight_bytes * WEIGHT_SLACK)
    if not free_bytes or need + GPU_RUN_HEADROOM <= free_bytes[0]:
        return None
    usable = {index: max(0, free - GPU_RUN_HEADROOM) for index, free in enumerate(free_bytes)}
    if need > sum(usable.values()):
        gpus = f"the {len(free_bytes)} visible GPUs" if len(free_bytes) > 1 else "the one visible GPU"
        raise MedbenchError(f"the model's weights take {weight_bytes / 2**30:.1f} GiB, more than {gpus} hold free "
                            f"({sum(free_bytes) / 2**30:.1f} GiB, {GPU_RUN_HEADROOM >> 30} GiB of each kept to run)",
                            "run on more GPUs (--device auto spreads a model over all that are visible), or serve it "
                            "on the vllm backend with tensor_parallel (docs/backends.md)")
    return usable


def gpu_memory_map(path: str | Path, dtype: Any) -> dict[int, int] | None:
    """``plan_gpu_memory`` for the safetensors weights in directory ``path`` loaded as ``dtype``, on this machine's
    GPUs. None without CUDA, and under ``accelerate launch``, where every rank holds its own copy."""
    import torch

    from medbench.training import world_size

    if not torch.cuda.is_available() or world_size() > 1:
        return None
    stored = {"float32": 4, "float16": 2, "bfloat16": 2}
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        stored_size = stored.get(str(config.get("torch_dtype") or config.get("dtype")), 0)
    except (OSError, ValueError, AttributeError):
        stored_size = 0
    file_bytes = sum(file.stat().st_size for file in Path(path).glob("*.safetensors"))
    loaded_size = torch.empty((), dtype=dtype).element_size()
    weight_bytes = file_bytes * loaded_size // stored_size if stored_size else file_bytes
    return plan_gpu_memory(weight_bytes, [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())])


DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise MedbenchError(f"unknown dtype {dtype!r}", "use one of auto, bf16, fp16, fp32")
    return dtype


def require_chat_template(tokenizer: Any, ref: str, option: str = "--chat-template", missing_fix: str = "") -> None:
    """Scoring or training in the chat template needs a tokenizer that has one, of bounded size, that renders a
    question in time; say so instead of the tokenizer's ValueError or a stall."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise MedbenchError(f"{option}: model {ref!r} has no chat template (its tokenizer_config.json sets none)",
                            missing_fix or f"leave out {option} for this model, or use a chat/instruct model that "
                            "has one")
    size = len(template) if isinstance(template, str) else sum(len(str(t)) for t in template.values()) \
        if isinstance(template, dict) else 0
    fix = f"fix the chat_template in {ref}'s tokenizer_config.json (or chat_template.jinja), or leave out {option}"
    if size > MAX_CHAT_TEMPLATE_CHARS:  # real ones are a few KB; a huge one takes minutes to compile
        raise MedbenchError(f"{option}: the chat template of {ref!r} is {size:,} characters (more than "
                            f"{MAX_CHAT_TEMPLATE_CHARS:,})", fix)
    from jinja2 import TemplateError

    from medbench.task_trust import MAX_RENDER_SECONDS, time_limit

    try:  # one short conversation, under a time limit: a template that loops would stall every prompt
        with time_limit(MAX_RENDER_SECONDS):
            tokenizer.apply_chat_template([{"role": "user", "content": "?"}], tokenize=False,
                                          add_generation_prompt=True)
    except (TemplateError, OverflowError, RecursionError, MemoryError) as exc:
        raise MedbenchError(f"{option}: the chat template of {ref!r} cannot render a one-line question: it "
                            f"tried an operation Jinja's sandbox forbids, or looped or failed "
                            f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})", fix) from None


MAX_CHAT_TEMPLATE_CHARS = 1 << 20


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    check_dtype(dtype)
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
            "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Batch scoring and training need a pad token; reuse EOS, as most chat checkpoints expect."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def release_memory() -> None:
    """Free what a finished training run or sweep cell no longer uses.

    TRL patches a trained model's ``forward`` with a closure over the model: a cycle that only a full garbage
    collection frees, and Python runs those rarely in a large process. Then the allocators return what they cache:
    CUDA's, and glibc's heap, which otherwise keeps the gigabytes of activations a training step freed."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # never imported just for this
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def weights_hash(model: Any) -> str:
    """A content hash of every parameter and buffer: two checkpoints hash equal only if their weights are equal.

    It reads every tensor (copied to the CPU first); records key on ``medbench.weights_identity.weights_identity``,
    which hashes a file-loaded model's files once and falls back to this for a model changed or built in memory."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
