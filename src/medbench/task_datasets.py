"""What `datasets` reads by itself from an untrusted task's local dataset folder (``dataset_path: ./ds``): the
``configs:`` in its README.md header and .huggingface.yaml name data files and folders, which must lie inside the
task folder as the YAML's own paths must; a loading script there is code."""

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
