"""medbench: a plugin-based benchmark and fine-tuning harness for medical language models."""

from medbench.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["hookimpl", "__version__"]
