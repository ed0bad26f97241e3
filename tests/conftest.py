import os
import warnings

import pytest

pytest_plugins = ["medbench.testing"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models' ops are too small to split; on 2 busy cores extra threads only spin and stall each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
