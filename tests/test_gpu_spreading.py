"""A model larger than one GPU is spread over the visible GPUs under --device auto (no GPU needed to check the plan:
the GPUs' free memory is given, or CUDA is simulated)."""

import json

import pytest
import torch

from medbench.errors import MedbenchError
from medbench.models import GPU_RUN_HEADROOM, LoadOptions, gpu_memory_map, plan_gpu_memory

GIB = 1 << 30


def test_a_model_that_fits_the_first_gpu_stays_on_it():
    assert plan_gpu_memory(16 * GIB, [80 * GIB, 80 * GIB]) is None
    assert plan_gpu_memory(16 * GIB, []) is None  # no GPU: nothing to plan


def test_a_70b_model_is_spread_over_two_80gb_gpus_each_keeping_room_to_run():
    plan = plan_gpu_memory(129 * GIB, [79 * GIB, 79 * GIB])
    assert plan == {0: 79 * GIB - GPU_RUN_HEADROOM, 1: 79 * GIB - GPU_RUN_HEADROOM}


def test_a_model_no_set_of_gpus_can_hold_is_one_line_naming_the_fix():
    with pytest.raises(MedbenchError) as raised:
        plan_gpu_memory(136 * GIB, [79 * GIB])
    message = str(raised.value)
    assert "136.0 GiB" in message and "the one visible GPU" in message and "\n" not in message
    assert "tensor_parallel" in raised.value.fix and "more GPUs" in raised.value.fix


def _simulate_gpus(monkeypatch, free: list[int]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(free))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=0: (free[index], free[index]))


def _weights(tmp_path, stored: str, size: int):
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": stored}))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"\0" * (size // 2))
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"\0" * (size - size // 2))
    return tmp_path


def test_weights_are_sized_in_the_dtype_they_load_in(monkeypatch, tmp_path):
    # 10 KB of fp32 weights load as 5 KB of bf16: GPUs with 4 KB usable each need both, not one
    path = _weights(tmp_path, "float32", 10_000)
    _simulate_gpus(monkeypatch, [GPU_RUN_HEADROOM + 4_000, GPU_RUN_HEADROOM + 4_000])
    assert gpu_memory_map(path, torch.bfloat16) == {0: 4_000, 1: 4_000}
    _simulate_gpus(monkeypatch, [GPU_RUN_HEADROOM + 6_000])
    assert gpu_memory_map(path, torch.bfloat16) is None  # 5.5 KB with slack fits one
    with pytest.raises(MedbenchError):
        gpu_memory_map(path, torch.float32)  # 11 KB with slack does not


def test_data_parallel_ranks_each_keep_their_own_copy(monkeypatch, tmp_path):
    path = _weights(tmp_path, "bfloat16", 10_000)
    _simulate_gpus(monkeypatch, [GPU_RUN_HEADROOM + 4_000, GPU_RUN_HEADROOM + 4_000])
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert gpu_memory_map(path, torch.bfloat16) is None


def test_the_loader_asks_transformers_to_spread_only_under_device_auto(monkeypatch, tiny_model_dir):
    import transformers

    import plugins.builtin_models as builtin_models

    calls = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def recording(path, **kwargs):
        calls.append(dict(kwargs))
        kwargs.pop("device_map", None), kwargs.pop("max_memory", None)  # the CPU stands in for the GPUs here
        return real(path, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", recording)
    monkeypatch.setattr(builtin_models, "pick_device", lambda device: "cuda" if device == "auto" else device)
    monkeypatch.setattr(builtin_models, "pick_dtype", lambda dtype, device: torch.float32)
    monkeypatch.setattr(builtin_models, "gpu_memory_map", lambda path, dtype: {0: 1_000, 1: 1_000})
    model, _ = builtin_models._load_hf_dir(str(tiny_model_dir), LoadOptions(device="auto"))
    assert calls[-1]["device_map"] == "auto" and calls[-1]["max_memory"] == {0: 1_000, 1: 1_000}
    assert not model.training
    builtin_models._load_hf_dir(str(tiny_model_dir), LoadOptions(device="cpu"))
    assert "device_map" not in calls[-1]
