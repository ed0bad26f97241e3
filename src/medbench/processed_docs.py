"""A task's documents, processed once. lm-eval applies a task's ``process_docs`` each time it reads a split
(building the task, its few-shot sampler, the requests, the scoring): on a dataset read from the hub or its cache,
``datasets`` serves the later reads from the first one's cached ``map``, so a ``process_docs`` that draws at random
(lm-eval's med_prescriptions places the answer at a random position) gives every read the same documents. The
datasets medbench builds from ``--data-file`` rows live in memory, where nothing is cached: each read drew afresh, and
an item was scored against an answer position other than the one its choices were built with. Two tasks that share
a ``process_docs`` and their data (med_prescriptions' easy and hard) share its result in stock's cache too: the second
task reads the first one's documents, drawing nothing, and so they do here, within one run."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Callable, Iterator

# (process_docs as datasets hashes it, the split's fingerprint) -> its documents: a run's processed splits, shared
# between tasks as datasets' map cache shares them; emptied by seed_document_draws at the start of each run.
_shared: dict[tuple[str, str], Any] = {}


def _shared_key(process_docs: Callable[[Any], Any], split: Any) -> tuple[str, str] | None:
    fingerprint = getattr(split, "_fingerprint", None)
    if not isinstance(fingerprint, str):
        return None
    try:
        from datasets.fingerprint import Hasher

        return Hasher.hash(process_docs), fingerprint  # closures and globals included, as datasets' cache key
    except Exception:  # a function datasets cannot hash: datasets would not cache its result either
        return None


def _once(process_docs: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process_docs`` that answers a split it has processed with its first result, as ``datasets``' cache does."""
    if getattr(process_docs, "medbench_once", False):
        return process_docs
    kept: dict[int, tuple[Any, Any]] = {}  # id(split) -> (the split, kept so its id is not reused; its documents)

    def once(split: Any) -> Any:
        if id(split) in kept:
            return kept[id(split)][1]
        key = _shared_key(process_docs, split)
        docs = _shared[key] if key in _shared else process_docs(split)
        if isinstance(docs, (list, tuple)) or hasattr(docs, "features"):  # a generator is read once: not kept
            kept[id(split)] = (split, docs)
        if key is not None and hasattr(docs, "features"):  # a dataset, as datasets' cache would hold it
            _shared[key] = docs
        return docs

    once.medbench_once = True  # type: ignore[attr-defined]
    return once


@contextlib.contextmanager
def process_docs_once() -> Iterator[None]:
    """While tasks are built: each task's ``process_docs`` (and its few-shot copy) processes a split once, and
    reading a task's name draws nothing from Python's random (private_task_ids)."""
    from unittest import mock

    from lm_eval.config.task import TaskConfig

    original = TaskConfig.__post_init__

    def post_init(self: Any) -> None:
        if callable(self.process_docs):  # before the few-shot config copies it
            self.process_docs = _once(self.process_docs)
        original(self)

    with mock.patch.object(TaskConfig, "__post_init__", post_init), private_task_ids():
        yield


def python_random_seed(seed: int) -> int:
    """The seed of Python's ``random`` that lm-eval would use: medbench's default seed (1234) stands for lm-eval's
    default set, 0 for ``random`` and 1234 for the rest; any other seed is every generator's, as lm-eval's single
    ``--seed`` value is."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED, DEFAULT_RANDOM_SEED

    return DEFAULT_RANDOM_SEED if seed == DEFAULT_OTHER_SEED else seed


def seed_document_draws(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch before tasks are built and their documents first read, as stock's
    simple_evaluate does: a ``process_docs`` that draws (med_prescriptions' answer position, a numpy permutation)
    then gives the documents stock gives, and the same documents on every run (unseeded, each run scored others)."""
    import random

    import numpy as np
    from lm_eval.utils import set_torch_seed

    _shared.clear()
    random.seed(python_random_seed(seed))
    np.random.seed(seed)  # stock's numpy and torch seeds are medbench's --seed, default 1234 included
    set_torch_seed(seed)


@contextlib.contextmanager
def private_task_ids() -> Iterator[None]:
    """lm-eval's ``Task.task_name`` draws an id from Python's random at every read, named task or not (its getattr
    default is evaluated first). Stock reads it three times a task, in one TaskManager.load after every task is
    built; medbench reads it more (a manager a task, a group a variant, a load a scored call): its reads draw from
    a generator of their own, and RequestDraws makes stock's draws."""
    import random
    import string
    from unittest import mock

    ids = random.Random(0)
    with mock.patch("lm_eval.api.task.random_task_id",
                    lambda: "".join(ids.choices(string.ascii_lowercase + string.digits, k=8))):
        yield


class RequestDraws:
    """Python's ``random`` as stock lm-eval leaves it for building each task's requests. One stock run seeds it,
    builds every task (a ``process_docs`` that draws draws then), reads their names, then builds the tasks' requests
    in turn (med_prescriptions' ``doc_to_choice`` draws its distractors there) before scoring any. medbench calls
    lm-eval once a task and checks the documents in between (which draws too): reseeded per call, every task's
    distractors were other than stock's. So stock's name reads are drawn once after the tasks are built, that state
    is restored for the first task's requests, and the state each task's requests leave is carried to the next."""

    def __init__(self, tasks: int) -> None:
        import random

        from lm_eval.api.utils import random_task_id

        for _ in range(3 * tasks):
            random_task_id()
        self.state = random.getstate()

    @contextlib.contextmanager
    def building_requests(self) -> Iterator[None]:
        """Around one lm-eval call that does not seed ``random`` itself (``random_seed=None``)."""
        import random
        from unittest import mock

        from lm_eval.api.task import Task

        original = Task.build_all_requests

        def build(task: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(task, *args, **kwargs)
            finally:
                self.state = random.getstate()

        random.setstate(self.state)
        with mock.patch.object(Task, "build_all_requests", build), private_task_ids():
            yield


def data_hash(docs: Any) -> str:
    """A content hash of documents (a split, a demonstrations' pool), the same for the same rows in order."""
    digest = hashlib.blake2b(digest_size=16)
    for doc in docs:
        digest.update(json.dumps(doc, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def fewshot_hash(task: Any, shots: int) -> str | None:
    """The hash of the pool a few-shot run draws its demonstrations from (None zero-shot): part of every prompt."""
    docs = task.fewshot_docs() if shots else None
    return data_hash(docs) if docs is not None else None
