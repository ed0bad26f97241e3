"""--gradient-checkpointing auto|on|off (issue #19): on a CPU medbench keeps TRL's activation checkpointing (the
speed it bought cost 1.4-1.6x the memory, benchmarks/RESULTS.md), on a GPU it turns it off; the choice is
overridable and recorded with every checkpoint. Tiny random models, CPU."""

import pytest

from medbench.errors import MedbenchError
from medbench.models import LoadOptions
from medbench.testing import invoke_cli
from medbench.training import TrainRequest, build_config
from medbench.trainingdata import load_training_examples
from medbench.trainers.hf import training_arguments, use_gradient_checkpointing
from medbench_plugins.dpo import DPOOptions
from medbench_plugins.sft import SFTOptions, prepare


@pytest.mark.parametrize("device, expected", [("cpu", True), ("cuda", False), ("cuda:1", False), ("mps", False)])
def test_auto_picks_by_device(device, expected):
    assert use_gradient_checkpointing("auto", device) is expected


@pytest.mark.parametrize("given, stored", [("on", "on"), ("off", "off"), ("true", "on"), ("false", "off"),
                                           (True, "on"), (False, "off"), ("AUTO", "auto")])
def test_the_override_wins_on_every_device(given, stored):
    config = build_config(SFTOptions, {"gradient_checkpointing": given}, {}, "sft")
    assert config.gradient_checkpointing == stored
    if stored != "auto":
        assert {use_gradient_checkpointing(stored, device) for device in ("cpu", "cuda")} == {stored == "on"}


def test_the_default_is_auto_for_both_built_in_trainers():
    assert SFTOptions().gradient_checkpointing == "auto" and DPOOptions().gradient_checkpointing == "auto"


def test_a_bad_value_is_one_line_naming_the_choices():
    with pytest.raises(MedbenchError) as caught:
        build_config(SFTOptions, {}, {"gradient_checkpointing": "sometimes"}, "sft")
    assert "--gradient-checkpointing 'sometimes' is not auto, on or off" in caught.value.problem
    assert "--gradient-checkpointing auto" in caught.value.fix


def test_help_lists_the_option_with_its_choices():
    result = invoke_cli("train", "--plugin", "sft", "--help")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "--gradient-checkpointing" in line)
    assert "auto" in line and "on on a CPU" in result.output


@pytest.mark.parametrize("given, expected", [(None, True), ("off", False), ("on", True)])
def test_training_arguments_on_a_cpu(tmp_path, given, expected):
    from trl import SFTConfig

    options = {} if given is None else {"gradient_checkpointing": given}
    config = build_config(SFTOptions, {}, options, "sft")
    request = TrainRequest(model_ref="unused", task="medqa", output_dir=tmp_path, config=config,
                           load_options=LoadOptions(device="cpu"))
    args = training_arguments(SFTConfig, request, config, 1e-4)
    assert args.activation_checkpointing is expected


@pytest.mark.parametrize("given, expected", [(None, True), ("off", False)])
def test_the_value_used_is_in_every_checkpoints_train_metrics(tiny_model_dir, tmp_path, given, expected):
    options = {"train_batch_size": 4, "max_steps": 2, "save_steps": 1, "max_examples": 8, "logging_steps": 1}
    if given is not None:
        options["gradient_checkpointing"] = given
    config = build_config(SFTOptions, {}, options, "sft")
    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run", config=config,
                           examples=load_training_examples("medqa"), keep_order=True)
    run = prepare(request)
    assert run.trainer.args.activation_checkpointing is expected
    checkpoints = run.run()
    assert [c.metrics["gradient_checkpointing"] for c in checkpoints] == [expected, expected]
