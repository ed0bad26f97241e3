"""The merge trainer: mergekit merges of tiny models checked against closed forms, adapters, and a CLI curve."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from medbench.errors import MedbenchError
from medbench.testing import make_tiny_model
from medbench.training import MANIFEST_NAME, TrainRequest
from medbench_plugins.merge import MergeConfig, MergeTrainer


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Three tiny models of one architecture, different random weights."""
    root = tmp_path_factory.mktemp("merge-inputs")
    return [make_tiny_model(root / name, seed=seed) for name, seed in (("a", 1), ("b", 2), ("c", 3))]


def weights(model_dir):
    return load_file(str(model_dir / "model.safetensors"))


def merge(tmp_path, model_ref, **config):
    request = TrainRequest(model_ref=str(model_ref), task="medqa", output_dir=tmp_path, config=MergeConfig(**config))
    return MergeTrainer().train(request)


def lerp(t, a, b):
    return (1 - t) * a.double() + t * b.double()


def slerp(t, a, b, dot_threshold=0.9995, eps=1e-8):
    """SLERP as mergekit computes it: each weight tensor is one flattened vector (its batches stack tensors, not
    rows), directions closer than the threshold to colinear are lerped (the all-ones norm weights of two fresh
    models are), and a zero-norm tensor keeps norm 1 instead of dividing by zero."""
    x, y = a.double().reshape(-1), b.double().reshape(-1)
    norm_x = float(x.norm()) if x.norm() > eps else 1.0
    norm_y = float(y.norm()) if y.norm() > eps else 1.0
    cos = max(-1.0, min(1.0, float((x / norm_x) @ (y / norm_y))))
    if abs(cos) > dot_threshold:
        return lerp(t, a, b)
    theta = math.acos(cos)
    return (math.sin((1 - t) * theta) * a.double() + math.sin(t * theta) * b.double()) / math.sin(theta)


def assert_weights(actual, expected):
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name].double(), expected[name].double(), rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("method, closed_form", [("linear", lerp), ("slerp", slerp)])
def test_merge_curve_equals_the_closed_form(tmp_path, tiny_models, method, closed_form):
    a, b, _ = tiny_models
    points = [0, 0.3, 0.75, 1]
    checkpoints = merge(tmp_path, a, models=[str(b)], method=method, t=points)
    assert [c.metrics["merge_t"] for c in checkpoints] == points
    assert [c.path.name for c in checkpoints] == [f"{method}-t0", f"{method}-t0.3", f"{method}-t0.75", f"{method}-t1"]
    wa, wb = weights(a), weights(b)
    for t, checkpoint in zip(points, checkpoints):
        assert checkpoint.kind == "model" and (checkpoint.path / "tokenizer.json").exists()
        assert_weights(weights(checkpoint.path), {name: closed_form(t, wa[name], wb[name]) for name in wa})
    assert_weights(weights(checkpoints[0].path), wa)  # t=0 is the base model
    assert_weights(weights(checkpoints[-1].path), wb)  # t=1 is the other model
    # Random rows are far from colinear, so slerp really takes the spherical branch and differs from lerp.
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(slerp(0.3, wa[name], wb[name]), lerp(0.3, wa[name], wb[name]), atol=1e-4)


def test_task_arithmetic_scales_the_weighted_task_vectors_by_t(tmp_path, tiny_models):
    a, b, c = tiny_models
    checkpoints = merge(tmp_path, a, models=[str(b), str(c)], method="task_arithmetic", t=[0.5],
                        weights=[1.0, 0.4])
    wa, wb, wc = weights(a), weights(b), weights(c)
    expected = {n: wa[n].double() + 0.5 * ((wb[n] - wa[n]).double() + 0.4 * (wc[n] - wa[n]).double()) for n in wa}
    assert_weights(weights(checkpoints[0].path), expected)
    assert checkpoints[0].metrics == {"merge_method": "task_arithmetic", "merge_t": 0.5,
                                      "merge_models": [str(b), str(c)], "merge_weights": [1.0, 0.4]}


@pytest.mark.parametrize("method", ["ties", "dare_ties"])
def test_ties_methods_keep_the_base_at_t0_and_move_away_at_t1(tmp_path, tiny_models, method):
    a, b, _ = tiny_models
    at_zero, at_one = merge(tmp_path, a, models=[str(b)], method=method, t=[0, 1], density=0.5)
    wa = weights(a)
    assert_weights(weights(at_zero.path), wa)
    name = "model.layers.0.mlp.up_proj.weight"
    moved = weights(at_one.path)[name] != wa[name]
    assert 0 < moved.float().mean() < 1  # density 0.5 trims part of the task vector


def test_an_adapter_is_merged_into_its_base_first(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter_dir = tmp_path / "adapter"
    get_peft_model(base, lora).save_pretrained(adapter_dir)
    other = make_tiny_model(tmp_path / "other", seed=5)

    (checkpoint,) = merge(tmp_path / "runs", other, models=[str(adapter_dir)], method="linear", t=[1])

    expected = weights(tiny_model_dir)
    adapter = load_file(str(adapter_dir / "adapter_model.safetensors"))
    for key in [k for k in adapter if ".lora_A." in k]:
        name = key.replace("base_model.model.", "").replace(".lora_A", "")
        delta = adapter[key.replace("lora_A", "lora_B")] @ adapter[key] * (lora.lora_alpha / lora.r)
        expected[name] = expected[name] + delta
    assert_weights(weights(checkpoint.path), expected)
    assert not any(tmp_path.glob("runs/.merge-inputs-*"))  # the folded adapter was a temporary input


def test_options_are_checked_against_the_method(tmp_path, tiny_models):
    a, b, c = tiny_models
    with pytest.raises(MedbenchError, match="slerp merges exactly two models"):
        merge(tmp_path, a, models=[str(b), str(c)], method="slerp")
    with pytest.raises(MedbenchError, match="unknown merge method 'avg'"):
        merge(tmp_path, a, models=[str(b)], method="avg")
    with pytest.raises(MedbenchError, match="--weights has 1 value.* for 2 model"):
        merge(tmp_path, a, models=[str(b), str(c)], method="ties", weights=[1.0])
    with pytest.raises(MedbenchError, match="name the same checkpoint more than once"):
        merge(tmp_path, a, models=[str(a)], method="slerp")
    with pytest.raises(MedbenchError, match=r"merge needs --models"):
        merge(tmp_path, a, method="linear")
    wide = make_tiny_model(tmp_path / "wide", hidden_size=64)
    with pytest.raises(MedbenchError, match="does not have the architecture of"):
        merge(tmp_path, a, models=[str(wide)], method="linear")


def test_train_refuses_options_the_method_cannot_take_before_making_a_run_directory(tmp_path, tiny_models):
    from medbench.testing import invoke_cli

    a, b, c = tiny_models
    for options, message in ((["--method", "slerp", "--models", f"{b},{c}"], "slerp merges exactly two models"),
                             (["--method", "linear"], "merge needs --models")):
        result = invoke_cli("train", "--plugin", "merge", "--model", a, "--task", "medqa",
                            "--output-dir", tmp_path / "runs", *options)
        assert result.exit_code == 2 and f"Error: merge on medqa: {message}" in result.output
        assert not (tmp_path / "runs").exists()  # the plan-time check ran before anything was written


def test_train_command_scores_every_point_of_the_curve(tmp_path, tiny_models):
    from medbench.cli import cli
    from medbench.leaderboard import build_table

    a, b, _ = tiny_models
    result = CliRunner().invoke(cli, [
        "train", "--plugin", "merge", "--model", str(a), "--task", "medqa", "--eval-limit", "4",
        "--output-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
        "--models", str(b), "--method", "slerp", "--t", "0,0.5,1"])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    names = ["slerp-t0", "slerp-t0.5", "slerp-t1"]
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*names, "medbench_run.json"])  # no work dirs left
    manifests = [json.loads((run_dir / name / MANIFEST_NAME).read_text()) for name in names]
    assert [m["train_metrics"]["merge_t"] for m in manifests] == [0, 0.5, 1]
    assert manifests[1]["plugin"] == "merge" and manifests[1]["parent_model"] == str(a)
    assert manifests[1]["config"]["models"] == [str(b)] and manifests[1]["config"]["t"] == [0, 0.5, 1]
    table = build_table(tmp_path / "lb")
    assert sorted(row.label.rsplit("/", 1)[1] for row in table.rows) == names
    assert table.columns == ["medqa"] and len({row.weights_hash for row in table.rows}) == 3


def test_the_plan_time_check_passes_good_options_and_names_the_checkpoints_of_the_curve():
    trainer = MergeTrainer()
    options = {"models": ["{prev}"], "method": "linear", "t": [0.0, 0.25, 1.0]}
    assert trainer.plan_check("medqa", options) is None  # the points are not a reason to skip the cell
    assert trainer.plan_checkpoints("medqa", options) == ["linear-t0", "linear-t0.25", "linear-t1"]
    assert trainer.plan_checkpoints("medqa", {"models": ["{prev}"]}) == ["slerp-t0.5"]
    assert "slerp merges exactly two models" in trainer.plan_check("medqa", {"models": ["a", "b"], "method": "slerp"})


def test_models_of_one_architecture_from_different_parents_merge_under_the_instruct_models_template(tmp_path):
    """A clinical model continued-trained from a base model (its own weights, no chat template) merges with the
    instruct model: every point of the curve, t = 1 included, is prompted with --model's chat template."""
    from transformers import AutoTokenizer

    instruct = make_tiny_model(tmp_path / "instruct", seed=11)
    clinical = make_tiny_model(tmp_path / "clinical", seed=12)
    (clinical / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((clinical / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (clinical / "tokenizer_config.json").write_text(json.dumps(config))
    assert not AutoTokenizer.from_pretrained(clinical).chat_template
    template = AutoTokenizer.from_pretrained(instruct).chat_template
    assert template

    checkpoints = merge(tmp_path / "runs", instruct, models=[str(clinical)], method="linear", t=[0, 0.5, 1])

    assert [AutoTokenizer.from_pretrained(c.path).chat_template for c in checkpoints] == [template] * 3
    assert_weights(weights(checkpoints[0].path), weights(instruct))
    assert_weights(weights(checkpoints[-1].path), weights(clinical))
