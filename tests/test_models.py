import json
import shutil
from pathlib import Path

import pytest
import torch

from medbench.errors import MedbenchError
from medbench.models import DEFAULT_MODEL, LoadOptions, resolve_model, weights_hash
from medbench.testing import make_byte_tokenizer


def test_local_directory(tiny_model_dir):
    loaded = resolve_model(str(tiny_model_dir))
    assert loaded.kind == "local"
    assert loaded.model.config.model_type == "llama"
    assert loaded.tokenizer.pad_token is not None
    assert not loaded.model.training


def test_weights_hash_tracks_weights_not_path(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    first, second = resolve_model(str(tiny_model_dir)), resolve_model(str(copy))
    assert weights_hash(first.model) == weights_hash(second.model)
    with torch.no_grad():
        second.model.model.norm.weight.add_(1e-3)
    assert weights_hash(first.model) != weights_hash(second.model)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(MedbenchError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))


def test_unknown_name_is_a_clear_error():
    with pytest.raises(MedbenchError, match="unknown model 'no-such-model'.*medbench models"):
        resolve_model("no-such-model")


def test_pickle_only_checkpoint_is_refused(tiny_model_dir, tmp_path):
    target = tmp_path / "pickled"
    target.mkdir()
    shutil.copy(tiny_model_dir / "config.json", target)
    torch.save({}, target / "pytorch_model.bin")
    with pytest.raises(MedbenchError, match="pickle weights"):
        resolve_model(str(target))


def test_partial_checkpoint_is_a_clear_error(tiny_model_dir, tmp_path):
    target = shutil.copytree(tiny_model_dir, tmp_path / "partial")
    (target / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(MedbenchError, match="could not be loaded.*corrupt or partial"):
        resolve_model(str(target))


def _save_adapter(base_ref: str, base_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(out)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_ref
    config_path.write_text(json.dumps(config))
    return out


def test_peft_adapter_takes_base_from_its_config(tiny_model_dir, tmp_path):
    adapter = _save_adapter(str(tiny_model_dir), tiny_model_dir, tmp_path / "adapter")
    loaded = resolve_model(str(adapter))
    assert loaded.kind == "peft" and loaded.base_ref == str(tiny_model_dir)
    base = resolve_model(str(tiny_model_dir))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert not torch.allclose(loaded.model(ids).logits, base.model(ids).logits)
    merged = resolve_model(str(adapter), LoadOptions(merge_adapter=True))
    with torch.no_grad():
        assert torch.allclose(merged.model(ids).logits, loaded.model(ids).logits, atol=1e-5)


def test_peft_adapter_with_missing_base(tiny_model_dir, tmp_path):
    adapter = _save_adapter(str(tmp_path / "gone"), tiny_model_dir, tmp_path / "adapter")
    with pytest.raises(MedbenchError, match="base model of adapter .* cannot be loaded"):
        resolve_model(str(adapter))


def test_hub_id_offline_not_cached_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(MedbenchError, match="not in the local hub cache and medbench is offline.*--online"):
        resolve_model("some-org/some-model")


def test_hub_id_resolves_from_local_hub_cache_offline(monkeypatch, tmp_path, tiny_model_dir):
    # The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "hub" / "models--clinic--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    loaded = resolve_model("clinic/tiny")
    assert loaded.kind == "hub" and loaded.ref == "clinic/tiny"


def test_trust_remote_code_is_off_by_default():
    assert LoadOptions().trust_remote_code is False


def test_embedded_conversion_is_cached_and_atomic(monkeypatch, tmp_path, tiny_model_dir):
    """The GGUF is converted once; a failed conversion leaves no half-written cache."""
    import medbench_plugins.builtin_models as builtin_models
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    loader = builtin_models.EmbeddedModelLoader()
    monkeypatch.setattr(loader, "gguf_path", lambda: tmp_path / "fake.gguf")
    calls = []

    def fake_gguf(path, options):
        calls.append(path)
        return AutoModelForCausalLM.from_pretrained(tiny_model_dir), make_byte_tokenizer()

    monkeypatch.setattr(builtin_models, "_load_gguf", fake_gguf)

    def failing_save(self, *args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr("transformers.PreTrainedModel.save_pretrained", failing_save)
        with pytest.raises(OSError):
            loader.ensure_converted()
    assert not loader.converted_dir().exists()
    assert not list(loader.converted_dir().parent.glob(".converting-*"))

    first = loader.load(DEFAULT_MODEL, LoadOptions())
    second = loader.load(DEFAULT_MODEL, LoadOptions())
    assert len(calls) == 2  # the failed attempt and the first successful one; the second load used the cache
    assert (loader.converted_dir() / "model.safetensors").exists()
    assert first.kind == second.kind == "embedded"
    assert weights_hash(first.model) == weights_hash(second.model)


def test_register_model_loaders(plugin_registration, tiny_model_dir):
    from medbench import hookimpl
    from medbench.models import LoadedModel, model_loaders

    class AliasLoader:
        name = "alias"
        priority = 500

        def can_load(self, ref):
            return ref == "my-alias"

        def load(self, ref, options):
            inner = resolve_model(str(tiny_model_dir), options)
            return LoadedModel(inner.model, inner.tokenizer, ref=ref, kind="alias")

        def describe(self):
            return [{"ref": "my-alias", "kind": "alias", "location": "", "status": "ok"}]

    class Plugin:
        @hookimpl
        def register_model_loaders(self, register):
            register(AliasLoader())

    plugin_registration(Plugin(), "alias-plugin")
    assert model_loaders()[0].name == "alias"
    assert resolve_model("my-alias").kind == "alias"


@pytest.mark.e2e
def test_embedded_default_and_gguf_file_load_real_weights():
    from medbench_plugins.builtin_models import EmbeddedModelLoader

    loaded = resolve_model(DEFAULT_MODEL)
    assert loaded.kind == "embedded"
    assert sum(p.numel() for p in loaded.model.parameters()) == 134_515_008
    assert loaded.tokenizer.chat_template
    gguf = EmbeddedModelLoader().gguf_path()
    from_gguf = resolve_model(str(gguf))
    assert from_gguf.kind == "gguf"
    assert weights_hash(from_gguf.model) == weights_hash(loaded.model)
    prompt = loaded.tokenizer("The capital of France is", return_tensors="pt")
    out = loaded.model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert "Paris" in loaded.tokenizer.decode(out[0])


def test_adapter_trained_on_an_adapter_loads_on_the_merged_base(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    first = _save_adapter(str(tiny_model_dir), tiny_model_dir, tmp_path / "first")
    merged_first = resolve_model(str(first), LoadOptions(merge_adapter=True)).model
    second = get_peft_model(merged_first, LoraConfig(r=4, lora_alpha=8, target_modules=["k_proj"],
                                                     init_lora_weights=False))
    second.save_pretrained(tmp_path / "second")
    config_path = tmp_path / "second" / "adapter_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "base_model_name_or_path": str(first)}))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = second(ids).logits
        loaded = resolve_model(str(tmp_path / "second"))
        assert loaded.base_ref == str(first)
        assert torch.allclose(loaded.model(ids).logits, expected, atol=1e-5)
