"""The sft trainer plugin on a tiny random Llama and the bundled MedQA / MedMCQA training splits."""

import json
import math
import shutil

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

from medbench.errors import MedbenchError
from medbench.evaluation import EvalConfig, evaluate
from medbench.models import LoadOptions, resolve_model, weights_hash
from medbench.trainers.fused_head import labelled_positions_only
from medbench.training import MANIFEST_NAME, TrainRequest, build_config
from medbench.trainingdata import examples_hash, load_training_examples, select_examples
from medbench_plugins.sft import SFT, SFTOptions, prepare


@pytest.fixture(scope="module")
def medqa():
    return load_training_examples("medqa")


@pytest.fixture(scope="module")
def medmcqa():
    return load_training_examples("medmcqa")


def sft_request(model_dir, tmp_path, examples, task="medqa", keep_order=False, **options):
    config = build_config(SFTOptions, {}, {"train_batch_size": 2, "max_steps": 2, "max_examples": 4, **options}, "sft")
    return TrainRequest(model_ref=str(model_dir), task=task, output_dir=tmp_path / "run", config=config,
                        examples=list(examples), keep_order=keep_order)


def trained_text(run, row=0):
    """The tokens of one prepared example that carry loss, decoded."""
    labels = run.trainer.train_dataset[row]["labels"]
    return run.trainer.processing_class.decode([token for token in labels if token != -100])


def assert_safetensors_only(path):
    assert not [p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]


def test_lora_saves_every_checkpoint_which_loads_and_evaluates(tiny_model_dir, tmp_path, medqa):
    request = sft_request(tiny_model_dir, tmp_path, medqa, max_examples=8, max_steps=4, save_steps=2)
    checkpoints = SFT().train(request)

    assert [(c.step, c.final, c.kind) for c in checkpoints] == [(2, False, "adapter"), (4, True, "adapter")]
    for checkpoint in checkpoints:
        assert checkpoint.data_hash == examples_hash(select_examples(medqa, 8, request.seed))  # the seeded sample
        assert math.isfinite(checkpoint.metrics["loss"]) and checkpoint.metrics["loss"] > 0
        assert checkpoint.metrics["train_tokens_per_second"] > 0
        assert_safetensors_only(checkpoint.path)
        adapter_config = json.loads((checkpoint.path / "adapter_config.json").read_text())
        assert adapter_config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert "train_runtime" in checkpoints[-1].metrics
    assert labelled_positions_only("cpu")  # the SDK's load_policy set TRL's head to project the labelled positions
    card = (request.output_dir / "README.md").read_text()  # medbench's, not TRL's card naming a "[None]" base
    assert "None" not in card and str(tiny_model_dir) in card and "checkpoint-N" in card
    final = checkpoints[-1].path
    lora_b = [t for name, t in load_file(final / "adapter_model.safetensors").items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # LoRA B starts at zero: training moved it

    loaded = resolve_model(str(final))
    assert loaded.kind == "peft" and loaded.base_ref == str(tiny_model_dir.resolve())
    (record,) = evaluate(str(final), EvalConfig(tasks=["medqa"], limit=4, output_dir=tmp_path / "lb"), loaded=loaded)
    assert record["n"] == 4 and 0 <= record["score"] <= 1


def test_full_fine_tuning_saves_a_model_with_its_tokenizer(tiny_model_dir, tmp_path, medqa):
    (checkpoint,) = SFT().train(sft_request(tiny_model_dir, tmp_path, medqa, method="full", max_steps=1))

    assert checkpoint.kind == "model" and checkpoint.final and checkpoint.step == 1
    names = {p.name for p in checkpoint.path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert_safetensors_only(checkpoint.path)
    loaded = resolve_model(str(checkpoint.path))
    assert loaded.kind == "local"
    assert weights_hash(loaded.model) != weights_hash(resolve_model(str(tiny_model_dir)).model)


@pytest.mark.parametrize("chat_template, expected", [(True, "{}<|end|>\n"), (False, " {}<|eos|>")])
def test_label_target_trains_on_the_answer_only(tiny_model_dir, tmp_path, medqa, chat_template, expected):
    run = prepare(sft_request(tiny_model_dir, tmp_path, medqa, chat_template=chat_template))
    assert run.examples[0].answer in "ABCD"  # row 0 of the seeded sample
    assert trained_text(run) == expected.format(run.examples[0].answer)


def test_rationale_target_is_the_rationale_then_the_answer(tiny_model_dir, tmp_path, medmcqa):
    run = prepare(sft_request(tiny_model_dir, tmp_path, medmcqa, task="medmcqa", target="rationale"))
    example = run.examples[0]  # row 0 of the seeded sample
    assert example.rationale and example.doc_id in [e.doc_id for e in medmcqa]
    assert trained_text(run) == f" {example.rationale}\nAnswer: {example.answer}<|eos|>"


def test_rationale_target_needs_rationales(tiny_model_dir, tmp_path, medqa):
    with pytest.raises(MedbenchError, match=r"task 'medqa' gives no rationale for 4 of 4 .*--target label"):
        prepare(sft_request(tiny_model_dir, tmp_path, medqa, target="rationale"))


def test_a_truncated_completion_fails_before_training(tiny_model_dir, tmp_path, medqa):
    with pytest.raises(MedbenchError, match=r"4 of 4 training examples are longer than max_length=16 .*--max-length"):
        SFT().train(sft_request(tiny_model_dir, tmp_path, medqa, max_length=16))
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_a_template_that_masks_every_completion_fails_before_training(tiny_model_dir, tmp_path, medqa):
    from transformers import AutoTokenizer

    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "silent-assistant")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # Renders user turns only, as some templates drop the assistant turn: nothing is left to train on.
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}<|user|>\n{{ m['content'] }}<|end|>\n"
                               "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    tokenizer.save_pretrained(model_dir)

    with pytest.raises(MedbenchError, match=r"4 of 4 training examples have no completion token .*loss would read 0\.0"):
        SFT().train(sft_request(model_dir, tmp_path, medqa, chat_template=True))
    assert not list((tmp_path / "run").glob("checkpoint-*"))


@pytest.mark.parametrize("keep_order", [True, False])
def test_training_order_follows_keep_order(tiny_model_dir, tmp_path, medqa, keep_order):
    given = medqa[:12][::-1]
    run = prepare(sft_request(tiny_model_dir, tmp_path, given, keep_order=keep_order, max_steps=-1, max_examples=None))
    seen = []
    train_step = run.trainer.training_step

    def recording_step(model, inputs, *args, **kwargs):
        for ids in inputs["input_ids"].tolist():
            text = run.trainer.processing_class.decode(ids)
            seen.extend(e.doc_id for e in given if e.prompt in text)
        return train_step(model, inputs, *args, **kwargs)

    run.trainer.training_step = recording_step
    run.run()

    given_ids = [e.doc_id for e in given]
    assert sorted(seen) == sorted(given_ids)  # one epoch: every example exactly once
    assert (seen == given_ids) is keep_order


def test_qlora_without_cuda_is_a_clear_error(tiny_model_dir, tmp_path, medqa):
    request = sft_request(tiny_model_dir, tmp_path, medqa, method="qlora")
    request.load_options = LoadOptions(device="cpu")
    with pytest.raises(MedbenchError, match="QLoRA needs the bitsandbytes package and a CUDA GPU.*--method lora"):
        SFT().train(request)


def test_options_are_checked():
    with pytest.raises(MedbenchError, match="unknown method 'qlora4'.*lora, qlora, full"):
        build_config(SFTOptions, {}, {"method": "qlora4"}, "sft")
    with pytest.raises(MedbenchError, match="unknown target 'cot'.*label, rationale"):
        build_config(SFTOptions, {}, {"target": "cot"}, "sft")
    with pytest.raises(MedbenchError, match="--learning-rate must be positive, got 0.0 .*--learning-rate"):
        build_config(SFTOptions, {}, {"learning_rate": "0"}, "sft")
    assert build_config(SFTOptions, {}, {"lora_target_modules": "q_proj,v_proj", "chat_template": "false"},
                        "sft").lora_target_modules == ["q_proj", "v_proj"]


def test_train_command_scores_every_sft_checkpoint(tiny_model_dir, tmp_path):
    from medbench.cli import cli
    from medbench.leaderboard import build_table

    result = CliRunner().invoke(cli, [
        "train", "--plugin", "sft", "--model", str(tiny_model_dir), "--task", "medqa", "--eval-limit", "4",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"), "--max-steps", "2",
        "--save-steps", "1", "--max-examples", "4", "--train-batch-size", "2"])
    assert result.exit_code == 0, result.output

    (run_dir,) = (tmp_path / "runs").iterdir()
    manifests = [json.loads((run_dir / f"checkpoint-{step}" / MANIFEST_NAME).read_text()) for step in (1, 2)]
    assert [m["final"] for m in manifests] == [False, True]
    assert all(m["plugin"] == "sft" and m["kind"] == "adapter" and m["parent_model"] == str(tiny_model_dir)
               for m in manifests)
    assert manifests[1]["config"]["max_steps"] == 2 and manifests[1]["config"]["method"] == "lora"
    assert manifests[1]["train_metrics"]["loss"] > 0 and manifests[1]["data_hash"]
    table = build_table(tmp_path / "lb")
    assert len(table.rows) == 2 and table.columns == ["medqa"]
    assert all(row.label.startswith("sft:") for row in table.rows)
