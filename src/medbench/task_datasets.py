"""What `datasets` reads by itself from an untrusted task's local dataset folder (``dataset_path: ./ds``): the
``configs:`` in its README.md header and .huggingface.yaml name data files and folders, which must lie inside the
task folder as the YAML's own paths must; a loading script there is code. And what else an untrusted task may
name: only the plain file builders (others open files they find beside their data files), and only generation
settings (others reach ``model.generate``, where ``custom_generate`` runs a folder's code)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from medbench.records import read_regular_text
from medbench.task_yaml import (ContainmentError, UntrustedCodeError, _data_file_entries, _require_data_inside,
                                check_expansion)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_dataset_folder(file: Path, key: str, raw: str, folder: Path, root: Path, data_dir: Any = None) -> None:
    """Refuse (ContainmentError) a local dataset ``raw`` (at ``folder``) whose card configs name a data file or
    data_dir outside ``root``, or that is, or holds, a dataset loading script."""
    parts = [part for part in raw.replace(os.sep, "/").split("/") if part]
    script = parts[-1] if parts and parts[-1].endswith(".py") else f"{parts[-1] if parts else ''}.py"
    if raw.endswith(".py") or (folder / script).is_file():  # datasets' own rule for a loading script
        raise UntrustedCodeError(f"task file {file} names {key} {raw!r}, a dataset with a loading script ({script}), "
                                 f"which is code, from a folder medbench does not trust", "ship the data as .jsonl, "
                                 f".csv or .parquet files, or pass --trust-task-code if you trust {root}")
    if not folder.is_dir():
        return
    for i, (card, config) in enumerate(_card_configs(file, key, raw, folder, root)):
        where = f"{key} {raw!r} ({card} configs[{i}])"
        bases = [folder] + [folder / value for value in (data_dir,) if isinstance(value, str) and value]
        config_dir = config.get("data_dir")
        if isinstance(config_dir, str) and config_dir:
            _require_plain_path(file, f"{where} data_dir", config_dir, folder, root)
            _require_data_inside(file, f"{where} data_dir", config_dir, folder, root)
            bases.append(folder / config_dir)  # datasets reads the config's data_files relative to it
        for entry_key, value in _data_file_entries(config.get("data_files"), f"{where} data_files"):
            _require_plain_path(file, entry_key, value, folder, root)
            for base in bases:
                _require_data_inside(file, entry_key, value, base, root)


def _require_plain_path(file: Path, key: str, value: Any, folder: Path, root: Path) -> None:
    if _URL.match(str(value)) or "::" in str(value):  # hf://, file://, zip://...::, data:...
        raise ContainmentError(f"task file {file} names {key} {str(value)!r}, a URL; the cards of a local dataset "
                               "folder name files inside it", f"name a file under {folder}, or pass "
                               f"--trust-task-code if you trust {root}")


def _card_configs(file: Path, key: str, raw: str, folder: Path, root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, config) for each ``configs:`` entry datasets would read from the folder's cards."""
    from datasets import config as datasets_config
    from huggingface_hub import DatasetCard

    found = []
    for name in (datasets_config.REPOCARD_FILENAME, datasets_config.REPOYAML_FILENAME):
        path = folder / name
        if not os.path.lexists(path):
            continue
        try:  # a FIFO in its place is refused here: datasets would block opening it
            text = read_regular_text(path)
            data = DatasetCard(text).data.to_dict() if name == datasets_config.REPOCARD_FILENAME else \
                yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            detail = " ".join(str(getattr(exc, "strerror", None) or exc).split())[:120]
            raise ContainmentError(f"task file {file} names {key} {raw!r}, whose {name} cannot be read ({detail}); "
                                   "medbench checks what datasets reads from it first",
                                   f"fix or remove {path}, or pass --trust-task-code if you trust {root}") from None
        check_expansion(data, f"{path}")
        configs = data.get("configs") if isinstance(data, dict) else None
        found += [(name, config) for config in configs or [] if isinstance(config, dict)] \
            if isinstance(configs, list) else []
    return found


# Builders that read exactly the data files named (the others open files they find next to them: harbor an
# instruction.md beside each task.toml, xml and webdataset archives' members, the *folder builders every file).
PLAIN_BUILDERS = ("json", "csv", "parquet", "text", "arrow")
# What a task's generation_kwargs may set when its folder is not trusted: decoding settings. lm-eval hands the rest
# to model.generate as is, where custom_generate (with trust_remote_code) imports and runs a folder's code.
GENERATION_KEYS = {"until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "min_p",
                   "typical_p", "num_beams", "repetition_penalty", "no_repeat_ngram_size", "length_penalty",
                   "early_stopping", "seed"}


def check_builder_and_generation(config: dict[str, Any], file: Path, root: Path, where: str,
                                 packaged: set[str]) -> None:
    """An untrusted task names a plain file builder (or none) and sets only decoding settings (module docstring)."""
    dataset = config.get("dataset_path")
    if isinstance(dataset, str) and dataset in packaged and dataset not in PLAIN_BUILDERS:
        raise ContainmentError(f"task file {file} names {where}dataset_path {dataset!r}, a `datasets` builder that "
                               f"opens files beyond the data files named, from a folder medbench does not trust",
                               f"use one of {', '.join(PLAIN_BUILDERS)}, or pass --trust-task-code if you trust {root}")
    settings = config.get("generation_kwargs")
    other = sorted(map(str, set(settings) - GENERATION_KEYS)) if isinstance(settings, dict) else []
    if other:
        raise UntrustedCodeError(f"task file {file} sets {where}generation_kwargs {', '.join(other)[:80]}, which "
                                 f"lm-eval passes to model.generate (custom_generate and trust_remote_code run code), "
                                 f"from a folder medbench does not trust",
                                 f"keep to decoding settings ({', '.join(sorted(GENERATION_KEYS))}), or pass "
                                 f"--trust-task-code if you trust {root}")
