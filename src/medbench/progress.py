"""Progress for long work: rich bars on a terminal; piped, plain timestamped lines (a bar redrawn in a log file
shows nothing until it ends). Library tqdm bars are switched off by the CLI (TQDM_DISABLE=1)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from medbench.console import SafeConsole, terminal_safe

console = SafeConsole(stderr=True, markup=False)  # descriptions carry task names and labels: brackets are text


_live: list[Progress] = []  # the progress display on screen, if any (rich allows one live display at a time)


def _safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A bar's text (description, status) with its control characters escaped: it carries task names, labels and
    recipe names, and ESC[2J in one would clear the screen on every redraw."""
    return {key: terminal_safe(value) if isinstance(value, str) else value for key, value in fields.items()}


class _TrackedProgress(Progress):
    def add_task(self, description: str, *args: Any, **fields: Any) -> Any:
        return super().add_task(terminal_safe(description), *args, **_safe_fields(fields))

    def update(self, task_id: Any, **fields: Any) -> None:
        super().update(task_id, **_safe_fields(fields))

    def start(self) -> None:
        super().start()
        _live.append(self)

    def stop(self) -> None:
        if self in _live:
            _live.remove(self)
        super().stop()


class _NestedProgress:
    """Bars added to the display already on screen (a sweep's), removed again when this one stops."""

    def __init__(self, parent: Progress) -> None:
        self.parent, self.bars = parent, []

    def add_task(self, *args: Any, **kwargs: Any) -> Any:
        bar = self.parent.add_task(*args, **kwargs)
        self.bars.append(bar)
        return bar

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.parent.update(*args, **kwargs)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for bar in self.bars:
            self.parent.remove_task(bar)
        self.bars = []

    def __enter__(self) -> "_NestedProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _env_seconds(name: str, default: float) -> float:
    """A number of seconds from the environment; anything unreadable (or negative) is the default, never a crash."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


class PlainProgress:
    """Progress as plain lines for a pipe or a log: ``HH:MM:SS description done/total (pct) status, elapsed``, one when
    a bar starts, then at most one per bar every ``MEDBENCH_PROGRESS_SECONDS`` (default 30), and one when it ends."""

    def __init__(self, interval: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = _env_seconds("MEDBENCH_PROGRESS_SECONDS", 30.0) if interval is None else interval
        self.clock = clock
        self.bars: dict[int, dict[str, Any]] = {}
        self._next_id = 0

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        bar_id, self._next_id = self._next_id, self._next_id + 1
        now = self.clock()
        self.bars[bar_id] = {"description": description, "total": total, "completed": completed,
                             "status": fields.get("status", ""), "started": now, "printed": now, "ended": False}
        self._print(self.bars[bar_id])
        return bar_id

    def update(self, bar_id: int, *, completed: float | None = None, advance: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        bar = self.bars[bar_id]
        if total is not None:
            bar["total"] = total
        if description is not None:
            bar["description"] = description
        if "status" in fields:
            bar["status"] = fields["status"]
        if completed is not None:
            bar["completed"] = completed
        if advance:
            bar["completed"] += advance
        finished = bar["total"] is not None and bar["completed"] >= bar["total"]
        if finished and not bar["ended"]:
            bar["ended"] = True
            self._print(bar)
        elif not finished and self.clock() - bar["printed"] >= self.interval:
            self._print(bar)

    def advance(self, bar_id: int, advance: float = 1) -> None:
        self.update(bar_id, advance=advance)

    def remove_task(self, bar_id: int) -> None:
        self.bars.pop(bar_id, None)

    def _print(self, bar: dict[str, Any]) -> None:
        bar["printed"] = now = self.clock()
        done, total = bar["completed"], bar["total"]
        count = f"{done:g}/{total:g}" + (f" ({100 * done / total:.0f}%)" if total else "") if total is not None \
            else f"{done:g}"
        status = f" {terminal_safe(bar['status'])}" if bar["status"] else ""
        console.print(f"{time.strftime('%H:%M:%S')} {terminal_safe(bar['description'])} {count}{status}, "
                      f"{now - bar['started']:.0f} s", highlight=False, markup=False, soft_wrap=True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.bars = {}

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def new_progress() -> Progress | _NestedProgress | PlainProgress:
    """A rich progress display; inside another one (a sweep running cells) its bars join that display. When stderr
    is not a terminal, plain timestamped lines instead."""
    if not console.is_terminal:
        return PlainProgress()
    if _live:
        return _NestedProgress(_live[-1])
    return _TrackedProgress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[status]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, transient=False)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """One bar for one phase (a reference pass, sampling): yields ``advance(n)``."""
    with new_progress() as progress:
        bar = progress.add_task(description, total=total, status="")
        yield lambda n=1: progress.update(bar, advance=n)


def trainer_progress_callback(description: str):
    """A transformers TrainerCallback drawing one rich bar over optimizer steps, with the latest loss and, where
    medbench.throughput's meter logs them, tokens/s and MFU."""
    from transformers import TrainerCallback

    class RichProgressCallback(TrainerCallback):
        def __init__(self):
            self.progress: Any = None
            self.bar: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.progress = new_progress()
                self.progress.start()
                self.bar = self.progress.add_task(description, total=state.max_steps, status="")

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress:
                self.progress.update(self.bar, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress and logs and "loss" in logs:
                from medbench.throughput import describe

                status = " · ".join(part for part in (f"loss {logs['loss']:.4f}", describe(logs)) if part)
                self.progress.update(self.bar, status=status)

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress:
                self.progress.stop()
                self.progress = None

    return RichProgressCallback()
