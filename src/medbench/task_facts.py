"""What a record says about the task it scored: the hash of the task as it ran, and where its data came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medbench.task_trust import code_imports
from medbench.task_yaml import _TagTolerantLoader, is_inside, real_path
from medbench.tasks import LM_EVAL, TaskEntry, code_trusted


def task_config_hash(entry: TaskEntry) -> str:
    """Hash of the task as it will run: the YAML after includes (templates, few-shot settings, metrics,
    metadata) plus the code files its ``!function`` references import. A change to any of them is a new config."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(entry.config, sort_keys=True, default=str).encode())
    refs = sorted(set(code_imports(entry.config)))
    # lm-eval imports a !function from beside the YAML that names it, which may be an included file in another
    # folder: every folder of the include chain counts (a file that does not define it only costs a reuse).
    folders, trusted = (include_folders(entry.path) if refs else []), code_trusted(entry)
    for ref in refs:
        module = ref.rsplit(".", 1)[0].replace(".", "/") + ".py"
        digest.update(f"\0{module}\0".encode())
        for depth, folder in enumerate(folders):
            file = folder / module
            if not trusted and not is_inside(real_path(file), real_path(entry.path.parent)):
                continue  # a reference that leads out of an untrusted folder is never read
            if file.is_file():  # the task's own folder as before (its hash unchanged), included ones marked
                digest.update((f"\0include {depth}\0".encode() if depth else b"") + file.read_bytes())
    return digest.hexdigest()


def include_folders(path: Path) -> list[Path]:
    """The folders of ``path`` and of every YAML its ``include:`` chain reads, nearest first (a file that cannot
    be read ends the chain there: reading the task reported it)."""
    import yaml

    from medbench.records import read_regular_text
    from medbench.small_inputs import MAX_CONFIG_BYTES

    folders: list[Path] = []
    seen: set[Path] = set()
    pending = [Path(path)]
    while pending:
        file = pending.pop(0).resolve()
        if file in seen:
            continue
        seen.add(file)
        folders += [file.parent] if file.parent not in folders else []
        try:
            config = yaml.load(read_regular_text(file, limit=MAX_CONFIG_BYTES), Loader=_TagTolerantLoader)
        except (OSError, ValueError, yaml.YAMLError, RecursionError):
            continue
        names = config.get("include") if isinstance(config, dict) else None
        pending += [file.parent / name for name in (names if isinstance(names, list) else [names])
                    if isinstance(name, str) and name]
    return folders


def data_source(entry: TaskEntry, task: Any) -> dict[str, Any]:
    """Where the task's data came from: ``kind`` bundled / file / hub / lm-eval, ``name``, a ``sha256`` or
    ``revision``, and a ``description``."""
    dataset = getattr(task, "dataset", None)
    known = getattr(dataset, "medbench_source", None)  # set by medbench.taskdata loaders
    if isinstance(known, dict):
        source = dict(known)
        if source.get("kind") == "bundled" and entry.metadata.get("data_description"):
            source["description"] = str(entry.metadata["data_description"])
        return source
    config = entry.config
    path = config.get("dataset_path")
    name = f"{path}/{config['dataset_name']}" if path and config.get("dataset_name") else str(path or entry.path)
    revision = (config.get("dataset_kwargs") or {}).get("revision")
    if entry.plugin == LM_EVAL:
        return {"kind": "lm-eval", "name": name, "revision": revision,
                "description": f"lm-eval's own task {entry.name} ({path})"}
    data_files = (config.get("dataset_kwargs") or {}).get("data_files")
    if path in ("json", "csv", "parquet", "text", "arrow") and data_files:
        return {"kind": "file", "name": str(data_files), "sha256": None,
                "description": f"local files named in {entry.path.name}"}
    return {"kind": "hub", "name": name, "revision": revision, "description": f"hub dataset {name}"}
