"""medbench-plugin-example: a medbench plugin that adds a task, a trainer and a metric.

The ``medbench`` entry point in pyproject.toml names this module; medbench calls the hooks below when it loads
plugins. Heavy imports (torch, TRL, scikit-learn) wait until a trainer or metric is used, so that
``medbench plugins`` and ``medbench tasks`` stay fast.
"""

from pathlib import Path

from medbench import hookimpl

__version__ = "0.1.0"

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


@hookimpl
def register_tasks(register):
    # A directory is scanned for lm-eval task YAMLs; load_splits (utils.py) reads data relative to each YAML.
    register(TASKS_DIR)


@hookimpl
def register_trainers(register):
    from .trainer import ORPO

    register(ORPO())


@hookimpl
def register_metrics(register):
    from .metrics import cohen_kappa

    register("cohen_kappa", cohen_kappa, higher_is_better=True,
             description="Cohen's kappa: agreement with the reference beyond chance (scikit-learn)")
