"""A loaded model's identity (medbench.weights_identity): file-loaded models are identified by their files, hashed
once and cached by stat; anything that would score differently gets another identity; a model changed in memory
never keeps its files' identity; the digest cache survives damage and concurrent writers."""

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

import medbench.weights_identity as identity
from medbench.models import LoadedModel, LoadOptions, resolve_model
from medbench.weights_identity import weights_identity


@pytest.fixture
def digests(tmp_path, monkeypatch):
    """A fresh digest cache, no racy window (files here are seconds old) and a count of files streamed from disk."""
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 0)
    streamed: list[str] = []
    real = identity.stream_sha256

    def counting(path):
        streamed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(identity, "stream_sha256", counting)
    return streamed


@pytest.fixture
def no_tensor_hash(monkeypatch):
    """Fails the test if the identity falls back to hashing tensors: the files must have identified the model."""
    def refuse(model):
        raise AssertionError("the identity hashed the tensors, not the files")

    monkeypatch.setattr(identity, "weights_hash", refuse)


def copy_model(source: Path, target: Path) -> Path:
    return Path(shutil.copytree(source, target))


def in_memory(loaded: LoadedModel) -> str:
    """The identity of the same model object built in memory (no source files): its tensors are hashed."""
    return weights_identity(LoadedModel(loaded.model, loaded.tokenizer, ref="in-memory", kind="memory"))


def edit_one_weight(directory: Path, name: str = "model.norm.weight") -> None:
    from safetensors.torch import load_file, save_file

    path = directory / "model.safetensors"
    tensors = load_file(path)
    tensors[name][0] += 1.0
    save_file(tensors, path, metadata={"format": "pt"})


def test_same_files_at_two_paths_hash_equal(tiny_model_dir, tmp_path, digests, no_tensor_hash):
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    first, second = resolve_model(str(tiny_model_dir)), resolve_model(str(copy))
    assert {Path(f).name for f in first.source_files} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert weights_identity(first) == weights_identity(second)
    assert len(weights_identity(first)) == 32


def test_one_changed_weight_changes_the_identity(tiny_model_dir, tmp_path, digests):
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    before = weights_identity(resolve_model(str(copy)))
    edit_one_weight(copy)
    assert weights_identity(resolve_model(str(copy))) != before


def test_load_dtype_changes_the_identity(tiny_model_dir, digests, no_tensor_hash):
    fp32 = resolve_model(str(tiny_model_dir), LoadOptions(dtype="fp32"))
    bf16 = resolve_model(str(tiny_model_dir), LoadOptions(dtype="bf16"))
    assert weights_identity(fp32) != weights_identity(bf16)


def test_changed_config_changes_the_identity(tiny_model_dir, tmp_path, digests):
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    before = weights_identity(resolve_model(str(copy)))
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-3
    (copy / "config.json").write_text(json.dumps(config))
    assert weights_identity(resolve_model(str(copy))) != before


def test_changed_chat_template_changes_the_identity(tiny_model_dir, tmp_path, digests):
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    before = weights_identity(resolve_model(str(copy)))
    (copy / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert weights_identity(resolve_model(str(copy))) != before


def save_adapter(base_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base_dir)
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out


def test_adapter_base_and_merged_adapter_all_differ(tiny_model_dir, tmp_path, digests, no_tensor_hash):
    adapter = save_adapter(tiny_model_dir, tmp_path / "adapter")
    base = resolve_model(str(tiny_model_dir))
    unmerged = resolve_model(str(adapter))
    merged = resolve_model(str(adapter), LoadOptions(merge_adapter=True))
    assert unmerged.source_files == (*base.source_files, str(adapter / "adapter_config.json"),
                                     str(adapter / "adapter_model.safetensors"))
    assert len({weights_identity(base), weights_identity(unmerged), weights_identity(merged)}) == 3
    # the same adapter copied elsewhere (same base) is the same model
    copy = copy_model(adapter, tmp_path / "adapter-copy")
    assert weights_identity(resolve_model(str(copy))) == weights_identity(unmerged)


def test_adapter_weights_are_part_of_the_identity(tiny_model_dir, tmp_path, digests):
    from safetensors.torch import load_file, save_file

    adapter = save_adapter(tiny_model_dir, tmp_path / "adapter")
    before = weights_identity(resolve_model(str(adapter)))
    tensors = load_file(adapter / "adapter_model.safetensors")
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] * 2
    save_file(tensors, adapter / "adapter_model.safetensors", metadata={"format": "pt"})
    assert weights_identity(resolve_model(str(adapter))) != before


def test_in_place_change_after_load_is_never_the_stale_file_identity(tiny_model_dir, digests):
    pristine = weights_identity(resolve_model(str(tiny_model_dir)))
    for mutate in (lambda w: w.add_(1e-3),  # autograd-visible: the version counter moves
                   lambda w: w.data.add_(1e-3),  # .data bypasses the version counter: the checksum sees it
                   lambda w: setattr(w, "data", w.data.clone().mul_(2))):  # a new tensor in its place
        loaded = resolve_model(str(tiny_model_dir))
        assert weights_identity(loaded) == pristine
        with torch.no_grad():
            mutate(loaded.model.model.norm.weight)
        assert weights_identity(loaded) != pristine
        assert weights_identity(loaded) == in_memory(loaded)  # identified by its tensors now


def test_an_optimizer_step_is_noticed(tiny_model_dir, digests):
    loaded = resolve_model(str(tiny_model_dir))
    pristine = weights_identity(loaded)
    loaded.model.train()
    loss = loaded.model(torch.tensor([[5, 6, 7, 8]]), labels=torch.tensor([[5, 6, 7, 8]])).loss
    loss.backward()
    torch.optim.SGD(loaded.model.parameters(), lr=0.1).step()
    assert weights_identity(loaded) != pristine
    assert weights_identity(loaded) == in_memory(loaded)


def test_a_config_edited_in_memory_changes_the_identity(tiny_model_dir, digests, no_tensor_hash):
    loaded = resolve_model(str(tiny_model_dir))
    before = weights_identity(loaded)
    loaded.model.config.rms_norm_eps = 1e-2
    assert weights_identity(loaded) != before


def test_a_file_rewritten_after_loading_is_not_taken_for_the_loaded_weights(tiny_model_dir, tmp_path, digests):
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    loaded = resolve_model(str(copy))
    edit_one_weight(copy)  # the model in memory still holds the old weights
    assert weights_identity(loaded) == in_memory(loaded)
    assert weights_identity(loaded) != weights_identity(resolve_model(str(copy)))


def test_a_model_without_files_is_identified_by_its_tensors(tiny_model_dir, monkeypatch):
    loaded = resolve_model(str(tiny_model_dir))
    bare = LoadedModel(loaded.model, loaded.tokenizer, ref="x", kind="memory")
    assert bare._load_state is None and bare.source_files == ()
    hashed = []
    real = identity.weights_hash
    monkeypatch.setattr(identity, "weights_hash", lambda model: hashed.append(model) or real(model))
    before = weights_identity(bare)
    assert hashed == [loaded.model]
    with torch.no_grad():
        loaded.model.model.norm.weight.add_(1.0)
    assert weights_identity(bare) != before


def test_a_cache_hit_does_not_read_the_files(tiny_model_dir, digests, no_tensor_hash):
    first = weights_identity(resolve_model(str(tiny_model_dir)))
    assert "model.safetensors" in digests and len(digests) == len(resolve_model(str(tiny_model_dir)).source_files)
    digests.clear()
    assert weights_identity(resolve_model(str(tiny_model_dir))) == first
    assert digests == []


def test_files_written_just_now_are_not_cached(tiny_model_dir, tmp_path, digests, monkeypatch):
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 60 * 10**9)  # "just now": the last minute
    copy = copy_model(tiny_model_dir, tmp_path / "copy")
    loaded = resolve_model(str(copy))
    first = weights_identity(loaded)
    streamed = len(digests)
    assert weights_identity(loaded) == first and len(digests) == 2 * streamed  # read again: a second write in
    # the same timestamp tick would otherwise pass for unchanged


@pytest.mark.parametrize("damage", ["garbage", "forged digest", "wrong types", "huge", "link", "directory", "empty"])
def test_a_damaged_or_hostile_cache_never_gives_a_wrong_identity(tiny_model_dir, tmp_path, digests, damage):
    truth = weights_identity(resolve_model(str(tiny_model_dir)))
    entries = sorted(identity.digest_cache_dir().glob("*.json"))
    assert entries
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"sha256": "0" * 64}))
    for entry in entries:
        fields = json.loads(entry.read_text())
        entry.unlink()
        if damage == "garbage":
            entry.write_bytes(b"\x00\xff{not json")
        elif damage == "forged digest":  # valid JSON and stat, another digest: the entry's own check fails
            entry.write_text(json.dumps({**fields, "sha256": "0" * 64}))
        elif damage == "wrong types":
            entry.write_text(json.dumps({**fields, "size": str(fields["size"]), "sha256": ["x"]}))
        elif damage == "huge":
            entry.write_text(json.dumps({**fields, "pad": "x" * 100_000}))
        elif damage == "link":  # never followed out of the cache
            entry.symlink_to(outside)
        elif damage == "directory":
            entry.mkdir()
        else:
            entry.write_bytes(b"")
    digests.clear()
    assert weights_identity(resolve_model(str(tiny_model_dir))) == truth
    assert "model.safetensors" in digests  # re-hashed from disk


def test_concurrent_cache_writers_leave_a_valid_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(1 << 16))
    signature = identity.FileSignature.of(os.stat(weights))
    truth = identity.stream_sha256(weights)
    errors = []

    def write_and_read():
        try:
            for _ in range(50):
                identity._write_cache_entry(weights.resolve(), signature, truth)
                assert identity._read_cache_entry(weights.resolve(), signature) in (None, truth)
        except Exception as exc:  # collected: an assertion in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=write_and_read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert identity._read_cache_entry(weights.resolve(), signature) == truth
    assert not list(identity.digest_cache_dir().glob(".entry-*"))  # no staging file left behind


def test_an_unwritable_cache_only_costs_a_rehash(tiny_model_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MEDBENCH_CACHE", str(blocker))
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 0)
    loaded = resolve_model(str(tiny_model_dir))
    assert weights_identity(loaded) == weights_identity(loaded)


def test_sharded_checkpoint(tmp_path, digests, no_tensor_hash):
    from transformers import AutoModelForCausalLM

    from medbench.testing import make_tiny_model

    single = make_tiny_model(tmp_path / "single")
    sharded = tmp_path / "sharded"
    model = AutoModelForCausalLM.from_pretrained(single)
    model.save_pretrained(sharded, max_shard_size="20KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(single / name, sharded / name)
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 1 and (sharded / "model.safetensors.index.json").exists()
    loaded = resolve_model(str(sharded))
    names = {Path(f).name for f in loaded.source_files}
    assert {"model.safetensors.index.json", *(s.name for s in shards)} <= names
    first = weights_identity(loaded)
    assert weights_identity(resolve_model(str(copy_model(sharded, tmp_path / "copy")))) == first

    from safetensors.torch import load_file, save_file

    last = load_file(shards[-1])
    key = sorted(last)[0]
    last[key] = last[key] + 1.0
    save_file(last, shards[-1], metadata={"format": "pt"})
    assert weights_identity(resolve_model(str(sharded))) != first


def test_hub_snapshot_is_identified_by_its_files(tiny_model_dir, tmp_path, digests, no_tensor_hash, monkeypatch):
    import hashlib

    import huggingface_hub.constants

    hub = tmp_path / "hub"
    repo = hub / "models--tiny-org--tiny-llama"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for source in sorted(tiny_model_dir.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        shutil.copy(source, blob)
        (snapshot / source.name).symlink_to(Path("..", "..", "blobs", blob.name))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    loaded = resolve_model("tiny-org/tiny-llama")
    assert loaded.kind == "hub" and loaded.source_files
    assert weights_identity(loaded) == weights_identity(resolve_model(str(tiny_model_dir)))


def test_gguf_file_is_identified_by_the_file(tiny_model_dir, tmp_path, digests, no_tensor_hash, monkeypatch):
    """The GGUF loader lists its one file (de-quantising is stubbed with the tiny model: the loader's listing and
    the file's hashing are under test, not transformers' GGUF reader)."""
    from medbench_plugins import builtin_models

    def dequantised(path, options):
        inner = resolve_model(str(tiny_model_dir), options)
        return inner.model, inner.tokenizer

    monkeypatch.setattr(builtin_models, "_load_gguf", dequantised)
    gguf = tmp_path / "model.Q4_0.gguf"
    gguf.write_bytes(b"GGUF" + os.urandom(4096))
    loaded = resolve_model(str(gguf))
    assert loaded.kind == "gguf" and loaded.source_files == (str(gguf.resolve()),)
    first = weights_identity(loaded)
    assert digests == [gguf.name]
    assert weights_identity(resolve_model(str(gguf))) == first and digests == [gguf.name]  # cached
    gguf.write_bytes(b"GGUF" + os.urandom(4096))  # another quantised file, the same model in memory here
    assert weights_identity(resolve_model(str(gguf))) != first


def test_bench_hash_tiny_prints_every_row(tmp_path):
    """benchmarks/bench_hash.py runs end to end on a tiny model (a smoke run: no timing is asserted)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_hash.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "MEDBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(script), "--tiny", "--repeats", "1", "--json", str(tmp_path / "f.json")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    for row in ("old tensor hash", "new, cold", "new, cached", "load check", "fallback after an edit"):
        assert row in done.stdout, done.stdout
    (figures,) = json.loads((tmp_path / "f.json").read_text())
    assert figures["files_read_cold"] == figures["files"] > 0 and figures["files_read_cached"] == 0


def test_directory_identity_for_backends_that_load_a_directory_themselves(tiny_model_dir, tmp_path, digests):
    # vLLM loads the directory itself: its identity is the directory's files plus how the backend loads them.
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    original = identity.directory_identity(tiny_model_dir, "vllm|dtype=auto")
    assert original == identity.directory_identity(copy, "vllm|dtype=auto")
    assert original != identity.directory_identity(copy, "vllm|dtype=float16")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "rope_theta": 1234.0}))
    assert original != identity.directory_identity(copy, "vllm|dtype=auto")
