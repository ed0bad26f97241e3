"""Freeing the disk a choosing step's unchosen checkpoints hold (``medbench sweep --prune-unchosen``).

A step with ``select`` (medbench.step_selection) keeps a checkpoint per epoch, per setting of ``select.over``,
and passes one on. At 8B scale the rest are most of a study's disk (merge_retention's full_ft: 90 full
checkpoints of about 16 GB, 10 of them chosen). Once the choice is written, pruning deletes the weight and
optimizer files of the others. What a reader needs stays: the step's marker, each checkpoint's configs and
trainer state, the validation records the choice was made on, and a ``PRUNED.json`` naming the choice.

Only a step whose training folders no other step of the plan reads is pruned (``exclusive_choosers``): a
plain step sharing a folder scores every checkpoint in it, and a second choice over the same folder may want
another one. A later use that needs a pruned checkpoint (a deleted selection.json, a changed recipe run in the
same folder) stops in one line saying which folder to delete to train it again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from medbench.errors import MedbenchError
from medbench.records import atomic_write_json, read_regular_text

PRUNED_FILE = "PRUNED.json"
# Weights (safetensors, torch, GGUF) and optimizer / scheduler / RNG states: everything large in a checkpoint.
PRUNED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")


def exclusive_choosers(cells: Iterable[Any]) -> frozenset[str]:
    """Names of the choosing steps whose training folders (their own, or their ``select.over`` variants') no
    other step of the plan trains into or reads."""
    readers: dict[str, set[str | None]] = {}
    for cell in cells:
        for step in cell.steps:
            for trained in step.variants or [step]:
                readers.setdefault(trained.name, set()).add(step.name if step.select else None)
    return frozenset(step.name for cell in cells for step in cell.steps if step.select
                     and all(readers[t.name] == {step.name} for t in step.variants or [step]))


def is_pruned(checkpoint_path: str | Path) -> bool:
    return (Path(checkpoint_path) / PRUNED_FILE).is_file()


def require_weights(checkpoints: list[dict[str, Any]], step_dirs: list[Path]) -> None:
    """One line, not a failed load deep in scoring, when a checkpoint this use needs was pruned before."""
    pruned = [c["path"] for c in checkpoints if is_pruned(c["path"])]
    if pruned:
        folders = " ".join(sorted({str(d) for d in step_dirs}))
        raise MedbenchError(f"{len(pruned)} checkpoint(s) this step needs had their weights deleted by "
                            f"--prune-unchosen after an earlier choice (first: {pruned[0]})",
                            f"delete {folders} to train the step again, or restore its selection.json")


def prune_unchosen(selection: dict[str, Any], checkpoints: list[dict[str, Any]], steps_root: Path,
                   selection_file: Path) -> int:
    """Delete the large files of every checkpoint the selection did not choose; returns the bytes freed. Only
    regular files inside a checkpoint folder ``steps_root/STEP/CHECKPOINT`` are touched (a damaged marker naming
    a path elsewhere, a step folder itself, or a symlink, is left alone). The note is written first, so an
    interrupted prune is finished by the next run and a half-deleted checkpoint is never taken for a whole one."""
    chosen = selection["candidates"][selection["chosen"]]["path"]
    kept, root = Path(chosen).resolve(), steps_root.resolve()
    freed = 0
    for checkpoint in checkpoints:
        folder = Path(checkpoint["path"])
        resolved = folder.resolve()
        if resolved == kept or folder.is_symlink() or not folder.is_dir() or resolved.parent.parent != root:
            continue
        sizes = {path: path.stat().st_size for path in _large_files(folder)}
        note = folder / PRUNED_FILE
        if not note.is_file():
            atomic_write_json(note, {"pruned_by": "medbench sweep --prune-unchosen", "chosen": chosen,
                                     "selection": str(selection_file), "freed_bytes": sum(sizes.values())})
        for path, size in sizes.items():
            freed += size
            path.unlink()
    return freed


def freed_so_far(steps_root: Path) -> tuple[int, int]:
    """(checkpoints pruned, bytes their notes say were freed) under a sweep's steps folder."""
    count = freed = 0
    for note in steps_root.glob(f"*/*/{PRUNED_FILE}") if steps_root.is_dir() else []:
        count += 1
        try:
            value = json.loads(read_regular_text(note, limit=1 << 20)).get("freed_bytes")  # a FIFO never blocks
            freed += value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
        except (OSError, ValueError, AttributeError):
            pass
    return count, freed


def _large_files(folder: Path) -> list[Path]:
    found = []
    for directory, _, names in os.walk(folder):  # os.walk does not follow symlinked folders
        found += [Path(directory) / n for n in names if n.endswith(PRUNED_SUFFIXES)
                  and not (Path(directory) / n).is_symlink() and (Path(directory) / n).is_file()]
    return found
