"""The identity of a loaded model: the hash by which records and request caches are reused.

Two models that would score differently must never share an identity. A model that a loader built from files
(``LoadedModel.source_files``: weights, config, tokenizer, adapter) is identified by those files' SHA-256, read
from disk once and then cached by their stat, together with how they were loaded: the model class, its in-memory
configuration (dtype, attention implementation, any PEFT adapter config) and every tensor's name, dtype and shape.
The same files at two paths give the same identity.

Loading from files only counts while the model in memory is still what was loaded. ``resolve_model`` remembers each
tensor's address, autograd's in-place version counter and a checksum of its bytes right after the loader returns;
a model trained, merged or edited in place since (``.data`` writes skip the version counter, not the checksum),
moved to another device, or whose files changed on disk since, is identified by its tensors instead
(``medbench.models.weights_hash``), as is a model built in memory. Checking costs one read of the weights in
memory (integer sums, about 10x faster than hashing them) and no copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from medbench.models import cache_dir, weights_hash
from medbench.temp_files import make_temp

# What transformers reads from a model directory (remote code included): every file that can change an output.
MODEL_DIRECTORY_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json",
                         "merges.txt", "chat_template.jinja", "chat_template.json")
MODEL_DIRECTORY_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.py")

# A file changed less than this before it was hashed may change again within its timestamp's resolution without its
# stat changing (git's "racily clean" entries): its digest is not cached.
RACY_WINDOW_NS = 2_000_000_000
CACHE_ENTRY_LIMIT = 4096  # bytes; a cache entry is ~300
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def model_directory_files(directory: str | Path) -> tuple[str, ...]:
    """The files of a Hugging Face model directory that define the model and tokenizer loaded from it, in a fixed
    order (for ``LoadedModel.source_files``): config, generation config, tokenizer files, every safetensors file
    and shard index, and any remote-code ``.py`` file."""
    directory = Path(directory).expanduser()
    found = {directory / name for name in MODEL_DIRECTORY_FILES}
    for pattern in MODEL_DIRECTORY_PATTERNS:
        found.update(directory.glob(pattern))
    return tuple(str(path) for path in sorted(found) if path.is_file())


class FileSignature(NamedTuple):
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileSignature:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


@dataclass(frozen=True)
class LoadState:
    """What a file-loaded model was right after loading: its files' signatures and each tensor's marks."""

    files: tuple[tuple[str, FileSignature], ...]
    tensors: dict[str, tuple[int, int, str, tuple[int, ...]]]  # name -> (data_ptr, _version, dtype, shape)
    checksums: tuple[int, ...]


def remember_load_state(loaded: Any) -> None:
    """Called by ``resolve_model`` as a loader returns: what ``weights_identity`` later checks the model against."""
    loaded._load_state = None
    if not loaded.source_files:
        return
    files = []
    for name in loaded.source_files:
        path = Path(name).expanduser().absolute()
        try:
            info = os.stat(path)
        except OSError:
            return  # a listed file that is not there: the tensors identify the model
        if not stat.S_ISREG(info.st_mode):
            return
        files.append((str(path), FileSignature.of(info)))
    tensors = _state_tensors(loaded.model)
    marks = _tensor_marks(tensors) if tensors is not None else None
    checksums = _checksums(tensors.values()) if marks is not None else None
    if checksums is not None:
        loaded._load_state = LoadState(tuple(files), marks, checksums)


def weights_identity(loaded: Any) -> str:
    """The hash under which ``loaded`` is scored (32 hex digits); see the module docstring."""
    digest = hashlib.blake2b(digest_size=16)
    files = _unchanged_file_digests(loaded)
    if files is None:
        digest.update(b"tensors\0" + weights_hash(loaded.model).encode())
    else:
        digest.update(b"files\0")
        for name, size, sha256 in files:
            digest.update(f"{name}\0{size}\0{sha256}\n".encode())
        for name, (_, _, dtype, shape) in sorted(loaded._load_state.tensors.items()):
            digest.update(f"{name}|{dtype}|{shape}\n".encode())
    digest.update(b"loading\0" + _loading_settings(loaded.model).encode())
    return digest.hexdigest()


def _unchanged_file_digests(loaded: Any) -> list[tuple[str, int, str]] | None:
    """(file name, size, SHA-256) of each source file, or None when the model or its files changed since loading."""
    state = getattr(loaded, "_load_state", None)
    if state is None:
        return None
    tensors = _state_tensors(loaded.model)
    if tensors is None or _tensor_marks(tensors) != state.tensors or _checksums(tensors.values()) != state.checksums:
        return None
    # Shards are hashed in parallel: hashlib releases the GIL while it reads and hashes.
    with ThreadPoolExecutor(max_workers=max(1, min(len(state.files), os.cpu_count() or 1, 8))) as pool:
        digests = list(pool.map(lambda item: file_sha256(*item), state.files))
    if None in digests:
        return None
    return [(Path(path).name, signature.size, sha256) for (path, signature), sha256 in zip(state.files, digests)]


def _state_tensors(model: Any) -> dict[str, Any] | None:
    try:
        return dict(model.state_dict(keep_vars=True))
    except Exception:  # not a torch module
        return None


def _tensor_marks(tensors: dict[str, Any]) -> dict[str, tuple[int, int, str, tuple[int, ...]]] | None:
    try:
        return {name: (t.data_ptr(), t._version, str(t.dtype), tuple(t.shape)) for name, t in tensors.items()}
    except RuntimeError:  # inference-mode tensors keep no version counter
        return None


def _checksums(tensors: Any) -> tuple[int, ...] | None:
    """Per tensor, the wrapping int64 sum of its bytes read as the widest integer that tiles them: any one changed
    element changes it, and it runs at memory speed on the tensor's own device."""
    import torch

    sums = []
    done: dict[tuple, int] = {}  # tied weights (embeddings and LM head) are one tensor under two names: read once
    for tensor in tensors:
        if tensor.device.type == "meta":
            return None
        view = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if view not in done:
            done[view] = _word_sum(tensor.detach().reshape(-1).view(torch.uint8))
        sums.append(done[view])
    return tuple(sums)


def _word_sum(raw: Any) -> int:
    import numpy
    import torch

    width = next(w for w in (8, 4, 2, 1) if raw.numel() % w == 0)
    if raw.device.type == "cpu":
        # numpy's single-threaded sum: torch's threaded one crawls (~50x slower here) over the unaligned tensors
        # that transformers maps straight from a safetensors file.
        words = raw.numpy().view({8: numpy.int64, 4: numpy.int32, 2: numpy.int16, 1: numpy.uint8}[width])
        return int(words.sum(dtype=numpy.int64))
    words = raw.view({8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}[width])
    return int(words.sum(dtype=torch.int64))


def _plain(value: Any) -> Any:
    """JSON-ready with a fixed order: sets (PEFT's target_modules) become sorted lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _loading_settings(model: Any) -> str:
    """The model class and in-memory configuration, minus where it was loaded from: what the same files can load
    differently (dtype, attention implementation, merged or not, a config edited after loading)."""
    kind = type(model)
    config = getattr(model, "config", None)
    settings = dict(config.to_dict()) if hasattr(config, "to_dict") else {}
    for key in ("_name_or_path", "transformers_version"):
        settings.pop(key, None)
    settings["_attn_implementation"] = getattr(config, "_attn_implementation", None)
    adapters = {}
    for name, adapter in (getattr(model, "peft_config", None) or {}).items():
        fields = dict(adapter.to_dict()) if hasattr(adapter, "to_dict") else {"repr": repr(adapter)}
        fields.pop("base_model_name_or_path", None)  # a path; the base's own files identify it
        adapters[name] = fields
    return json.dumps(_plain([f"{kind.__module__}.{kind.__qualname__}", settings, adapters]), sort_keys=True)



def directory_identity(directory: str | Path, settings: str) -> str | None:
    """The identity of a model a backend loads from ``directory`` itself (vLLM): each defining file's name and
    cached SHA-256 (model_directory_files), plus ``settings`` (the backend and how it loads, e.g. its dtype). None
    when a file changes while it is read."""
    digest = hashlib.blake2b(settings.encode(), digest_size=16)
    for path in model_directory_files(directory):
        sha256 = file_sha256(path)
        if sha256 is None:
            return None
        digest.update(f"\0{Path(path).name}\0{sha256}".encode())
    return digest.hexdigest()

# --- file digests, cached by stat ---------------------------------------------------------------------------------

def stream_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks (never whole into memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_sha256(path: str | Path, expected: FileSignature | None = None) -> str | None:
    """SHA-256 of ``path``, from medbench's digest cache when its (resolved path, size, mtime, ctime, inode, device)
    match a cached entry, else streamed from disk and cached. None when its signature is not ``expected`` before or
    after reading (the file changed since the model was loaded from it).

    Known limit, as with make's and rsync's size+mtime checks: a file rewritten in place with the same size and
    timestamps is taken as unchanged. Keying on ctime and inode too narrows it (restoring mtime with ``touch`` or
    ``os.utime`` changes ctime; a copy or replace changes the inode), and a file changed less than
    ``RACY_WINDOW_NS`` before it was hashed is not cached, so a second write within the filesystem's timestamp
    resolution is caught; a clock set backwards, or a filesystem with coarser timestamps, can still defeat it.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        before = FileSignature.of(os.stat(resolved))
    except OSError:
        return None
    if expected is not None and before != expected:
        return None
    cached = _read_cache_entry(resolved, before)
    if cached is not None:
        return cached
    started = time.time_ns()
    try:
        sha256 = stream_sha256(resolved)
        after = FileSignature.of(os.stat(resolved))
    except OSError:
        return None
    if after != before:
        return None
    if max(before.mtime_ns, before.ctime_ns) < started - RACY_WINDOW_NS:
        _write_cache_entry(resolved, before, sha256)
    return sha256


def digest_cache_dir() -> Path:
    return cache_dir() / "file-digests"


def _entry_path(resolved: Path) -> Path:
    return digest_cache_dir() / (hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32] + ".json")


def _entry_fields(resolved: Path, signature: FileSignature, sha256: str) -> dict[str, Any]:
    return {"path": str(resolved), **signature._asdict(), "sha256": sha256}


def _entry_check(fields: dict[str, Any]) -> str:
    """A checksum of the entry's own fields: a damaged entry that still parses is a miss, never a wrong digest."""
    return hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=16).hexdigest()


def _read_cache_entry(resolved: Path, signature: FileSignature) -> str | None:
    """The cached digest, or None on any mismatch or damage. Entries are untrusted: never followed through a link,
    read only up to a few KB, and checked field by field. (Whoever can write medbench's cache can also rewrite the
    converted models kept beside it: a forged entry with a valid check is outside what this defends.)"""
    try:
        fd = os.open(_entry_path(resolved), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, CACHE_ENTRY_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        entry = json.loads(raw.decode("utf-8")) if len(raw) <= CACHE_ENTRY_LIMIT else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        return None
    sha256 = entry["sha256"]
    fields = _entry_fields(resolved, signature, sha256)
    if (SHA256_HEX.fullmatch(sha256) and {k: v for k, v in entry.items() if k != "check"} == fields
            and all(type(entry[k]) is int for k in signature._fields) and entry.get("check") == _entry_check(fields)):
        return sha256
    return None


def _write_cache_entry(resolved: Path, signature: FileSignature, sha256: str) -> None:
    """Write the entry beside its final name and rename it into place: concurrent writers never tear it. A cache
    that cannot be written only costs a re-hash next time."""
    fields = _entry_fields(resolved, signature, sha256)
    target = _entry_path(resolved)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = make_temp(target)  # named for this process (medbench.temp_files)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({**fields, "check": _entry_check(fields)}, handle, sort_keys=True)
        os.replace(staging, target)
    except BaseException as exc:  # Ctrl-C too: the temp file is this process's to remove
        try:
            os.unlink(staging)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
