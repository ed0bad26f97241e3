"""Paths in records, made portable: a record names files relative to its leaderboard, or by a reference to a known
root (``bundled-tasks:``, ``medbench-cache:``, ``hf-cache:``, ``site-packages:``), never by the absolute path of the
machine that wrote it. A leaderboard copied elsewhere (the committed demo, a colleague's board) reads the same. A
path far from the board (more than two folders up) keeps only its name, as ``external:NAME``.

Only the values of path-like keys are rewritten (:data:`PATH_KEYS` and keys ending in ``_file``/``_dir``/
``_path``); a value that is neither absolute nor an existing relative path is a reference (a hub id, a registered
name) and is kept as written.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from typing import Any

MAX_UP = 2  # a path more than this many folders above the leaderboard is named, not located

PATH_KEYS = frozenset({"path", "ref", "base_ref", "yaml", "checkpoint", "parent_model", "source_path"})


def _known_roots() -> list[tuple[Path, str]]:
    from medbench.models import cache_dir

    roots = [(Path(__file__).resolve().parents[2] / "tasks", "bundled-tasks:"), (cache_dir(), "medbench-cache:")]
    try:
        import medbench_tasks

        roots.insert(0, (Path(medbench_tasks.__file__).resolve().parent, "bundled-tasks:"))
    except ImportError:
        pass
    hf_home = Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "huggingface")
    roots.append((Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub"), "hf-cache:"))
    roots.append((Path(sysconfig.get_paths()["purelib"]), "site-packages:"))
    return [(root.expanduser().resolve(), scheme) for root, scheme in roots]


def portable_path(value: str, leaderboard: Path) -> str:
    """``value`` as a record stores it: a reference to a known root, else relative to ``leaderboard`` (POSIX
    separators); references that are not paths come back unchanged."""
    if not isinstance(value, str) or not value or ":" in value.split("/", 1)[0]:
        return value  # empty, or already a reference (scheme:...)
    path = Path(value).expanduser()
    try:
        if not path.is_absolute():
            if not path.exists():
                return value  # a hub id or a registered model name, not a file here
            path = path.resolve()
        else:
            path = Path(os.path.normpath(path))
            if path.exists():
                path = path.resolve()
    except OSError:  # a name no file system holds (a part over 255 bytes): not a path here
        return value
    for root, scheme in _known_roots():
        if path.is_relative_to(root):
            return scheme + path.relative_to(root).as_posix()
    relative = Path(os.path.relpath(path, Path(leaderboard).resolve()))
    if relative.parts[:MAX_UP + 1].count("..") > MAX_UP:
        # Far from the board (another disk, another user's home): its name only; weights and data are identified
        # by their hashes in the record, and the writer's directory layout is nobody else's business.
        return f"external:{path.name}"
    return relative.as_posix()


def _path_key(key: str) -> bool:
    return key != "samples_file" and (key in PATH_KEYS or key.endswith(("_file", "_files", "_dir", "_path")))


def portable_paths(data: Any, leaderboard: Path, inside_path_key: bool = False) -> Any:
    """A copy of ``data`` (a record or a manifest) with every path-like value made portable: the string values of
    path-like keys, and every string under one (``data_files: {test: PATH}``)."""
    if isinstance(data, dict):
        # A data source read from the user's file is named by its path.
        file_source = data.get("kind") == "file"
        return {key: portable_paths(value, leaderboard,
                                    inside_path_key or _path_key(str(key)) or (file_source and key == "name"))
                for key, value in data.items()}
    if isinstance(data, list):
        return [portable_paths(item, leaderboard, inside_path_key) for item in data]
    if isinstance(data, str) and inside_path_key:
        return portable_path(data, leaderboard)
    return data
