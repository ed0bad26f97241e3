"""The dpo trainer plugin on a tiny random Llama and the bundled MedQA training split."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.models import resolve_model
from medbench.training import MANIFEST_NAME, TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench.trainers.hf import Formatter
from medbench_plugins.dpo import DPO, DPOOptions, prepare, task_pairs
from medbench_plugins.dpo_sampling import names_gold, sample_answers

REWARD_METRICS = {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"}


@pytest.fixture(scope="module")
def medqa():
    return load_training_examples("medqa")


def dpo_request(model_dir, tmp_path, examples, **options):
    config = build_config(DPOOptions, {}, {"train_batch_size": 2, "max_steps": 2, "max_examples": 4, **options}, "dpo")
    return TrainRequest(model_ref=str(model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                        examples=list(examples))


def sequence_logps(model, batch):
    """Summed log-probabilities of each sequence's completion tokens, from the full logits."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    token_logps = logits[:, :-1].log_softmax(-1).gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return (token_logps * batch["completion_mask"][:, 1:]).sum(-1)


def test_lora_checkpoints_carry_reward_metrics_and_load_and_evaluate(tiny_model_dir, tmp_path, medqa):
    checkpoints = DPO().train(dpo_request(tiny_model_dir, tmp_path, medqa, max_steps=4, save_steps=2))

    assert [(c.step, c.final, c.kind) for c in checkpoints] == [(2, False, "adapter"), (4, True, "adapter")]
    for checkpoint in checkpoints:
        assert REWARD_METRICS <= set(checkpoint.metrics)
        assert math.isfinite(checkpoint.metrics["loss"]) and checkpoint.metrics["train_tokens_per_second"] > 0
        assert not [p for p in checkpoint.path.iterdir() if p.suffix in (".bin", ".pt", ".pth")]
    final = checkpoints[-1].path
    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_model_dir.resolve())
    (record,) = evaluate(str(final), EvalConfig(tasks=["medqa"], limit=4, output_dir=tmp_path / "lb"))
    assert record["n"] == 4 and record["model"]["kind"] == "peft"


def test_full_dpo_without_precomputed_reference_saves_a_model(tiny_model_dir, tmp_path, medqa):
    request = dpo_request(tiny_model_dir, tmp_path, medqa, method="full", precompute_ref_log_probs=False, max_steps=1)
    run = prepare(request)
    assert run.trainer.ref_model is not None  # a frozen copy of the starting model
    (checkpoint,) = run.run()
    assert checkpoint.kind == "model" and REWARD_METRICS <= set(checkpoint.metrics)
    assert resolve_model(str(checkpoint.path)).kind == "local"


@pytest.mark.parametrize("loss_type, label_smoothing", [("sigmoid", 0.0), ("ipo", 0.0), ("robust", 0.2)])
def test_loss_on_a_toy_batch_equals_the_closed_form(tiny_model_dir, tmp_path, medqa, loss_type, label_smoothing):
    beta = 0.5
    run = prepare(dpo_request(tiny_model_dir, tmp_path, medqa, loss_type=loss_type, beta=beta, lora_dropout=0.0,
                              label_smoothing=label_smoothing, precompute_ref_log_probs=False))
    model = run.trainer.model
    assert run.trainer.ref_model is None  # with LoRA the disabled adapter is the reference
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero (policy == reference); move it so the margins are not trivial
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.eval()
    batch = run.trainer.data_collator([run.trainer.train_dataset[i] for i in range(2)])

    with torch.no_grad():
        trl_loss = run.trainer.compute_loss(model, batch)
        policy_chosen, policy_rejected = sequence_logps(model, batch).chunk(2)
        with model.disable_adapter():
            ref_chosen, ref_rejected = sequence_logps(model, batch).chunk(2)
    chosen_ratio, rejected_ratio = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        expected = -F.logsigmoid(beta * logits)
    elif loss_type == "robust":
        eps = label_smoothing
        expected = (-(1 - eps) * F.logsigmoid(beta * logits) + eps * F.logsigmoid(-beta * logits)) / (1 - 2 * eps)
    else:  # IPO on log-ratios averaged per completion token, as TRL computes it
        chosen_len, rejected_len = batch["completion_mask"].sum(-1).chunk(2)
        expected = (chosen_ratio / chosen_len - rejected_ratio / rejected_len - 1 / (2 * beta)) ** 2
    assert logits.abs().min() > 1e-3
    assert run.trainer.shared_prompt_share() == 1.0  # the loss above was scored in packed rows
    torch.testing.assert_close(trl_loss, expected.mean(), rtol=1e-4, atol=1e-5)


def test_task_pairs_reject_a_wrong_choice_chosen_by_the_seed(medqa):
    pairs = task_pairs(medqa[:10], seed=7, task="medqa")
    assert [p.completion for p in pairs] == [e.completion for e in medqa[:10]]
    assert all(p.rejected[0] in e.rejected for p, e in zip(pairs, medqa))
    assert task_pairs(medqa[:10][::-1], seed=7, task="medqa")[::-1] == pairs  # per document, not per position
    assert [p.rejected for p in task_pairs(medqa[:10], seed=8, task="medqa")] != [p.rejected for p in pairs]


def test_pairs_file_with_chosen_equal_to_rejected_names_the_line(tiny_model_dir, tmp_path, medqa):
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("\n".join([json.dumps({"prompt": "Q1? Answer:", "chosen": " A", "rejected": " B"}), "",
                                     json.dumps({"prompt": "Q2? Answer:", "chosen": " C", "rejected": " C "})]))
    with pytest.raises(MedbenchError, match=r"pairs.jsonl line 3: chosen and rejected are the same text"):
        prepare(dpo_request(tiny_model_dir, tmp_path, medqa, pairs="file", pairs_file=str(pairs_file)))


def test_pairs_file_trains(tiny_model_dir, tmp_path, medqa):
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps({"prompt": f"Question {i}? Answer:", "chosen": " yes", "rejected": " no"})
                                  + "\n" for i in range(4)))
    run = prepare(dpo_request(tiny_model_dir, tmp_path, medqa, pairs="file", pairs_file=str(pairs_file)))
    assert [p.doc_id for p in run.examples] == [1, 2, 3, 4]
    assert run.trainer.train_dataset[0]["prompt"] == "Question 0? Answer:"
    assert run.trainer.train_dataset[0]["chosen"] == " yes<|eos|>"
    assert run.run()[-1].final


def test_sampling_is_seeded(tiny_model_dir, medqa):
    options = DPOOptions(pairs="sampled", samples_per_prompt=2, sample_max_new_tokens=6)
    loaded = resolve_model(str(tiny_model_dir))
    formatter = Formatter(loaded.tokenizer, use_chat_template=False)

    def draw(seed):
        torch.manual_seed(seed)
        return sample_answers(loaded.model, formatter, medqa[:4], options)

    first = draw(3)
    assert len(first) == 4 and all(len(samples) == 2 for samples in first)
    assert draw(3) == first and draw(4) != first


def test_a_sampled_answer_is_wrong_only_if_it_never_names_the_gold_answer(medqa):
    example = medqa[0]  # gold C
    assert names_gold("C", example) and names_gold("C. RET", example) and names_gold("The answer is (C)", example)
    assert names_gold("A or C", example)  # hedged: not a clean rejection
    assert not names_gold("B", example) and not names_gold("Calcitonin", example) and not names_gold("", example)


def test_options_are_checked(tmp_path):
    with pytest.raises(MedbenchError, match="label_smoothing applies only to the robust loss.*--loss-type robust"):
        build_config(DPOOptions, {}, {"label_smoothing": "0.1"}, "dpo")
    with pytest.raises(MedbenchError, match="unknown loss_type 'kto'"):
        build_config(DPOOptions, {}, {"loss_type": "kto"}, "dpo")
    with pytest.raises(MedbenchError, match="--pairs file and --pairs-file go together"):
        build_config(DPOOptions, {}, {"pairs": "file"}, "dpo")
    with pytest.raises(MedbenchError, match="pairs file .*missing.jsonl does not exist"):
        prepare(TrainRequest(model_ref="unused", task="medqa", output_dir=tmp_path, config=build_config(
            DPOOptions, {}, {"pairs": "file", "pairs_file": str(tmp_path / "missing.jsonl")}, "dpo")))


def test_train_command_scores_every_dpo_checkpoint(tiny_model_dir, tmp_path):
    from medbench.cli import cli
    from medbench.leaderboard import build_table

    result = CliRunner().invoke(cli, [
        "train", "--plugin", "dpo", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "4",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--max-steps", "2",
        "--save-steps", "1", "--max-examples", "4", "--train-batch-size", "2", "--loss-type", "ipo"])
    assert result.exit_code == 0, result.output

    (run_dir,) = (tmp_path / "runs").iterdir()
    manifests = [json.loads((run_dir / f"checkpoint-{step}" / MANIFEST_NAME).read_text()) for step in (1, 2)]
    assert [m["final"] for m in manifests] == [False, True]
    assert all(m["plugin"] == "dpo" and m["kind"] == "adapter" and REWARD_METRICS <= set(m["train_metrics"])
               for m in manifests)
    assert manifests[1]["config"]["loss_type"] == "ipo" and manifests[1]["config"]["pairs"] == "task"
    table = build_table(tmp_path / "lb")
    assert len(table.rows) == 2 and table.columns == ["medqa"]
    assert all(row.label.startswith("dpo:") for row in table.rows)


def test_a_run_of_a_few_steps_precomputes_only_the_pairs_they_reach(medqa):
    from medbench_plugins.dpo import pairs_trained

    pairs = task_pairs(medqa, seed=1, task="medqa")
    options = DPOOptions(max_steps=2, train_batch_size=2, gradient_accumulation_steps=2)
    reached = pairs_trained(pairs, options, seed=1)
    assert len(reached) == 8 < len(pairs) and reached == pairs_trained(pairs, options, seed=1)
    assert [pairs.index(p) for p in reached] == sorted(pairs.index(p) for p in reached)  # in the data's order
    assert reached != pairs_trained(pairs, options, seed=2)  # a seeded sample, not the first rows
    assert pairs_trained(pairs, DPOOptions(), seed=1) == pairs  # whole epochs: every pair
