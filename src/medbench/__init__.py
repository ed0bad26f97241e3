"""medbench: a plugin-based benchmark and fine-tuning harness for medical language models.

The Python API (docs/python-api.md): ``medbench.evaluate``, ``medbench.train`` and ``medbench.sweep``, the same
engine the command line runs; bad input raises ``medbench.MedbenchError``. They are imported on first use, so
``import medbench`` stays cheap.
"""

from medbench.errors import MedbenchError
from medbench.hookspecs import hookimpl

__version__ = "0.1.0"

# name -> module it lives in, imported on first access (PEP 562)
_API = {"evaluate": "medbench.api", "train": "medbench.api", "sweep": "medbench.api", "EvalResult": "medbench.api",
        "TrainResult": "medbench.api", "SweepResult": "medbench.api"}

__all__ = ["hookimpl", "__version__", "MedbenchError", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'medbench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
