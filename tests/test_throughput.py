"""Throughput accounting (medbench.throughput, medbench.flops) and the training fast paths (issue #7), on tiny random models, CPU."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import medbench.flops as flops
import medbench.throughput as throughput
from medbench.errors import MedbenchError
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench.trainers import hf, run as trainer_run
from medbench_plugins.dpo import DPOOptions
from medbench_plugins.dpo import prepare as prepare_dpo
from medbench_plugins.sft import SFTOptions, prepare

# hidden 32, 4 heads of 8, 2 KV heads, MLP 64, 2 layers, vocabulary 100
CONFIG = dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=8, max_position_embeddings=256)
# per layer: q 32x32 + k 32x16 + v 32x16 + o 32x32 + gate, up, down 3 x 32x64 + two norms of 32
LAYER = 1024 + 512 + 512 + 1024 + 3 * 2048 + 2 * 32
BODY = 2 * LAYER + 32  # the layers and the final norm
EMBEDDING = 100 * 32


@pytest.fixture(scope="module")
def medqa():
    return load_training_examples("medqa")


def llama(tied: bool):
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(tie_word_embeddings=tied, **CONFIG))


def sft_request(model_dir, tmp_path, examples, keep_order=True, **options):
    config = build_config(SFTOptions, {}, {"train_batch_size": 4, "max_steps": 2, "max_examples": 8,
                                           "lora_dropout": 0.0, "logging_steps": 1, **options}, "sft")
    return TrainRequest(model_ref=str(model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                        examples=list(examples), keep_order=keep_order)


# --- the FLOP count -----------------------------------------------------------------------------------------------

def test_full_fine_tuning_costs_6n_per_token_with_the_embedding_lookup_left_out():
    tied = flops.parameter_counts(llama(tied=True))
    # tied: the embedding table is also the output head, a matmul: counted once
    assert (tied.total, tied.trainable, tied.matmul_trainable, tied.matmul_frozen) == (
        BODY + EMBEDDING, BODY + EMBEDDING, BODY + EMBEDDING, 0)
    assert flops.flops_per_token(tied) == 6 * (BODY + EMBEDDING)

    untied = flops.parameter_counts(llama(tied=False))
    # untied: the input table is a lookup (no FLOPs), the separate head is a matmul
    assert untied.total == BODY + 2 * EMBEDDING and untied.matmul == BODY + EMBEDDING
    assert flops.flops_per_token(untied) == 6 * (BODY + EMBEDDING)


def test_lora_costs_4n_for_frozen_weights_and_6n_for_the_adapter():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(llama(tied=True), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    counts = flops.parameter_counts(model)
    # per layer: q A 4x32 + B 32x4, v A 4x32 + B 16x4
    adapter = 2 * (4 * 32 + 32 * 4 + 4 * 32 + 16 * 4)
    assert counts.trainable == counts.matmul_trainable == adapter == 896
    assert counts.matmul_frozen == BODY + EMBEDDING
    assert flops.flops_per_token(counts) == 6 * 896 + 4 * (BODY + EMBEDDING)
    # a reference forward in every step (DPO without precomputed log-probs): the base, adapter disabled, forward
    assert flops.flops_per_token(counts, reference_forward=True, peft=True) == \
        6 * 896 + 4 * (BODY + EMBEDDING) + 2 * (BODY + EMBEDDING)


def test_attention_flops_grow_with_the_square_of_the_sequence():
    config = LlamaConfig(**CONFIG)
    assert flops.attention_flops_per_sequence(config, 10) == 12 * 2 * 32 * 100
    assert flops.attention_flops_per_sequence(config, 20) == 4 * flops.attention_flops_per_sequence(config, 10)


def test_peak_flops_from_the_environment_the_table_or_none(monkeypatch):
    monkeypatch.delenv(flops.PEAK_ENV, raising=False)
    assert flops.peak_flops("cpu", torch.float32)[0] is None
    monkeypatch.setenv(flops.PEAK_ENV, "2.5")
    assert flops.peak_flops("cpu", torch.float32) == (2.5e12, f"{flops.PEAK_ENV}=2.5")

    monkeypatch.delenv(flops.PEAK_ENV)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name, bf16, fp32 in [("NVIDIA H100 80GB HBM3", 989, 67), ("NVIDIA H100 PCIe", 756, 51),
                             ("NVIDIA A100-SXM4-80GB", 312, 19.5), ("NVIDIA L4", 121, 30.3), ("NVIDIA L40S", 362, 91.6)]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert flops.peak_flops("cuda", torch.bfloat16)[0] == bf16 * 1e12
        assert flops.peak_flops("cuda", torch.float32)[0] == fp32 * 1e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    value, why = flops.peak_flops("cuda", torch.bfloat16)
    assert value is None and flops.PEAK_ENV in why


# --- token counting -----------------------------------------------------------------------------------------------

def test_tokens_are_counted_without_padding():
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    examples = [{"input_ids": list(range(1, n + 1))} for n in (3, 7, 1, 5)]
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(examples)
    assert padded["input_ids"].numel() == 28
    assert int(throughput.count_tokens(padded)) == 16
    assert throughput.sequence_lengths(padded) == [3, 7, 1, 5]
    flat = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(examples)
    assert "attention_mask" not in flat
    assert int(throughput.count_tokens(flat)) == 16
    assert throughput.sequence_lengths(flat) == [3, 7, 1, 5]


def test_a_run_logs_tokens_per_second_and_puts_the_figures_in_its_checkpoints(tiny_model_dir, tmp_path, medqa,
                                                                              monkeypatch):
    monkeypatch.setenv(flops.PEAK_ENV, "1")
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa, max_steps=2, save_steps=1))
    real_tokens = sum(len(ids) for ids in run.trainer.train_dataset["input_ids"])  # 8 examples, 2 steps of 4
    checkpoints = run.run()

    first, final = (c.metrics for c in checkpoints)
    counts = flops.parameter_counts(run.trainer.model)
    assert final["train_tokens"] == real_tokens
    assert final["flops_per_token"] == first["flops_per_token"] == 6 * counts.matmul_trainable + \
        4 * counts.matmul_frozen
    assert final["trainable_params"] == counts.trainable and final["total_params"] == counts.total
    assert final["tokens_per_s"] > 0 and final["train_tokens_per_s"] > 0 and final["peak_memory_gb"] > 0
    assert final["measured_steps"] == 1  # step 1 is the warm-up
    assert final["train_mfu"] == pytest.approx(final["train_tokens_per_s"] * final["flops_per_token"] / 1e12,
                                               rel=1e-3)
    assert final["train_tokens_per_second"] == final["tokens_per_s"]  # the older manifest name
    # every log carries them: trainer_state.json too
    state = json.loads((checkpoints[-1].path / "trainer_state.json").read_text())
    assert all("tokens_per_s" in entry and "mfu" in entry for entry in state["log_history"][1:] if "loss" in entry)


def test_mfu_is_none_on_a_cpu_without_a_peak(tiny_model_dir, tmp_path, medqa, monkeypatch):
    monkeypatch.delenv(flops.PEAK_ENV, raising=False)
    (checkpoint,) = prepare(sft_request(tiny_model_dir, tmp_path, medqa)).run()
    assert "train_mfu" not in checkpoint.metrics and "mfu" not in checkpoint.metrics
    assert checkpoint.metrics["train_tokens_per_s"] > 0


def test_the_progress_bar_shows_tokens_per_second():
    assert throughput.describe({"tokens_per_s": 12345.6, "mfu": 0.4123}) == "12,346 tok/s · MFU 41.2%"
    assert throughput.describe({"tokens_per_s": 10.0}) == "10 tok/s"


# --- padding-free batches in the sampler's order ------------------------------------------------------------------

def test_padding_free_batches_give_the_padded_loss(tiny_model_dir, tmp_path, medqa):
    padded = prepare(sft_request(tiny_model_dir, tmp_path / "a", medqa, padding_free=False))
    flat = prepare(sft_request(tiny_model_dir, tmp_path / "b", medqa, padding_free=True))
    assert not padded.trainer.padding_free and flat.trainer.padding_free
    rows = [padded.trainer.train_dataset[i] for i in range(4)]
    padded_batch = padded.trainer.data_collator(rows)
    flat_batch = flat.trainer.data_collator(rows)
    assert padded_batch["input_ids"].shape[0] == 4 and flat_batch["input_ids"].shape[0] == 1
    assert int(throughput.count_tokens(flat_batch)) == int(throughput.count_tokens(padded_batch))
    # the same starting weights on both sides
    flat.trainer.model.load_state_dict(padded.trainer.model.state_dict())
    for run in (padded, flat):
        run.trainer.model.train()
    with torch.no_grad():
        loss_padded = padded.trainer.compute_loss(padded.trainer.model, padded_batch)
        loss_flat = flat.trainer.compute_loss(flat.trainer.model, flat_batch)
    assert loss_flat.item() == pytest.approx(loss_padded.item(), rel=1e-5)


def test_padding_free_training_keeps_the_order_and_ends_with_the_same_weights(tiny_model_dir, tmp_path, medqa):
    given = medqa[:8][::-1]
    results = {}
    for padding_free in (False, True):
        run = prepare(sft_request(tiny_model_dir, tmp_path / str(padding_free), given, padding_free=padding_free))
        seen = []
        step = run.trainer.training_step
        tokenizer = run.trainer.processing_class

        def recording_step(model, inputs, *args, _step=step, _seen=seen, _tokenizer=tokenizer, **kwargs):
            rows = inputs["input_ids"].tolist()
            if "position_ids" in inputs:  # one row: split it where the positions restart
                positions, row = inputs["position_ids"][0].tolist(), rows[0]
                starts = [i for i, p in enumerate(positions) if p == 0] + [len(row)]
                rows = [row[a:b] for a, b in zip(starts, starts[1:])]
            for ids in rows:
                text = _tokenizer.decode(ids)
                _seen.extend(e.doc_id for e in given if e.prompt in text)
            return _step(model, inputs, *args, **kwargs)

        run.trainer.training_step = recording_step
        checkpoints = run.run()
        results[padding_free] = (seen, {k: v.detach().clone() for k, v in run.trainer.model.named_parameters()
                                        if v.requires_grad}, checkpoints[-1].metrics["loss"])

    (seen_padded, weights_padded, loss_padded), (seen_flat, weights_flat, loss_flat) = results[False], results[True]
    assert seen_flat == seen_padded == [e.doc_id for e in given]  # the curriculum's order, exactly
    assert loss_flat == pytest.approx(loss_padded, rel=1e-5)
    # Padded and packed batches sum in different orders, and Adam scales each update to about the learning rate
    # whatever the gradient's size: near-zero weights agree to float32 noise (seen: 1.9e-6), not bit for bit.
    for name, weight in weights_padded.items():
        torch.testing.assert_close(weights_flat[name], weight, rtol=1e-4, atol=1e-5)


def test_padding_free_is_on_by_default_only_for_variable_length_attention(tiny_model_dir, tmp_path, medqa):
    from medbench_plugins.sft import padding_free

    options = build_config(SFTOptions, {}, {}, "sft")
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa))
    assert run.trainer.model.config._attn_implementation == "sdpa" and not run.trainer.padding_free

    class Loaded:
        class model:
            class config:
                _attn_implementation = "flash_attention_2"

    assert padding_free(options, Loaded) is True
    assert padding_free(build_config(SFTOptions, {}, {"padding_free": "false"}, "sft"), Loaded) is False


# --- attention, Liger, compile ------------------------------------------------------------------------------------

def test_attention_and_liger_choices(monkeypatch):
    import importlib.util

    assert hf.pick_attention("auto", "cpu", torch.float32) == "sdpa"
    assert hf.pick_attention("eager", "cuda", torch.bfloat16) == "eager"
    assert hf.use_liger(None, "cpu") is False
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("flash_attn", "liger_kernel") else real_find_spec(name, *a))
    assert hf.pick_attention("auto", "cuda", torch.bfloat16) == "flash_attention_2"
    assert hf.pick_attention("auto", "cuda", torch.float32) == "sdpa"
    assert hf.pick_attention("auto", "cpu", torch.bfloat16) == "sdpa"
    assert hf.use_liger(None, "cuda") is True and hf.use_liger(None, "cpu") is False
    assert hf.use_liger(False, "cuda") is False


def test_liger_on_request_without_the_package_is_a_clear_error(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "liger_kernel" else real_find_spec(name, *a))
    with pytest.raises(MedbenchError, match="liger-kernel package.*pip install liger-kernel"):
        hf.use_liger(True, "cuda")


def test_attention_and_compile_options_reach_the_trainer(tiny_model_dir, tmp_path, medqa):
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa, attn_implementation="eager", torch_compile="true"))
    assert run.trainer.model.config._attn_implementation == "eager"
    assert run.trainer.args.torch_compile is True
    default = prepare(sft_request(tiny_model_dir, tmp_path / "d", medqa))
    assert default.trainer.args.torch_compile is False
    assert default.trainer.args.activation_checkpointing  # `auto` on a CPU: tests/test_gradient_checkpointing.py


def test_dpo_counts_the_reference_forward_only_when_it_runs_in_every_step(tiny_model_dir, tmp_path, medqa):
    def request(precompute):
        config = build_config(DPOOptions, {}, {"train_batch_size": 2, "max_steps": 1, "max_examples": 4,
                                               "precompute_ref_log_probs": precompute}, "dpo")
        return TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / str(precompute),
                            config=config, examples=list(medqa))

    assert prepare_dpo(request("true")).reference_forward is False
    assert prepare_dpo(request("false")).reference_forward is True


# --- out-of-memory back-off ---------------------------------------------------------------------------------------

def out_of_memory_above(run, limit: int, from_step: int):
    """Make the trainer raise a CUDA out-of-memory error for micro-batches of more than ``limit`` examples, from
    optimizer step ``from_step`` on (so the first attempt has already moved the weights)."""
    step = run.trainer.training_step

    def failing_step(model, inputs, *args, **kwargs):
        if inputs["input_ids"].shape[0] > limit and run.trainer.state.global_step >= from_step:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return step(model, inputs, *args, **kwargs)

    run.trainer.training_step = failing_step


def trained_weights(run):
    return {k: v.detach().clone() for k, v in run.trainer.model.named_parameters() if v.requires_grad}


@pytest.mark.parametrize("save_steps, keep_order", [(0, True), (1, True), (0, False)])
def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(tiny_model_dir, tmp_path, medqa, monkeypatch,
                                                                      save_steps, keep_order):
    monkeypatch.setattr(trainer_run, "may_run_out_of_memory", lambda trainer: True)  # as on a GPU
    reference = prepare(sft_request(tiny_model_dir, tmp_path / "ref", medqa, max_steps=3, max_examples=12,
                                    keep_order=keep_order))
    reference.run()

    run = prepare(sft_request(tiny_model_dir, tmp_path / "oom", medqa, max_steps=3, max_examples=12,
                              keep_order=keep_order, save_steps=save_steps))
    out_of_memory_above(run, limit=2, from_step=1)  # step 1 trains at 4; step 2 fails, so the run starts again
    with pytest.warns(UserWarning, match="per-device batch of 2 x 2 accumulation steps"):
        checkpoints = run.run()

    assert run.backoff.retries == [(2, 2)]
    assert (run.trainer.args.per_device_train_batch_size, run.trainer.args.gradient_accumulation_steps) == (2, 2)
    assert checkpoints[-1].step == 3
    reference_weights, weights = trained_weights(reference), trained_weights(run)
    for name, weight in reference_weights.items():
        torch.testing.assert_close(weights[name], weight, rtol=1e-4, atol=1e-6)


def test_out_of_memory_at_a_batch_of_one_is_a_clear_error(tiny_model_dir, tmp_path, medqa, monkeypatch):
    monkeypatch.setattr(trainer_run, "may_run_out_of_memory", lambda trainer: True)
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa, train_batch_size=2))
    out_of_memory_above(run, limit=0, from_step=0)
    with pytest.raises(MedbenchError, match="out of GPU memory with a per-device batch of 1.*--gradient-checkpointing"):
        with pytest.warns(UserWarning):
            run.run()


def test_out_of_memory_back_off_is_a_no_op_on_a_cpu(tiny_model_dir, tmp_path, medqa):
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa))
    assert not trainer_run.may_run_out_of_memory(run.trainer)
    out_of_memory_above(run, limit=2, from_step=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run.run()
    from medbench import progress

    assert progress._live == []  # the failed run took its progress bar off the screen


def test_out_of_memory_back_off_can_be_turned_off(tiny_model_dir, tmp_path, medqa, monkeypatch):
    monkeypatch.setattr(trainer_run, "may_run_out_of_memory", lambda trainer: True)
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa, auto_batch_size="false"))
    out_of_memory_above(run, limit=2, from_step=0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run.run()
