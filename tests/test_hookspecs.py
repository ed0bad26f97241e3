"""Meta-test: every hook is documented and has a test named after it (as datasette does)."""

import inspect
import re
from pathlib import Path

from medbench import hookspecs

TESTS = Path(__file__).parent


def hook_names():
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "medbench_spec")]


def test_hooks_exist():
    assert set(hook_names()) >= {"register_tasks", "register_trainers", "register_metrics",
                                 "register_model_loaders", "register_commands"}


def test_every_hook_has_a_docstring():
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_hook_has_a_test_named_after_it():
    source = "\n".join(path.read_text() for path in TESTS.glob("test_*.py"))
    defined = set(re.findall(r"^def (test_\w+)", source, flags=re.M))
    missing = [name for name in hook_names() if f"test_{name}" not in defined]
    assert not missing, f"hooks without a test named test_<hook>: {missing}"
