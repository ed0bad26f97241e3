"""A task's documents, processed once. lm-eval applies a task's ``process_docs`` each time it reads a split
(construction, building the requests, scoring them): on a dataset read from the hub or its cache, ``datasets``
serves the later reads from the first one's cached ``map``, so a ``process_docs`` that draws at random (lm-eval's
med_prescriptions places the answer at a random position) gives every read the same documents. The datasets
medbench builds from ``--data-file`` rows live in memory, where nothing is cached: each read drew afresh, and an
item was scored against an answer position other than the one its choices were built with."""

from __future__ import annotations

from typing import Any

_SPLITS = {"training_docs": "training_split", "validation_docs": "validation_split", "test_docs": "test_split"}


def keep_processed_docs(task: Any) -> None:
    """Make ``task``'s training, validation and test documents the first read of each split (per split name, so
    pointing ``config.test_split`` at the validation split still reads that split)."""
    if getattr(getattr(task, "config", None), "process_docs", None) is None:
        return  # the split itself, read as is: nothing drawn
    for method, key in _SPLITS.items():
        read = getattr(task, method, None)
        if read is not None:
            setattr(task, method, _first_read(task, read, key))


def _first_read(task: Any, read: Any, key: str) -> Any:
    kept: dict[Any, Any] = {}

    def docs():
        split = getattr(task.config, key, None)
        if split not in kept:
            kept[split] = read()
        return kept[split]

    return docs
