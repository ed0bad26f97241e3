"""Helpers for testing medbench and medbench plugins: tiny random models and temporary plugin registration.

``pytest`` picks the fixtures up with ``pytest_plugins = ["medbench.testing"]`` in a conftest.py.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

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
    """Save a randomly initialised Llama (about 30k parameters) with its tokenizer as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = make_byte_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@contextlib.contextmanager
def registered_plugin(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register a plugin object (a module or any object with @hookimpl functions) for the duration of a block."""
    from medbench.plugins import register_plugin, unregister_plugin

    registered = register_plugin(plugin, name)
    try:
        yield registered
    finally:
        unregister_plugin(registered)


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
        """``plugin_registration(obj)`` registers a plugin until the test ends."""
        stack = contextlib.ExitStack()
        yield lambda plugin, name=None: stack.enter_context(registered_plugin(plugin, name))
        stack.close()
