"""TRL's fused LM head on the CPU (medbench.trainers.fused_head): projecting only the labelled positions gives the
same per-token outputs, loss and gradients as projecting every position, and projects only those."""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer import utils as trl_utils
from trl.trainer.utils import add_fused_lm_head

from medbench.trainers.fused_head import labelled_positions_only, project_labelled_positions_only

FIELDS = ("log_probs", "entropy", "mean_logits", "is_top1")


@pytest.fixture
def full_projection(monkeypatch):
    """TRL's own predicate (every position on a CPU) for this test, whatever an earlier test installed."""
    original = trl_utils._use_triton
    while getattr(original, "__wrapped__", None) is not None:
        original = original.__wrapped__
    monkeypatch.setattr(trl_utils, "_use_triton", original)
    return original


@pytest.fixture
def head_rows(monkeypatch):
    """The number of positions each fused-head call projects."""
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    return rows


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    model = LlamaForCausalLM(config).float()
    add_fused_lm_head(model, outputs=FIELDS)
    return model


def batch():
    """Three right-padded rows with completions of 2, 1 and 0 tokens (the last trains on nothing)."""
    torch.manual_seed(1)
    ids = torch.randint(1, 97, (3, 9))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [1] * 4 + [0] * 5])
    labels = torch.full_like(ids, -100)
    labels[0, 7:9] = ids[0, 7:9]
    labels[1, 5] = ids[1, 5]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def scored(model, inputs):
    outputs = model(**inputs, fused_lm_head=True, use_cache=False)
    model.zero_grad()
    outputs.loss.backward()
    return outputs, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("shifted", [False, True])
def test_labelled_positions_only_score_and_train_as_every_position(full_projection, head_rows, shifted):
    model = tiny_llama()
    inputs = batch()
    if shifted:  # pre-shifted labels, as the shared-prompt packing and sequence parallelism pass them
        labels = inputs.pop("labels")
        inputs["shift_labels"] = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1)
    assert not labelled_positions_only("cpu")
    expected, expected_grads = scored(model, inputs)
    assert project_labelled_positions_only()
    assert labelled_positions_only("cpu")
    actual, actual_grads = scored(copy.deepcopy(model), inputs)

    width = 9 if shifted else 8
    assert head_rows == [3 * width, 3]  # every position of every row, then the three labelled ones
    assert expected.log_probs.shape == actual.log_probs.shape == (3, width)
    assert expected.log_probs[expected.label_mask].abs().min() > 0  # real scores are compared, not zeros
    for field in FIELDS + ("label_mask", "loss"):
        torch.testing.assert_close(getattr(actual, field), getattr(expected, field), rtol=1e-5, atol=1e-6)
    assert actual_grads.keys() == expected_grads.keys() and expected_grads
    for name, grad in expected_grads.items():
        torch.testing.assert_close(actual_grads[name], grad, rtol=1e-4, atol=1e-6)


def test_a_batch_without_labels_gives_a_zero_loss_that_still_backpropagates(full_projection):
    project_labelled_positions_only()
    model = tiny_llama()
    inputs = batch()
    inputs["labels"].fill_(-100)
    outputs, grads = scored(model, inputs)
    assert outputs.loss.item() == 0 and not outputs.label_mask.any()
    assert all(not grad.any() for grad in grads.values())


def test_switching_on_is_idempotent_and_keeps_trls_answer_elsewhere(full_projection):
    assert project_labelled_positions_only()
    installed = trl_utils._use_triton
    assert project_labelled_positions_only() and trl_utils._use_triton is installed
    assert installed.__wrapped__ is full_projection
    assert installed(torch.device("meta")) == full_projection(torch.device("meta"))
