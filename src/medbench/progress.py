"""Rich progress for long work. Library tqdm bars are switched off by the CLI (TQDM_DISABLE=1)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def new_progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def trainer_progress_callback(description: str):
    """A transformers TrainerCallback drawing one rich bar over optimizer steps, with the latest loss."""
    from transformers import TrainerCallback

    class RichProgressCallback(TrainerCallback):
        def __init__(self):
            self.progress: Progress | None = None
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
                self.progress.update(self.bar, status=f"loss {logs['loss']:.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress:
                self.progress.stop()
                self.progress = None

    return RichProgressCallback()
