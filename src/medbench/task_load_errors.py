"""One line for a task lm-eval could not build. `datasets` reports a damaged or empty data file as "An error
occurred while generating the dataset", "StopIteration" or "corresponds to no data", naming neither the file nor
what is wrong with it; medbench's own reader (medbench.data_reading) reads the task's local files again to say."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING

from medbench.errors import MedbenchError
from medbench.task_trust import template_refusal
from medbench.task_yaml import LOCAL_BUILDERS

if TYPE_CHECKING:
    from medbench.tasks import TaskEntry

_READABLE = (".jsonl", ".json", ".csv", ".parquet")  # what medbench.data_reading reads


def load_failure(entry: TaskEntry, exc: BaseException) -> MedbenchError:
    """One line for a task that lm-eval could not build: a refused template, a dataset missing offline, a damaged
    local data file, else the exception itself."""
    refused = template_refusal(entry, exc)
    if refused is not None:
        return refused
    dataset = entry.config.get("dataset_path")
    hub_dataset = bool(dataset) and str(dataset) not in LOCAL_BUILDERS and not Path(str(dataset)).exists()
    if hub_dataset and "custom_dataset" not in entry.config and _offline_miss(exc):
        name = f"{dataset} ({entry.config['dataset_name']})" if entry.config.get("dataset_name") else dataset
        return MedbenchError(f"task {entry.name!r} needs the dataset {name}, which is not in the local Hugging Face "
                             f"cache and medbench is offline", f"pass --online to download it once, or point "
                             f"HF_DATASETS_CACHE at a cache that holds it, or give a local copy with "
                             f"--data-file {entry.name}:{entry.config.get('test_split') or 'test'}=PATH")
    damaged = damaged_data_file(entry)
    if damaged is not None:
        return damaged
    detail = " ".join(str(exc).split())[:300]
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if isinstance(key, str) and key and len(key) <= 100 and not any(c.isspace() for c in key):  # doc["CONTEXTS"]
        return MedbenchError(f"task {entry.name!r} failed to load: KeyError {key!r}, most likely a field its code "
                             "reads that the data rows lack", f"give data with the fields {entry.path.name} reads, "
                             f"or check that YAML ({entry.path})")
    return MedbenchError(f"task {entry.name!r} failed to load: {type(exc).__name__}: {detail}",
                         f"check its YAML ({entry.path}) and data files")


def damaged_data_file(entry: TaskEntry) -> MedbenchError | None:
    """The first local data file of a packaged-builder task (json, csv, parquet) that medbench's reader refuses
    (empty, not valid, not UTF-8, nested past the parser), as one line naming the task and the file; else None."""
    from medbench.data_reading import read_records
    from medbench.task_yaml import _data_file_entries

    if entry.config.get("custom_dataset") or entry.config.get("dataset_path") not in LOCAL_BUILDERS:
        return None
    kwargs = entry.config.get("dataset_kwargs") if isinstance(entry.config.get("dataset_kwargs"), dict) else {}
    base = Path.cwd() / os.path.expanduser(str(kwargs.get("data_dir") or ""))  # datasets reads them from there
    for _, raw in _data_file_entries(kwargs.get("data_files"), "data_files"):
        if not isinstance(raw, (str, Path)) or "://" in str(raw) or "::" in str(raw):
            continue
        target = base / os.path.expanduser(str(raw))
        for match in sorted(glob.glob(str(target)))[:100] if glob.has_magic(str(target)) else [str(target)]:
            if Path(match).suffix.lower() not in _READABLE or not Path(match).is_file():
                continue
            try:
                read_records(Path(match))
            except MedbenchError as exc:
                return MedbenchError(f"task {entry.name!r} ({entry.path}): {exc.problem}", exc.fix)
    return None


def _offline_miss(exc: BaseException) -> bool:
    from medbench.models import hub_online

    if hub_online():
        return False
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("offline", "connection", "couldn't reach", "not found", "doesn't exist",
                                         "does not exist", "hub", "cannot find"))
