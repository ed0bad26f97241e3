"""Shared-prompt preference batches (medbench.trainers.shared_prompt): one packed row per pair scores every
completion token as TRL's two-row batch does, with the same gradients, and falls back where it cannot."""

import copy
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig
from trl.trainer.utils import add_fused_lm_head

from medbench.trainers.shared_prompt import (install_shared_prompt, pack_pairs, sharing_counts,
                                             unsupported_reason)
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench_plugins.dpo import DPO, DPOOptions, prepare

FIELDS = ("log_probs", "entropy", "mean_logits", "is_top1")
PROMPTS = [[5, 6, 7, 8, 9], [11, 12, 13], [20, 21, 22, 23, 24, 25, 26]]
CHOSEN = [[30, 31], [40], [50, 51, 52]]
REJECTED = [[60], [70, 71, 72, 73], [80, 81]]


def tiny_llama(attention: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation=attention)
    model = LlamaForCausalLM(config).float()
    add_fused_lm_head(model, outputs=FIELDS)
    return model


def two_row_batch(prompts=PROMPTS, chosen=CHOSEN, rejected=REJECTED):
    """TRL's collated form: [prompt + chosen] rows, then [prompt + rejected] rows, right-padded."""
    rows = [p + c for p, c in zip(prompts, chosen)] + [p + r for p, r in zip(prompts, rejected)]
    completion = [[0] * len(p) + [1] * len(c) for p, c in zip(prompts, chosen)] + \
                 [[0] * len(p) + [1] * len(r) for p, r in zip(prompts, rejected)]
    width = max(map(len, rows))
    input_ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
    attention_mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    completion_mask = torch.tensor([m + [0] * (width - len(m)) for m in completion])
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "labels": input_ids.masked_fill(completion_mask == 0, -100)}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_packed_row_scores_and_trains_as_the_two_rows_do(attention):
    two_rows = tiny_llama(attention)
    packed = copy.deepcopy(two_rows)
    assert install_shared_prompt(packed) is None
    batch = two_row_batch()

    expected = two_rows(**batch, fused_lm_head=True, use_cache=False)
    actual = packed(**batch, fused_lm_head=True, use_cache=False)

    assert sharing_counts(packed) == {"packed": 1, "two_rows": 0}
    completion = batch["labels"][:, 1:] != -100
    assert expected.log_probs[completion].abs().min() > 0  # the compared values are real scores, not zeros
    for field in FIELDS + ("label_mask",):
        torch.testing.assert_close(getattr(actual, field), getattr(expected, field), rtol=1e-5, atol=1e-5)
    expected.log_probs.sum().backward()
    actual.log_probs.sum().backward()
    for (name, want), got in zip(two_rows.named_parameters(), packed.parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_rejected_tokens_see_the_prompt_and_themselves_never_the_chosen_ones():
    batch = two_row_batch([[1, 2, 3]], [[4, 5]], [[6, 7]])
    packed = pack_pairs(batch["input_ids"], batch["attention_mask"], batch["labels"], "sdpa", torch.float32)

    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 3, 6, 7]]  # prompt, chosen, the prompt's last token, rejected
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 4, 2, 3, 4]]
    assert packed.shift_labels.tolist() == [[-100, -100, 4, 5, -100, 6, 7, -100]]
    seen = [[k for k in range(8) if packed.attention_mask[0, 0, j, k]] for j in range(8)]
    assert seen == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 5], [0, 1, 5, 6], [0, 1, 5, 6, 7]]
    eager = pack_pairs(batch["input_ids"], batch["attention_mask"], batch["labels"], "eager", torch.float32)
    assert torch.equal(eager.attention_mask == 0, packed.attention_mask)  # additive: 0 where seen, very negative else


def test_pairs_whose_rows_differ_before_the_answer_run_as_two_rows():
    two_rows = tiny_llama("sdpa")
    packed = copy.deepcopy(two_rows)
    install_shared_prompt(packed)
    batch = two_row_batch(rejected=REJECTED)
    batch["input_ids"][4, 1] = 90  # the second pair's rejected row has another prompt (a left-truncated one, say)

    actual = packed(**batch, fused_lm_head=True, use_cache=False)

    assert sharing_counts(packed) == {"packed": 0, "two_rows": 1}
    torch.testing.assert_close(actual.log_probs, two_rows(**batch, fused_lm_head=True, use_cache=False).log_probs,
                               rtol=0, atol=0)
    plain = packed(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])  # generation, eval: untouched
    assert plain.logits.shape[:2] == batch["input_ids"].shape and sharing_counts(packed)["two_rows"] == 1


@pytest.mark.parametrize("config, reason", [
    (LlamaConfig(attn_implementation="flash_attention_2"), "takes no custom mask"),
    (MistralConfig(sliding_window=4096), "sliding-window"),
    (LlamaConfig(num_local_experts=8), "mixture-of-experts"),
])
def test_models_a_mask_cannot_serve_are_left_alone(config, reason):
    if reason != "takes no custom mask":
        config._attn_implementation = "sdpa"
    else:
        config._attn_implementation_internal = "flash_attention_2"
    assert reason in unsupported_reason(SimpleNamespace(config=config))


def test_dpo_with_shared_prompts_trains_as_with_two_rows(tiny_model_dir, tmp_path):
    examples = load_training_examples("medqa")
    losses = {}
    for share in (True, False):
        config = build_config(DPOOptions, {}, {"train_batch_size": 2, "max_steps": 3, "max_examples": 6,
                                               "logging_steps": 1, "lora_dropout": 0.0, "learning_rate": 1e-2,
                                               "share_prompt": share}, "dpo")
        request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / str(share),
                               config=config, examples=list(examples))
        run = prepare(request)
        run.run()
        losses[share] = [entry["loss"] for entry in run.trainer.state.log_history if "loss" in entry]
    assert len(losses[True]) == 3 and losses[True][-1] != losses[True][0]  # the steps moved the policy
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    (checkpoint,) = DPO().train(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "m",
                                             config=build_config(DPOOptions, {}, {"train_batch_size": 2,
                                                                                  "max_steps": 1,
                                                                                  "max_examples": 2}, "dpo"),
                                             examples=list(examples)))
    assert checkpoint.metrics["shared_prompt_share"] == 1.0  # the reference pass and every step ran packed
