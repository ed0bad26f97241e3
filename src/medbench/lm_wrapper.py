"""The lm-eval model medbench evaluates with: a scorer (medbench.fastlm or stock HFLM) that reports progress after
every batch and appends each result to a request cache, so a killed eval resumes where it stopped.

The scorer is handed all of a task's requests in one call, so it orders and batches them over the whole task as it
would alone (longest first, requests sharing a context together, generation grouped by its settings). Results are
observed through lm-eval's own cache hook (``add_partial``, called as each batch is picked apart) and counted at the
start of the next batch's forward pass, or when the call returns.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

from medbench.errors import MedbenchError

ProgressCallback = Callable[[str, int, int], None]  # (task, done, total)
# ~100 bytes a log-likelihood, a few KB a generation: a full MMLU is ~6 MB. A larger cache was not written by an
# eval; read whole, it would take that much memory.
MAX_CACHE_BYTES = 2 * 1024**3
AUTO_CPU_BATCH_SIZE = 8  # what --batch-size auto means on a CPU (make_lm)


def valid_batch_size(value: Any) -> bool:
    """A scoring batch size as medbench takes it: a positive whole number, or "auto" (make_lm)."""
    return value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def copy_numbers(keys: list[Any]) -> list[int]:
    """Each item's number among the equal items before it (0, 1, 2, ...): which copy of a repeated request it is."""
    seen: dict[Any, int] = {}
    out = []
    for key in keys:
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


class RequestCache:
    """The requests of one (weights hash, task config, scorer) already scored, as JSON lines of {key: result}
    appended and fsynced as they are scored: a killed eval resumes from them. A torn last line (killed mid-write)
    is dropped on open. Keys hash the request itself (the full prompt with its few-shot examples, the continuation
    or the generation settings), so a changed prompt is never served an old result."""

    def __init__(self, path: Path, root: Path | None = None):
        from medbench.records import read_regular_bytes, through_link

        self.path = Path(path)
        self.results: dict[str, Any] = {}
        self.served = 0
        # The leaderboard folder is untrusted: a cache file swapped for a link (reads and appends outside it) or a
        # FIFO (an append that blocks for ever) is refused before anything is scored.
        odd = self.path.is_symlink() or (self.path.exists() and not self.path.is_file()) or (
            root is not None and self.path.exists() and through_link(root, self.path))
        if odd:
            raise MedbenchError(f"the request cache {self.path} is a link, FIFO or device, not a file medbench wrote",
                                "delete it (it only saves re-scoring requests), or pass another --leaderboard-dir")
        if self.path.is_file():
            try:
                data = read_regular_bytes(self.path, MAX_CACHE_BYTES)
            except OSError as exc:
                if exc.errno == errno.EFBIG:
                    raise MedbenchError(f"the request cache {self.path} is over {MAX_CACHE_BYTES:,} bytes, more "
                                        "than an eval writes",
                                        "delete it (it only saves re-scoring requests)") from None
                data = b""  # unreadable: scored again, and appended to as far as the folder allows
            if data and not data.endswith(b"\n"):
                data = data[:data.rfind(b"\n") + 1]
                self._rewrite(data)
            for line in data.decode("utf-8", "replace").split("\n"):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict):
                    self.results.update(row)

    def _rewrite(self, data: bytes) -> None:
        try:  # never through a link put in its place meanwhile
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError:
            pass  # the torn line stays; __init__ drops it on every open

    def has(self, kind: str, key: str) -> bool:
        """A cached result of the shape ``kind`` returns (a damaged or crafted cache's other values are scored
        again): a (log-likelihood, greedy) pair, or generated text."""
        value = self.results.get(key)
        if kind == "generate_until":
            return isinstance(value, str)
        return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[1], bool)
                and isinstance(value[0], (int, float)) and not isinstance(value[0], bool)
                and value[0] <= 0)  # a log-probability: never positive, never NaN (NaN <= 0 is False)

    @staticmethod
    def key(kind: str, args: Any) -> str:
        return hashlib.sha256(json.dumps([kind, args], sort_keys=True, default=str).encode()).hexdigest()

    @classmethod
    def keys(cls, kind: str, args: list[Any]) -> list[str]:
        """One key per request; the repeats of one request (lm-eval sends each k times) get a key each."""
        keys = [cls.key(kind, arg) for arg in args]
        return [key if copy == 0 else f"{key}#{copy + 1}" for key, copy in zip(keys, copy_numbers(keys))]

    def get(self, key: str) -> Any:
        value = self.results[key]
        return tuple(value) if isinstance(value, list) else value  # log-likelihoods are (float, bool)

    def add(self, results: dict[str, Any]) -> None:
        self.results.update(results)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One O_APPEND write per flush, fsynced: a kill leaves at most a torn last line, which __init__ drops.
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            fd = os.open(self.path, flags, 0o644)
            try:
                data = (json.dumps(results) + "\n").encode("utf-8")
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise MedbenchError(f"cannot save scored requests to {self.path} ({exc.strerror or exc})",
                                "free disk space or fix the folder's permissions (the leaderboard folder holds "
                                "the records too), or pass --leaderboard-dir elsewhere") from None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        for folder in (self.path.parent, self.path.parent.parent, self.path.parent.parent.parent):
            try:  # leave no empty .cache/requests/<model>/ behind in the leaderboard folder
                folder.rmdir()
            except OSError:
                break


# Bumped when a scorer's arithmetic changes, so no cached request or record scored the old way is reused (it is in
# every record's versions). 2: the prefix scorer sums a multi-token choice's log-probs as HFLM does. 3: it scores
# multi-token choices in their context's row under a block mask (medbench.fastlm), not from a key/value cache.
# 4: a system prompt joins a task's description as stock lm-eval joins them (GenerationOptions.system_instruction).
SCORING_REVISION = "4"


def request_cache_path(output_dir: Path, label: str, model_hash: str, record_key: str, config_hash: str,
                       scorer: str) -> Path:
    from medbench.records import slug

    key = hashlib.sha256(f"{config_hash}\0{scorer}\0{SCORING_REVISION}".encode()).hexdigest()[:16]
    folder = Path(output_dir) / ".cache" / "requests" / f"{slug(label)}-{model_hash[:12]}"
    return folder / f"{slug(record_key)}-{key}.jsonl"


class _ResultTap:
    """Stands in for lm-eval's cache hook during one call: collects each result the scorer delivers (and passes
    it on to the hook it replaces, e.g. lm-eval's CachingLM)."""

    def __init__(self, kind: str, cache: RequestCache | None, passed_on: Any, pending: list[str] = ()):
        self.kind, self.cache, self.passed_on = kind, cache, passed_on
        self.delivered = 0  # results since the last report
        self.unsaved: dict[str, Any] = {}
        # The cache keys still to score, by request: the copies of a repeated request arrive with equal arguments
        # and in their order (lm-eval sorts stably), so the n-th one delivered is the n-th still pending.
        self.pending: dict[str, collections.deque[str]] = {}
        for key in pending:
            self.pending.setdefault(key.split("#", 1)[0], collections.deque()).append(key)

    def add_partial(self, attr: str, request: Any, result: Any) -> None:
        self.passed_on.add_partial(attr, request, result)
        if request is None:  # loglikelihood_rolling's windows: not one of the requests being counted
            return
        self.delivered += 1
        if self.cache is not None:
            key = self.cache.key(attr, request)
            queue = self.pending.get(key)
            self.unsaved[queue.popleft() if queue else key] = result


MAX_REQUEST_CHARS = 4_000_000  # ~1M tokens, past any model's context: a longer prompt is a damaged data row


def check_request_sizes(task: str, requests: list[Any]) -> None:
    """A prompt of megabytes (a data row holding a 50 MB field) would be tokenized for minutes before lm-eval cut
    it to the model's context: refused in one line first."""
    for request in requests:
        size = sum(len(part) for part in getattr(request, "args", ()) if isinstance(part, str))
        if size > MAX_REQUEST_CHARS:
            raise MedbenchError(f"task {task!r} has a prompt of {size:,} characters (more than {MAX_REQUEST_CHARS:,}"
                                ", past any model's context)", "check the data rows: a question is a few KB of text")


def make_lm(loaded: Any, batch_size: int | str, progress: ProgressCallback | None, scorer: str = "prefix"):
    """``batch_size`` "auto": on a GPU the scorer's own search (medbench.fastlm, lm-eval's for generation and
    ``--scorer hflm``), on a CPU 8: there a larger batch buys little and lm-eval's search would run its longest
    possible batch first, minutes of work and gigabytes of memory for nothing."""
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM

    base = PrefixSharingHFLM if scorer == "prefix" else HFLM

    class ProgressHFLM(base):
        """The scorer, with progress after every batch and scored requests appended to ``request_cache``.
        ``task_name`` labels the progress; the caller sets it and ``request_cache`` before each task."""

        task_name = ""
        request_cache: RequestCache | None = None
        _tap: _ResultTap | None = None
        _done = _total = 0
        _save_every = 1

        def _run(self, method, requests, kind: str):
            check_request_sizes(self.task_name, requests)
            out: list[Any] = [None] * len(requests)
            cache = self.request_cache
            todo = list(range(len(requests)))
            keys: list[str] = []
            if cache is not None:  # a killed run's scored requests are served, the rest scored and appended
                keys = cache.keys(kind, [request.args for request in requests])
                todo = [i for i in todo if not cache.has(kind, keys[i])]
                for i in set(range(len(requests))) - set(todo):
                    out[i] = cache.get(keys[i])
                cache.served += len(requests) - len(todo)
            if not todo:
                return out
            # Generation takes seconds a batch: save every batch. Scoring is fast: fsync every few batches' worth.
            self._save_every = 1 if kind == "generate_until" else max(64, 8 * int(
                self.batch_size if str(self.batch_size).isdigit() else 8))
            self._done, self._total = len(requests) - len(todo), len(requests)
            self._tap = _ResultTap(kind, cache, self.cache_hook, [keys[i] for i in todo] if keys else ())
            passed_on = self.cache_hook
            self.cache_hook = self._tap
            try:
                results = method([requests[i] for i in todo], disable_tqdm=True)
            finally:  # on an error or Ctrl-C too: every result delivered so far is kept for the next run
                self._batch_boundary(last=True)
                self.cache_hook, self._tap = passed_on, None
            for i, result in zip(todo, results):
                out[i] = result
            return out

        def _batch_boundary(self, last: bool = False) -> None:
            """Called before each batch's forward pass and at the end: the previous batch's results are in."""
            tap = self._tap
            if tap is None:
                return
            if tap.unsaved and (last or len(tap.unsaved) >= self._save_every):
                tap.cache.add(tap.unsaved)
                tap.unsaved = {}
            if tap.delivered:
                self._done, tap.delivered = self._done + tap.delivered, 0
                if progress:
                    progress(self.task_name, min(self._done, self._total), self._total)

        # The three places a batch's forward pass starts: stock HFLM's scoring and generation, fastlm's batches.
        def _model_call(self, *args, **kwargs):
            self._batch_boundary()
            return super()._model_call(*args, **kwargs)

        def _model_generate(self, *args, **kwargs):
            self._batch_boundary()
            return super()._model_generate(*args, **kwargs)

        def _score_batch(self, *args, **kwargs):  # only PrefixSharingHFLM has (and calls) it
            self._batch_boundary()
            return super()._score_batch(*args, **kwargs)

        def loglikelihood(self, requests, disable_tqdm=False):
            return self._run(super().loglikelihood, requests, "loglikelihood")

        def generate_until(self, requests, disable_tqdm=False):
            return self._run(super().generate_until, requests, "generate_until")

    generation_config = getattr(loaded.model, "generation_config", None)
    if getattr(generation_config, "max_new_tokens", None) is not None:
        # transformers lets a checkpoint's max_new_tokens win over the max_length lm-eval passes: the answers would
        # run to the checkpoint's length while the record states the task's budget.
        generation_config.max_new_tokens = None
    device = next(loaded.model.parameters()).device
    if batch_size == "auto" and device.type != "cuda":
        batch_size = AUTO_CPU_BATCH_SIZE
    return ProgressHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, device=str(device))
