"""Rich progress for long work. Library tqdm bars are switched off by the CLI (TQDM_DISABLE=1)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


_live: list[Progress] = []  # the progress display on screen, if any (rich allows one live display at a time)


class _TrackedProgress(Progress):
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


def new_progress() -> Progress | _NestedProgress:
    """A rich progress display; inside another one (a sweep running cells) its bars join that display."""
    if _live:
        return _NestedProgress(_live[-1])
    return _TrackedProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, transient=False)


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
