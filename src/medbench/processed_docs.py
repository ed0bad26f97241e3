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
    config = getattr(task, "config", None)
    if getattr(config, "process_docs", None) is None:
        return  # the split itself, read as is: nothing drawn
    kept: dict[Any, Any] = {}  # split name -> its documents, shared by every method reading that split
    built = getattr(task, "task_docs", None)  # lm-eval read the evaluated split once while building the task
    if built is not None:
        kept[config.test_split if config.test_split else config.validation_split] = built
    for method, key in _SPLITS.items():
        read = getattr(task, method, None)
        if read is not None:
            setattr(task, method, _first_read(task, read, key, kept))


def _first_read(task: Any, read: Any, key: str, kept: dict[Any, Any]) -> Any:

    def docs():
        split = getattr(task.config, key, None)
        if split not in kept:
            kept[split] = read()
        return kept[split]

    return docs


def python_random_seed(seed: int) -> int:
    """The seed of Python's ``random`` that lm-eval would use: medbench's default seed (1234) stands for lm-eval's
    default set, 0 for ``random`` and 1234 for the rest; any other seed is every generator's, as lm-eval's single
    ``--seed`` value is."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED, DEFAULT_RANDOM_SEED

    return DEFAULT_RANDOM_SEED if seed == DEFAULT_OTHER_SEED else seed


def seed_document_draws(seed: int) -> None:
    """Seed Python's ``random`` before tasks are built and their documents first read: a ``process_docs`` that
    draws (med_prescriptions' answer position) then gives the documents stock lm-eval gives, which seeds it before
    building the task, and the same documents on every run (unseeded, each run scored other items)."""
    import random

    random.seed(python_random_seed(seed))
