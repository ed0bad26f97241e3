"""Registers the task YAMLs bundled with medbench (the top-level tasks/ folder, shipped as medbench_tasks)."""

from medbench import hookimpl
from medbench_tasks import TASKS_DIR


@hookimpl
def register_tasks(register):
    register(TASKS_DIR)
