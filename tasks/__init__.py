"""medbench's bundled task YAMLs and their data (package data; registered by medbench_plugins.builtin_tasks)."""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
