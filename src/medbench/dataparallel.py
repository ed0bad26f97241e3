"""Data-parallel scoring (`medbench eval --num-processes N`): every process launched by accelerate loads the model
and scores a share of the requests; lm-eval gathers the per-item results on rank 0, which alone writes records.

lm-eval's HFLM joins the processes only when it loads the model itself; given a loaded model (as medbench gives
it, to keep its batch size and scorers) it runs as one process. :func:`shard` makes such an HFLM one rank of the
launched group. lm-eval deals documents out by stride (rank r scores documents r, r + N, ...) and concatenates the
ranks' results rank by rank; :func:`in_document_order` restores document order, so the samples and every metric
(bootstrap standard errors included, which depend on the order) equal a one-process run's.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

# Rank 0 writes records and runs judges between tasks while the others wait at the next task's first collective.
WAIT_FOR_RANK_ZERO = timedelta(hours=24)


def join_processes() -> Any:
    """This process's accelerate Accelerator in the launched group (on GPUs it also selects the rank's own GPU,
    so a model placed on "cuda" lands there)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    # Without cpu=True accelerate reads a launch on a machine without GPUs as one process (as the Trainer's use_cpu).
    return Accelerator(cpu=not torch.cuda.is_available(),
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=WAIT_FOR_RANK_ZERO)])


def leave_process_group() -> None:
    """At the end of a launched command, on success: wait for every rank, then close the group. A rank that exits
    while rank 0 still writes records can abort in gloo's teardown ("terminate called without an active
    exception"). Not on failure: the launcher ends the other ranks then, and a barrier could wait on a rank stuck
    in a collective."""
    import os
    import sys

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        dist.barrier()
        dist.destroy_process_group()
        if rank != 0:  # its work is done and rank 0 reports; gloo's threads can still abort interpreter teardown
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def rank_zero_first(accelerator: Any) -> Any:
    """A context in which rank 0 runs first and the others after it (no-op without ``accelerator``)."""
    import contextlib

    return accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext()


def shard(lm: Any, accelerator: Any) -> Any:
    """Make ``lm`` (an HFLM built around a loaded model) one rank of ``accelerator``'s group."""
    lm.accelerator = accelerator
    lm._rank = accelerator.process_index
    lm._world_size = accelerator.num_processes
    gather = lm.gather_object

    def gather_in_document_order(obj: Any, dst: int = 0) -> Any:
        gathered = gather(obj, dst)
        return gathered if gathered is None else [in_document_order(gathered)]

    lm.gather_object = gather_in_document_order
    return lm


def interleave(per_rank: list[list[Any]]) -> list[Any]:
    """Rank r's i-th item is document r + i x N: deal them back round-robin."""
    out = []
    for row in itertools.zip_longest(*per_rank, fillvalue=_MISSING):
        out.extend(item for item in row if item is not _MISSING)
    return out


_MISSING = object()


def in_document_order(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """What lm-eval gathers from each rank, keyed by task, merged in document order: per-item metric lists
    ({(metric, filter): [value per document]}) are interleaved; logged samples (one list over every filter) are
    ordered by filter, then document."""
    merged: dict[str, Any] = {}
    for task in dict.fromkeys(task for rank in per_rank for task in rank):
        values = [rank.get(task) for rank in per_rank]
        if any(isinstance(value, dict) for value in values):
            keys = dict.fromkeys(key for value in values for key in (value or {}))
            merged[task] = {key: interleave([list((value or {}).get(key, [])) for value in values]) for key in keys}
        else:
            samples = [sample for value in values for sample in (value or [])]
            filters = {name: i for i, name in enumerate(dict.fromkeys(sample.get("filter") for sample in samples))}
            merged[task] = sorted(samples, key=lambda sample: (filters[sample.get("filter")], sample["doc_id"]))
    return merged
