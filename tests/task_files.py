"""The bundled tasks' own files for tests: a task's generator or utils loaded as a module, and its data rows."""

import importlib.util
import json
from pathlib import Path

TASKS = Path(__file__).resolve().parent.parent / "tasks"


def task_module(task: str, name: str):
    """tasks/<task>/<name>.py loaded afresh under its own module name (a generator keeps module-level state)."""
    spec = importlib.util.spec_from_file_location(f"_test_{task}_{name}", TASKS / task / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_rows(task: str, split: str) -> list[dict]:
    """The bundled rows of one split, as written."""
    return [json.loads(line) for line in (TASKS / task / "data" / f"{split}.jsonl").read_text().splitlines()]
