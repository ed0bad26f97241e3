"""What the four study recipes need from the sft and dpo trainers: real sampled rejections of comparable length,
DPO after SFT, loss on every token for continued training, and no silent caps on examples or steps."""

import json
import math
from dataclasses import replace

import pytest
import torch

from medbench.errors import MedbenchError
from medbench.models import LoadOptions, resolve_model
from medbench.training import MANIFEST_NAME, TrainRequest, build_config, train
from medbench.trainingdata import TrainingExample, load_training_examples
from medbench_plugins import dpo as dpo_plugin
from medbench.trainers.hf import Formatter
from medbench_plugins.dpo import DPOOptions
from medbench_plugins.dpo_sampling import Sample, names_gold, pick_rejected, sampled_pairs
from medbench_plugins.sft import SFTOptions
from medbench_plugins.sft import prepare as prepare_sft


@pytest.fixture(scope="module")
def medqa():
    return load_training_examples("medqa")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return resolve_model(str(tiny_model_dir))


def scripted_generate(tokenizer, continuations, calls):
    """A stand-in for model.generate that returns the given continuations (in order, ``num_return_sequences`` per
    prompt), ending each with EOS when it holds the marker ``<EOS>``, else cut at the token budget like generate."""
    queue = list(continuations)

    def generate(input_ids, attention_mask=None, max_new_tokens=None, num_return_sequences=1, **kwargs):
        calls.append({"max_new_tokens": max_new_tokens, "prompts": input_ids.shape[0]})
        rows = []
        for prompt in input_ids.repeat_interleave(num_return_sequences, dim=0):
            text = queue.pop(0)
            ended = text.endswith("<EOS>")
            ids = tokenizer(text.removesuffix("<EOS>"), add_special_tokens=False)["input_ids"][:max_new_tokens]
            if ended and len(ids) < max_new_tokens:
                ids.append(tokenizer.eos_token_id)
            rows.append(prompt.tolist() + ids)
        width = max(len(row) for row in rows)
        return torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])

    return generate


def test_sampled_rejection_is_a_complete_wrong_answer_closest_in_length(tiny, medqa, monkeypatch):
    example = medqa[0]  # gold C, chosen " C" (2 byte tokens)
    calls = []
    monkeypatch.setattr(tiny.model, "generate", scripted_generate(tiny.tokenizer, [
        "The answer is C.\nQuestion 2",  # names the gold answer: never rejected
        "D. Calcitonin\nQuestion 2",  # wrong and complete, but 14 tokens against 2
        "B\nQuestion 2",  # wrong, complete at its line break, 2 tokens: the rejection
        "A",  # still running at the budget: incomplete
    ], calls))
    options = DPOOptions(pairs="sampled", samples_per_prompt=4)
    (pair,) = sampled_pairs(tiny.model, Formatter(tiny.tokenizer, False), [example], options, seed=0)
    assert pair.rejected == [" B"] and pair.completion == example.completion
    assert calls == [{"max_new_tokens": 4, "prompts": 1}]  # 2 x the chosen answer's 2 tokens


def test_long_answers_are_kept_whole_to_eos_and_length_controlled(tiny, monkeypatch):
    chosen = "Admitted with pneumonia.\nTreated with ceftriaxone; discharged home on day 4."
    example = TrainingExample(doc_id=0, prompt="Summarise:", completion=" " + chosen, answer=chosen)
    n = len(tiny.tokenizer(" " + chosen)["input_ids"])
    long_sample = "Admitted for chest pain.\nRuled out for infarction, started aspirin, home on day 2, well."
    monkeypatch.setattr(tiny.model, "generate", scripted_generate(tiny.tokenizer, [
        "Fine.<EOS>",  # complete but far too short
        long_sample + "<EOS>",  # complete, several lines, comparable length: kept whole
        "x" * 500,  # never ends within the budget
    ], []))
    options = DPOOptions(pairs="sampled", samples_per_prompt=3)
    (pair,) = sampled_pairs(tiny.model, Formatter(tiny.tokenizer, False), [example], options, seed=0)
    assert pair.rejected == [" " + long_sample]
    assert 0.5 <= len(tiny.tokenizer(pair.rejected[0])["input_ids"]) / n <= 2.0


def test_an_answer_the_evaluation_counts_correct_is_never_rejected(tiny):
    """clinical_reasoning_open accepts aliases ("100% oxygen" for "100% oxygen by non-rebreather mask"): DPO must not
    train against an answer its own evaluation scores as right, though it lacks the gold string."""
    from medbench.trainingdata import answer_grader

    example = next(e for e in load_training_examples("clinical_reasoning_open") if e.answer.startswith("100% oxygen"))
    grade = answer_grader("clinical_reasoning_open")
    options = DPOOptions(pairs="sampled", length_ratio_min=0.1, length_ratio_max=10.0)
    alias, wrong = Sample("100% oxygen", True), Sample("Intravenous methylene blue", True)
    assert not names_gold(alias.text, example) and grade(example.doc, alias.text) is True
    assert pick_rejected(example, [alias], tiny.tokenizer, options, grade) == (None, "every answer was correct")
    assert pick_rejected(example, [alias, wrong], tiny.tokenizer, options, grade)[0].strip() == wrong.text
    assert answer_grader("medqa")(example.doc, "A") is None  # log-likelihood scored: it cannot judge text


def test_pairs_outside_the_length_band_are_dropped_and_counted(tiny, medqa):
    example = medqa[0]
    options = DPOOptions(pairs="sampled", length_ratio_min=0.5, length_ratio_max=2.0)
    short_enough = [Sample("B", True)]
    assert pick_rejected(example, short_enough, tiny.tokenizer, options) == (" B", "")
    assert pick_rejected(example, [Sample("Bradycardia", True)], tiny.tokenizer, options) == (
        None, "no answer within the length band")
    assert pick_rejected(example, [Sample("C", True)], tiny.tokenizer, options)[1] == \
        "every answer was correct"
    assert pick_rejected(example, [Sample("B", False), Sample("", True)], tiny.tokenizer, options)[1] == \
        "no complete answer"
    wide = DPOOptions(pairs="sampled", length_ratio_max=10.0)
    assert pick_rejected(example, [Sample("Bradycardia", True)], tiny.tokenizer, wide)[0] == " Bradycardia"


def test_dropped_pairs_are_reported_and_none_left_is_an_error(tiny, medqa, monkeypatch):
    monkeypatch.setattr(tiny.model, "generate", scripted_generate(
        tiny.tokenizer, ["B\n", "Bradycardia\n"], []))
    options = DPOOptions(pairs="sampled", samples_per_prompt=1, sample_max_new_tokens=32)  # room to finish
    with pytest.warns(UserWarning, match=r"1 of 2 prompts kept; dropped 1 no answer within the length band"):
        pairs = sampled_pairs(tiny.model, Formatter(tiny.tokenizer, False), medqa[:2], options, seed=0)
    assert [p.doc_id for p in pairs] == [0]
    monkeypatch.setattr(tiny.model, "generate", scripted_generate(tiny.tokenizer, ["Bradycardia\n"], []))
    with pytest.raises(MedbenchError, match=r"none of 1 prompts gave a sampled pair \(1 no answer within the "
                                            r"length band.*--length-ratio-max"):
        sampled_pairs(tiny.model, Formatter(tiny.tokenizer, False), medqa[:1], options, seed=0)


def test_sampled_pairs_train_end_to_end(tiny_model_dir, tmp_path, medqa, monkeypatch):
    from transformers import LlamaForCausalLM

    from medbench.testing import make_byte_tokenizer

    golds = [e.answer for e in medqa[:4]]
    wrong = ["D" if gold == "A" else "A" for gold in golds]
    answers = [f"{wrong[0]}\n", f"{golds[1]}\n", f"{wrong[2]}\n", f"{wrong[3]}\n"]  # the 2nd names its gold
    generate = scripted_generate(make_byte_tokenizer(), answers, [])
    monkeypatch.setattr(LlamaForCausalLM, "generate", lambda self, **kwargs: generate(**kwargs))
    config = build_config(DPOOptions, {}, {"pairs": "sampled", "samples_per_prompt": 1, "max_steps": 2,
                                           "max_examples": 4, "train_batch_size": 2}, "dpo")
    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                           examples=list(medqa[:4]))  # 4 of 4: the sample is all of them, in order
    with pytest.warns(UserWarning, match=r"3 of 4 prompts kept; dropped 1 every answer was correct"):
        run = dpo_plugin.prepare(request)
    assert [(p.doc_id, p.rejected) for p in run.examples] == [(0, [f" {wrong[0]}"]), (2, [f" {wrong[2]}"]),
                                                               (3, [f" {wrong[3]}"])]
    assert run.run()[-1].final
    # Every checkpoint records what DPO trained on: a null result is read beside the pairs kept.
    generate = scripted_generate(make_byte_tokenizer(), answers, [])  # the same answers again
    with pytest.warns(UserWarning, match="3 of 4 prompts kept"):
        (checkpoint,) = dpo_plugin.DPO().train(replace(request, output_dir=tmp_path / "again"))
    assert {k: v for k, v in checkpoint.metrics.items() if k.startswith("pairs_")} == {
        "pairs_offered": 4, "pairs_kept": 3, "pairs_dropped_every_answer_was_correct": 1, "pairs_trained": 3}


def test_length_band_must_contain_one():
    with pytest.raises(MedbenchError, match=r"length band \[1.5, 2.0\] must contain 1"):
        build_config(DPOOptions, {}, {"length_ratio_min": "1.5"}, "dpo")


def log_probs(model, tokenizer, texts):
    """Summed log-probability of each text's tokens after the first, under ``model``."""
    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logits = model(input_ids=ids).logits
            out.append(float(logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).sum()))
    return torch.tensor(out)


def test_dpo_after_sft_starts_from_and_is_regularised_towards_the_sft_model(tiny_model_dir, tmp_path, medqa):
    sft_config = build_config(SFTOptions, {}, {"max_steps": 2, "max_examples": 4, "train_batch_size": 2,
                                               "learning_rate": 0.05}, "sft")
    (sft,) = train("sft", TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "sft",
                                       config=sft_config, examples=list(medqa)), "sft-run")
    sft_ref = str(sft.path)
    assert sft.kind == "adapter"

    dpo_config = build_config(DPOOptions, {}, {"max_steps": 2, "max_examples": 4, "train_batch_size": 2,
                                               "precompute_ref_log_probs": "false"}, "dpo")
    request = TrainRequest(model_ref=sft_ref, task="medqa", output_dir=tmp_path / "dpo", config=dpo_config,
                           examples=list(medqa))
    run = dpo_plugin.prepare(request)
    # A fresh adapter on the SFT model merged into its base; disabled, it is the SFT model: the reference.
    texts = [e.prompt + e.completion for e in medqa[:3]]
    sft_model = resolve_model(sft_ref, LoadOptions(merge_adapter=True)).model
    base_model = resolve_model(str(tiny_model_dir)).model
    policy = run.trainer.model
    policy.eval()
    with policy.disable_adapter():
        reference = log_probs(policy, run.trainer.processing_class, texts)
    torch.testing.assert_close(reference, log_probs(sft_model, run.trainer.processing_class, texts))
    assert not torch.allclose(reference, log_probs(base_model, run.trainer.processing_class, texts))
    assert run.trainer.ref_model is None and sum(p.requires_grad for p in policy.parameters()) > 0

    (dpo,) = train("dpo", request, "dpo-run")
    manifest = json.loads((dpo.path / MANIFEST_NAME).read_text())
    assert manifest["parent_model"] == sft_ref and manifest["plugin"] == "dpo"
    assert manifest["train_metrics"]["reference_model"] == sft_ref
    adapter = json.loads((dpo.path / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(sft.path.resolve())  # resolves recursively: DPO -> SFT -> base
    assert resolve_model(str(dpo.path)).kind == "peft"


@pytest.mark.parametrize("loss_on", ["completion", "all"])
def test_loss_on_all_trains_on_the_prompt_tokens_too(tiny_model_dir, tmp_path, medqa, loss_on):
    config = build_config(SFTOptions, {}, {"max_steps": 1, "max_examples": 2, "train_batch_size": 2,
                                           "loss_on": loss_on}, "sft")
    run = prepare_sft(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run",
                                   config=config, examples=list(medqa)))
    row, first = run.trainer.train_dataset[0], run.examples[0]  # the seeded sample's first row
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    tokenizer = run.trainer.processing_class
    prompt_len = len(tokenizer(first.prompt)["input_ids"])
    if loss_on == "all":
        assert row["labels"] == row["input_ids"]  # every token, the prompt's included
        assert tokenizer.decode(trained).startswith(first.prompt[:40])
    else:
        assert all(label == -100 for label in row["labels"][:prompt_len])
        assert tokenizer.decode(trained) == first.completion + "<|eos|>"


def test_full_continued_training_on_all_tokens_changes_every_weight_and_saves_a_model(tiny_model_dir, tmp_path,
                                                                                      medqa):
    config = build_config(SFTOptions, {}, {"method": "full", "loss_on": "all", "max_steps": 2, "max_examples": 4,
                                           "train_batch_size": 2, "learning_rate": 1e-3}, "sft")
    (checkpoint,) = train("sft", TrainRequest(model_ref=str(tiny_model_dir), task="medqa",
                                              output_dir=tmp_path / "run", config=config, examples=list(medqa)),
                          "cpt")
    assert checkpoint.kind == "model" and math.isfinite(checkpoint.metrics["train_loss"])
    trained = resolve_model(str(checkpoint.path)).model.state_dict()
    start = resolve_model(str(tiny_model_dir)).model.state_dict()
    changed = [name for name in start if not torch.equal(start[name], trained[name])]
    assert "model.embed_tokens.weight" in changed and any("mlp" in name for name in changed)
    manifest = json.loads((checkpoint.path / MANIFEST_NAME).read_text())
    assert manifest["config"]["loss_on"] == "all" and manifest["config"]["method"] == "full"


def test_loss_on_is_checked():
    with pytest.raises(MedbenchError, match=r"unknown loss_on 'prompt'.*--loss-on with one of completion, all"):
        build_config(SFTOptions, {}, {"loss_on": "prompt"}, "sft")


def test_more_examples_than_the_split_holds_is_an_error_naming_both(tiny_model_dir, tmp_path, medqa):
    config = build_config(SFTOptions, {}, {"max_examples": 256}, "sft")
    with pytest.raises(MedbenchError, match=r"--max-examples 256 but the training data of task 'medqa' holds only 60 "
                                            r"examples.*--max-examples 60 or fewer, or train on your own"):
        prepare_sft(TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run",
                                 config=config, examples=list(medqa)))
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text(json.dumps({"prompt": "Q?", "chosen": " A", "rejected": " B"}) + "\n")
    config = build_config(DPOOptions, {}, {"pairs": "file", "pairs_file": str(pairs_file), "max_examples": 2}, "dpo")
    with pytest.raises(MedbenchError, match=r"--max-examples 2 but pairs file .*pairs.jsonl holds only 1 examples"):
        dpo_plugin.prepare(TrainRequest(model_ref="unused", task="medqa", output_dir=tmp_path / "dpo", config=config))


@pytest.mark.parametrize("value", ["0", "-2"])
def test_max_steps_zero_is_refused(value):
    for options in (SFTOptions, DPOOptions):
        with pytest.raises(MedbenchError, match=rf"--max-steps must be 1 to 1,000,000,000 optimizer steps.*"
                                                rf", got {value}.*"
                                                r"--max-steps -1"):
            build_config(options, {}, {"max_steps": value}, "x")


def test_train_command_refuses_max_steps_zero_in_one_line(tiny_model_dir, tmp_path):
    from medbench.testing import invoke_cli

    result = invoke_cli("train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa",
                        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
                        "--max-steps", "0")
    assert isinstance(result.exception, MedbenchError)
    assert "--max-steps must be 1 to 1,000,000,000 optimizer steps" in result.exception.one_line()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint-*"))


def test_a_label_named_in_another_case_is_never_rejected():
    yes = TrainingExample(doc_id=0, prompt="UTI?", completion=" yes", answer="yes")
    assert names_gold("Yes.", yes) and names_gold("YES, it is", yes) and not names_gold("No", yes)
    letter = TrainingExample(doc_id=0, prompt="Q", completion=" A", answer="A")
    assert names_gold("A.", letter) and not names_gold("a beta blocker", letter)


def test_sft_and_dpo_plan_checks_read_the_data_not_a_model(tmp_path):
    from medbench_plugins.dpo import DPO
    from medbench_plugins.sft import SFT

    assert SFT().plan_check("medqa", {"max_examples": "60"}) is None
    assert SFT().plan_check("medqa", {"max_examples": 256}) == (
        "--max-examples 256 but the training data of task 'medqa' holds only 60 examples — pass --max-examples 60 or "
        "fewer, or train on your own larger data file")
    assert "gives no rationale for 60 of 60" in SFT().plan_check("medqa", {"target": "rationale"})
    assert SFT().plan_check("adrd_prediction", {"target": "rationale"}) is None
    with pytest.raises(MedbenchError, match=r"has no option --no-such-option"):  # the recipe's error: raised
        SFT().plan_check("medqa", {"no_such_option": 1})
    assert DPO().plan_check("medqa", {"pairs": "task", "max_examples": 16}) is None
    assert DPO().plan_check("discharge_summary", {"pairs": "sampled"}) is None
    assert "has no wrong choices to reject" in DPO().plan_check("discharge_summary", {"pairs": "task"})
    user = tmp_path / "train.jsonl"
    user.write_text("".join(json.dumps({"question": f"Q{i}?", "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
                                        "answer_idx": "B"}) + "\n" for i in range(3)))
    assert "holds only 3 examples" in DPO().plan_check("medqa", {"max_examples": 4}, {"medqa:train": str(user)})
    assert DPO().plan_check("medqa", {"max_examples": 3}, {"medqa:train": str(user), "medmcqa": "/nope"}) is None
