"""Helpers for testing medbench and medbench plugins: tiny random models, a temporary leaderboard, temporary
plugin registration and the ``medbench`` command line in-process.

pytest loads this module as a plugin by itself once medbench is installed (the ``pytest11`` entry point
``medbench.testing``), so a plugin package's tests can use the fixtures with no set-up:

* ``tiny_model_dir``: a tiny random Llama with a byte-level tokenizer, saved once per session (safetensors);
  any medbench command or trainer accepts it as ``--model``.
* ``leaderboard_dir``: an empty leaderboard directory for one test (``EvalConfig(output_dir=...)``,
  ``--leaderboard-dir``); read it back with :func:`read_leaderboard`.
* ``plugin_registration``: ``plugin_registration(obj)`` registers a plugin object (a module, a class instance)
  until the test ends and returns its plugin name; an object already loaded from its entry point is left as is.
* ``medbench_cli``: ``medbench_cli("eval", "--tasks", ...)`` runs the command line in-process, with the
  commands plugins add, and returns click's ``Result`` (``exit_code``, ``output``, ``exception``).

Without pytest the plain functions work too: :func:`make_tiny_model`, :func:`registered_plugin`,
:func:`read_leaderboard`. Where pytest plugin autoloading is off, add ``-p medbench.testing``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from medbench.errors import MedbenchError

TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_byte_tokenizer():
    """A byte-level tokenizer with no merges: 256 byte tokens plus specials, built in memory in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    for special in ("<|bos|>", "<|eos|>", "<|end|>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|bos|>", eos_token="<|eos|>",
                                        pad_token="<|eos|>")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def make_tiny_model(directory: str | Path, *, seed: int = 0, hidden_size: int = 32, layers: int = 2) -> Path:
    """Save a randomly initialised Llama (about 30k parameters) with its tokenizer as safetensors. Its window is
    4096 byte tokens: a discharge note plus a judge's rubric and answer (about 2100 bytes) must fit a server that
    enforces it (`transformers serve` does)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = make_byte_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def registered_plugin(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register a plugin object (a module or any object with @hookimpl functions) for the duration of a block.

    Yields the plugin's name. An object that is already registered (a package installed with its entry point
    and loaded from it) keeps its registration and its name, and is not unregistered afterwards.
    """
    from medbench.plugins import get_plugin_manager, register_plugin, unregister_plugin

    pm = get_plugin_manager()
    if pm.is_registered(plugin):
        yield pm.get_name(plugin)
        return
    registered = register_plugin(plugin, name)
    try:
        yield registered
    finally:
        from medbench import plugins

        if plugins._manager is pm and pm.has_plugin(registered):  # unless the manager was reset meanwhile
            unregister_plugin(registered)


def read_leaderboard(directory: str | Path) -> list[dict[str, Any]]:
    """The records under a leaderboard directory, each with its per-sample rows under ``"samples"``."""
    from medbench.records import read_records, read_samples

    return [{**record, "samples": read_samples(record)} for record in read_records(Path(directory))]


def invoke_cli(*args: str, catch_exceptions: bool = True):
    """Run ``medbench ARGS`` in-process with click's CliRunner, including the commands plugins add.

    Plugin commands go on a copy of the command group, so nothing is left behind. A MedbenchError ends the run as
    the ``medbench`` command does: ``exit_code`` 2 and its one line, ``Error: problem — fix``, at the end of
    ``output``; ``result.exception`` still holds it.
    """
    import click
    from click.testing import CliRunner

    from medbench.cli import add_plugin_commands, cli

    group = type(cli)(name=cli.name, commands=dict(cli.commands), callback=cli.callback, params=list(cli.params),
                      help=cli.help, context_settings=dict(cli.context_settings))  # medbench's group, its checks too
    add_plugin_commands(group)  # as `medbench` adds them: each plugin's commands name it when they fail
    result = CliRunner().invoke(group, [str(arg) for arg in args], catch_exceptions=catch_exceptions)
    if isinstance(result.exception, MedbenchError):
        result.exit_code = result.exception.exit_code
        result.output_bytes += f"Error: {result.exception.one_line()}\n".encode()
    return result


try:
    import pytest
except ImportError:  # medbench.testing is importable without pytest; the fixtures need it
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def tiny_model_dir(tmp_path_factory) -> Path:
        """A tiny random Llama with a byte tokenizer, saved once per test session."""
        return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))

    @pytest.fixture
    def leaderboard_dir(tmp_path) -> Path:
        """An empty leaderboard directory for one test."""
        path = tmp_path / "leaderboard"
        path.mkdir()
        return path

    @pytest.fixture
    def plugin_registration():
        """``plugin_registration(obj, name=None)`` registers a plugin until the test ends; returns its name."""
        stack = contextlib.ExitStack()
        yield lambda plugin, name=None: stack.enter_context(registered_plugin(plugin, name))
        stack.close()

    @pytest.fixture
    def medbench_cli():
        """``medbench_cli(*args)`` runs the ``medbench`` command line in-process; returns click's Result."""
        return invoke_cli
