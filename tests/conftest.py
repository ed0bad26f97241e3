import os
import warnings

import pytest

pytest_plugins = ["medbench.testing"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def fresh_plugin_manager(monkeypatch):
    """Each test sees the plugins its environment asks for, and leaves none behind."""
    from medbench import plugins

    monkeypatch.delenv(plugins.ALLOWLIST_ENV, raising=False)
    monkeypatch.delenv(plugins.PLUGINS_DIR_ENV, raising=False)
    plugins.reset()
    with warnings.catch_warnings():
        yield
    plugins.reset()
